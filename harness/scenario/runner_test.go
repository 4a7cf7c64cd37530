// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package scenario

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meshcert/kubectl-meshcert/harness/provider"
)

// noCluster is a provider whose cluster never comes up. Only the methods a
// failed bring-up reaches are implemented.
type noCluster struct {
	provider.Provider
	logsErr error
	downs   int
}

func (p *noCluster) Name() string { return "fake" }
func (p *noCluster) Up(context.Context, string) error {
	return errors.New("the fake cluster did not start")
}
func (p *noCluster) Logs(string) error { return p.logsErr }
func (p *noCluster) Down() error       { p.downs++; return nil }

func TestFailedRunNamesLogsOnlyWhenWritten(t *testing.T) {
	for name, tc := range map[string]struct {
		logsErr  error
		wantLogs bool
	}{
		"provider wrote logs":  {wantLogs: true},
		"provider had no logs": {logsErr: errors.New("no cluster came up")},
	} {
		t.Run(name, func(t *testing.T) {
			p := &noCluster{logsErr: tc.logsErr}
			var out bytes.Buffer
			r := &Runner{NewProvider: func() provider.Provider { return p }, Out: &out, LogDir: t.TempDir()}
			results := r.Run(t.Context(), []*Scenario{{Name: "s", Profiles: []string{provider.ProfileBound}, Mesh: provider.MeshSDS}})

			require.Len(t, results, 1)
			require.ErrorContains(t, results[0].Err, "bring up a bound cluster: the fake cluster did not start")
			require.Equal(t, 1, p.downs, "a failed run is torn down")
			require.Contains(t, out.String(), "0 passed, 1 failed")
			if tc.wantLogs {
				require.NotEmpty(t, results[0].Logs)
				require.Contains(t, out.String(), "[s/bound] logs in "+results[0].Logs)
			} else {
				require.Empty(t, results[0].Logs)
				require.NotContains(t, out.String(), "logs in")
			}
		})
	}
}
