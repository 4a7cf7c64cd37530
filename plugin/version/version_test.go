// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package version

import (
	"encoding/json"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/yaml"
)

func TestVersionCommand(t *testing.T) {
	tests := map[string]struct {
		args    []string
		check   func(t *testing.T, out []byte)
		wantErr string
	}{
		"plain": {
			args: []string{"--client"},
			check: func(t *testing.T, out []byte) {
				require.Equal(t, "Client: "+Current()+" ("+runtime.Version()+", "+runtime.GOOS+"/"+runtime.GOARCH+")\n", string(out))
			},
		},
		"json": {
			args: []string{"--client", "-o", "json"},
			check: func(t *testing.T, out []byte) {
				var r Report
				require.NoError(t, json.Unmarshal(out, &r))
				require.Equal(t, Report{Client: Get()}, r)
			},
		},
		"yaml": {
			args: []string{"--client", "-o", "yaml"},
			check: func(t *testing.T, out []byte) {
				var r struct {
					APIVersion string `json:"apiVersion"`
					Kind       string `json:"kind"`
					Report     `json:",inline"`
				}
				require.NoError(t, yaml.UnmarshalStrict(out, &r))
				require.Equal(t, "meshcert.io/v1alpha1", r.APIVersion)
				require.Equal(t, "Version", r.Kind)
				require.Equal(t, Report{Client: Get()}, r.Report)
			},
		},
		"jsonpath": {
			args: []string{"--client", "-o", "jsonpath={.clientVersion.platform}"},
			check: func(t *testing.T, out []byte) {
				require.Equal(t, runtime.GOOS+"/"+runtime.GOARCH, string(out))
			},
		},
		"go-template": {
			args: []string{"--client", "-o", "go-template={{.kind}} {{.clientVersion.goVersion}}"},
			check: func(t *testing.T, out []byte) {
				require.Equal(t, "Version "+runtime.Version(), string(out))
			},
		},
		"wrong output": {args: []string{"-o", "xml"}, wantErr: `unknown output format "xml": use json, yaml, name, jsonpath=..., jsonpath-file=..., go-template=..., go-template-file=..., or leave -o out`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			streams, _, out, _ := genericiooptions.NewTestIOStreams()
			cmd := NewCommand(nil, streams)
			cmd.SetArgs(tc.args)
			cmd.SilenceUsage, cmd.SilenceErrors = true, true
			err := cmd.Execute()
			if tc.wantErr != "" {
				require.EqualError(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			tc.check(t, out.Bytes())
		})
	}
}

func TestVersionOf(t *testing.T) {
	built := func(v string) *debug.BuildInfo {
		return &debug.BuildInfo{Main: debug.Module{Path: "github.com/meshcert/kubectl-meshcert", Version: v}}
	}
	tests := map[string]struct {
		ldflags string
		info    *debug.BuildInfo
		ok      bool
		want    string
	}{
		"a release build sets it":           {ldflags: "v1.2.3", info: built("v1.2.2"), ok: true, want: "v1.2.3"},
		"go install records the module's":   {info: built("v0.1.0"), ok: true, want: "v0.1.0"},
		"a working tree has no version":     {info: built("(devel)"), ok: true, want: DevelVersion},
		"a binary without build info":       {want: DevelVersion},
		"a pseudo-version names its commit": {info: built("v0.0.0-20261202120000-0123456789ab"), ok: true, want: "v0.0.0-20261202120000-0123456789ab"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, versionOf(tc.ldflags, tc.info, tc.ok))
		})
	}
}
