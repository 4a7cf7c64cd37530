// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package soak

import (
	"bytes"
	"encoding/csv"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// samples makes an hour of 30 s samples whose series follow the functions
// of the sample's index.
func samples(caRSS, agentGoroutines func(i int) float64) []Sample {
	var out []Sample
	for i := 0; i <= 120; i++ {
		out = append(out, Sample{Elapsed: time.Duration(i) * 30 * time.Second, CARSS: caRSS(i), CAGoroutines: 80,
			AgentRSS: 60 << 20, AgentGoroutines: agentGoroutines(i), CallsOK: int64(100 * i)})
	}
	return out
}

func TestAnalyze(t *testing.T) {
	flat := func(int) float64 { return 50 << 20 }
	goroutines := func(int) float64 { return 1030 }
	tests := map[string]struct {
		samples []Sample
		grew    string
	}{
		"flat after a warm-up": {samples: samples(func(i int) float64 {
			return float64(30<<20) + float64(min(i, 20))*(1<<20)
		}, goroutines)},
		"noisy but flat": {samples: samples(func(i int) float64 {
			return 50<<20 + 4<<20*math.Sin(float64(i))
		}, goroutines)},
		"memory leak": {samples: samples(func(i int) float64 { return 50<<20 + float64(i)*(100<<10) }, goroutines),
			grew: "ca_rss_bytes"},
		"goroutine leak": {samples: samples(flat, func(i int) float64 { return 1030 + float64(i) }),
			grew: "agent_goroutines"},
		"too short": {samples: samples(flat, goroutines)[:5], grew: "too few"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := &Report{Samples: tc.samples}
			err := r.Analyze()
			if tc.grew == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.grew)
		})
	}
}

func TestWriteCSVAndSVG(t *testing.T) {
	r := &Report{Options: DefaultOptions(), Samples: samples(func(int) float64 { return 50 << 20 }, func(int) float64 { return 1030 })}
	var out bytes.Buffer
	require.NoError(t, r.WriteCSV(&out))
	rows, err := csv.NewReader(&out).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, len(r.Samples)+1)
	require.Equal(t, csvHeader, rows[0])
	require.Equal(t, []string{"3600", "52428800", "80", "62914560", "1030", "0", "12000", "0"}, rows[len(rows)-1])

	out.Reset()
	require.NoError(t, r.WriteSVG(&out))
	require.Contains(t, out.String(), "<svg")
	require.Contains(t, out.String(), "Goroutines")
}
