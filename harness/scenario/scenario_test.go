// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package scenario

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLoadErrorsNameFileAndLine(t *testing.T) {
	tests := map[string]struct {
		yaml string
		want []string
	}{
		"unknown field": {
			yaml: "name: x\nprofiles: [bound]\nmesh: sds\nsteps:\n- deploy: {name: a, namespace: b, colour: red}\n",
			want: []string{"bad.yaml", "line 5", "field colour not found"},
		},
		"unknown step": {
			yaml: "name: x\nprofiles: [bound]\nmesh: sds\nsteps:\n- teleport: {to: mars}\n",
			want: []string{"bad.yaml", "line 5", "field teleport not found"},
		},
		"two actions in one step": {
			yaml: "name: x\nprofiles: [bound]\nmesh: sds\nsteps:\n- stopCA: {}\n  startCA: {}\n",
			want: []string{"bad.yaml", "line 5", "several actions (startCA+stopCA)"},
		},
		"bad duration": {
			yaml: "name: x\nprofiles: [bound]\nmesh: sds\nsteps:\n- sleep: soon\n",
			want: []string{"bad.yaml", "line 5", `"soon" is not a duration`},
		},
		"bad profile and mesh": {
			yaml: "name: x\nprofiles: [ancient]\nmesh: magic\nsteps:\n- sleep: 1s\n",
			want: []string{`unknown profile "ancient"`, `unknown mesh "magic"`},
		},
		"unknown token verification": {
			yaml: "name: x\nprofiles: [bound]\nmesh: sds\ntokenVerification: trust\nsteps:\n- sleep: 1s\n",
			want: []string{`unknown tokenVerification "trust": use tokenreview or local`},
		},
		"unknown bad token": {
			yaml: "name: x\nprofiles: [bound]\nmesh: sds\nsteps:\n- deploy: {name: a, namespace: b, token: stolen}\n",
			want: []string{"line 5", `unknown token "stolen"`},
		},
		"rotation count zero": {
			yaml: "name: x\nprofiles: [bound]\nmesh: sds\nsteps:\n- waitRotation: {workload: a}\n",
			want: []string{"line 5", "waitRotation count 0 must be at least 1"},
		},
		"step without action": {
			yaml: "name: x\nprofiles: [bound]\nmesh: sds\nsteps:\n- timeout: 5s\n",
			want: []string{"line 5", "the step has no action"},
		},
		"access of an unknown component": {
			yaml: "name: x\nprofiles: [bound]\nmesh: sds\nsteps:\n- expectAccess: {as: kube-proxy, denied: [get secrets]}\n",
			want: []string{"line 5", `expectAccess as "kube-proxy": use meshcert-ca or meshcert-agent`},
		},
		"access that checks nothing": {
			yaml: "name: x\nprofiles: [bound]\nmesh: sds\nsteps:\n- expectAccess: {as: meshcert-ca}\n",
			want: []string{"line 5", "expectAccess checks nothing"},
		},
		"refused call without its message": {
			yaml: "name: x\nprofiles: [bound]\nmesh: sds\nsteps:\n- expectAccess: {as: meshcert-ca, refused: [{args: [get, pods]}]}\n",
			want: []string{"line 5", "refused calls need args and the message"},
		},
		"socket check without a namespace": {
			yaml: "name: x\nprofiles: [bound]\nmesh: sds\nsteps:\n- expectSocketHeld: {}\n",
			want: []string{"line 5", "expectSocketHeld needs the namespace"},
		},
		"bad root phase": {
			yaml: "name: x\nprofiles: [bound]\nmesh: sds\nsteps:\n- rotateRoot: {phase: now}\n",
			want: []string{"line 5", `rotateRoot phase "now"`},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.yaml")
			require.NoError(t, os.WriteFile(path, []byte(tc.yaml), 0o644))
			_, err := Load(path)
			require.Error(t, err)
			for _, want := range tc.want {
				require.ErrorContains(t, err, want)
			}
		})
	}
}

func TestShippedScenariosLoad(t *testing.T) {
	scenarios, err := LoadAll([]string{"../../scenarios"})
	require.NoError(t, err)
	require.Len(t, scenarios, 16)
	for _, s := range scenarios {
		for i, step := range s.Steps {
			require.Positive(t, step.Line, "%s step %d", s.Name, i+1)
		}
	}
}

func TestLookup(t *testing.T) {
	doc := map[string]any{"checks": []any{map[string]any{"status": "PASS"}}, "path": "sds"}
	got, err := lookup(doc, "checks.0.status")
	require.NoError(t, err)
	require.Equal(t, "PASS", got)
	_, err = lookup(doc, "checks.3.status")
	require.ErrorContains(t, err, `no element "3"`)
	_, err = lookup(doc, "missing")
	require.ErrorContains(t, err, `no field "missing"`)
}
