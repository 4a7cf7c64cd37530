// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package dockerhost

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// ourHost is this project's CI host: every capability up to
// CAP_CHECKPOINT_RESTORE but CAP_SYS_RESOURCE.
const ourHost = 0x000001fffeffffff

func TestBoundingSet(t *testing.T) {
	got, err := BoundingSet("Name:\tx\nCapEff:\t0000000000000000\nCapBnd:\t000001fffeffffff\nCapAmb:\t0\n")
	require.NoError(t, err)
	require.Equal(t, uint64(ourHost), got)
	_, err = BoundingSet("Name:\tx\n")
	require.ErrorContains(t, err, "no CapBnd")
}

func TestAdjustBundleConfig(t *testing.T) {
	privileged := []string{"CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_SYS_RESOURCE", "CAP_NOT_A_CAP"}
	for name, tc := range map[string]struct {
		process       map[string]any
		bounding      uint64
		wantCaps      []string
		wantOOM       any
		wantChanges   int
		wantUnchanged bool
	}{
		"privileged caps are trimmed to the bounding set": {
			process:     map[string]any{"capabilities": map[string]any{"bounding": privileged, "effective": privileged}, "args": []string{"/sbin/init"}},
			bounding:    ourHost,
			wantCaps:    []string{"CAP_CHOWN", "CAP_SYS_ADMIN"},
			wantChanges: 2,
		},
		"a negative oomScoreAdj is raised to 0": {
			process:     map[string]any{"oomScoreAdj": -998},
			bounding:    ourHost,
			wantOOM:     float64(0),
			wantChanges: 1,
		},
		"a full bounding set and a positive score change nothing": {
			process:       map[string]any{"capabilities": map[string]any{"bounding": []string{"CAP_SYS_RESOURCE"}}, "oomScoreAdj": 500},
			bounding:      0x000001ffffffffff,
			wantUnchanged: true,
		},
	} {
		t.Run(name, func(t *testing.T) {
			raw, err := json.Marshal(map[string]any{"ociVersion": "1.0.2", "process": tc.process, "root": map[string]any{"path": "rootfs"}})
			require.NoError(t, err)
			out, changes, err := AdjustBundleConfig(raw, tc.bounding)
			require.NoError(t, err)
			require.Len(t, changes, tc.wantChanges)
			if tc.wantUnchanged {
				require.Equal(t, raw, out)
				return
			}
			var spec struct {
				OCIVersion string         `json:"ociVersion"`
				Root       map[string]any `json:"root"`
				Process    map[string]any `json:"process"`
			}
			require.NoError(t, json.Unmarshal(out, &spec))
			require.Equal(t, "1.0.2", spec.OCIVersion, "fields the wrapper does not know are kept")
			require.Equal(t, "rootfs", spec.Root["path"])
			if tc.wantCaps != nil {
				caps := spec.Process["capabilities"].(map[string]any)
				for _, set := range []string{"bounding", "effective"} {
					require.ElementsMatch(t, tc.wantCaps, caps[set], set)
				}
				require.Equal(t, []any{"/sbin/init"}, spec.Process["args"])
			}
			if tc.wantOOM != nil {
				require.Equal(t, tc.wantOOM, spec.Process["oomScoreAdj"])
			}
		})
	}
}

func TestParseInvocation(t *testing.T) {
	for name, tc := range map[string]struct {
		args []string
		want Invocation
	}{
		"create from containerd-shim": {
			args: []string{"--root", "/run/docker/runtime-runc/moby", "--log", "/run/x/log.json", "--log-format", "json", "create", "--bundle", "/run/b", "--pid-file", "/run/b/init.pid", "id"},
			want: Invocation{Bundle: "/run/b"},
		},
		"exec with a process file": {
			args: []string{"--root", "/r", "exec", "--process", "/tmp/p.json", "--detach", "id"},
			want: Invocation{ProcessFile: "/tmp/p.json"},
		},
		"flags with equals signs": {
			args: []string{"--root=/r", "create", "--bundle=/run/c", "id"},
			want: Invocation{Bundle: "/run/c"},
		},
		"other commands touch nothing": {
			args: []string{"--root", "/r", "delete", "--force", "id"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, ParseInvocation(tc.args))
		})
	}
}
