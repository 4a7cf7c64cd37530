// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package version

import (
	"encoding/json"
	"runtime"
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
				require.Equal(t, "Client: "+Version+" ("+runtime.Version()+", "+runtime.GOOS+"/"+runtime.GOARCH+")\n", string(out))
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
				var r Report
				require.NoError(t, yaml.UnmarshalStrict(out, &r))
				require.Equal(t, Report{Client: Get()}, r)
			},
		},
		"wrong output": {args: []string{"-o", "xml"}, wantErr: `unknown output format "xml": use json or yaml, or leave -o out`},
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
