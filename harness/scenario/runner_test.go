// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package scenario

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

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

// recorder is a provider that comes up, installs nothing, and records what
// the scenario asked of it.
type recorder struct {
	provider.Provider
	name     string
	ttl      time.Duration
	mu       sync.Mutex // deploy steps deploy their workloads at once
	deployed []string
}

func (p *recorder) Name() string                                            { return p.name }
func (p *recorder) Up(context.Context, string) error                        { return nil }
func (p *recorder) InstallMesh(_ context.Context, m string) (string, error) { return m, nil }
func (p *recorder) Down() error                                             { return nil }
func (p *recorder) Tune(t provider.Tuning)                                  { p.ttl = t.WorkloadTTL }
func (p *recorder) Deploy(_ context.Context, w provider.WorkloadSpec) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.deployed = append(p.deployed, w.Name)
	return nil
}

// A scenario runs on every provider; a provider's scale changes its
// numbers, and only on that provider.
func TestScaleChangesNumbersPerProvider(t *testing.T) {
	path := filepath.Join(t.TempDir(), "scaled.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`name: scaled
profiles: [bound]
mesh: none
workloadTTL: 10s
scale:
  slow: {workloadTTL: 40s, counts: 0.2, why: a slow provider starts fewer pods}
steps:
- deploy: {name: m, namespace: ns, count: 10}
`), 0o644))
	s, err := Load(path)
	require.NoError(t, err)
	for name, tc := range map[string]struct {
		wantTTL    time.Duration
		wantDeploy int
	}{
		"slow":  {wantTTL: 40 * time.Second, wantDeploy: 2},
		"other": {wantTTL: 10 * time.Second, wantDeploy: 10},
	} {
		t.Run(name, func(t *testing.T) {
			p := &recorder{name: name}
			var out bytes.Buffer
			results := (&Runner{NewProvider: func() provider.Provider { return p }, Out: &out}).Run(t.Context(), []*Scenario{s})
			require.NoError(t, results[0].Err)
			require.Equal(t, tc.wantTTL, p.ttl)
			require.Len(t, p.deployed, tc.wantDeploy, "the scenario file itself is not changed by a scale")
		})
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("name: x\nprofiles: [bound]\nmesh: none\nscale: {kind: {counts: 0.5}}\nsteps:\n- sleep: 1s\n"), 0o644))
	_, err = Load(bad)
	require.ErrorContains(t, err, "scale kind: say why the numbers differ there")
}
