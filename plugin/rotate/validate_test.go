// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package rotate

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshcert/kubectl-meshcert/plugin/output"
)

func common() *CommonOptions {
	return &CommonOptions{Wait: true, Timeout: time.Minute, CANamespace: "meshcert-system"}
}

func TestValidate(t *testing.T) {
	tests := map[string]struct {
		options interface{ Validate() error }
		wantErr string
	}{
		"secret by name":          {options: &SecretOptions{CommonOptions: common(), Name: "meshcert.web"}},
		"secret --all -A":         {options: &SecretOptions{CommonOptions: common(), All: true, AllNamespaces: true}},
		"secret neither":          {options: &SecretOptions{CommonOptions: common()}, wantErr: "name one Secret, or pass --all"},
		"secret name and --all":   {options: &SecretOptions{CommonOptions: common(), Name: "x", All: true}, wantErr: "name one Secret, or pass --all"},
		"secret -A alone":         {options: &SecretOptions{CommonOptions: common(), Name: "x", AllNamespaces: true}, wantErr: "-A goes with --all"},
		"secret bad -o":           {options: &SecretOptions{CommonOptions: common(), Name: "x", Output: output.Options{Format: "wide"}}, wantErr: `unknown output format "wide"`},
		"secret zero timeout":     {options: &SecretOptions{CommonOptions: &CommonOptions{CANamespace: "x"}, Name: "x"}, wantErr: "--timeout 0s must be positive"},
		"pod":                     {options: &PodOptions{CommonOptions: common(), Pod: "web-0", Output: output.Options{Format: "json"}}},
		"pod without name":        {options: &PodOptions{CommonOptions: common()}, wantErr: "name the pod"},
		"root prepare":            {options: &RootOptions{CommonOptions: common(), Phase: PhasePrepare}},
		"root finish forced":      {options: &RootOptions{CommonOptions: common(), Phase: PhaseFinish, Force: true}},
		"root without phase":      {options: &RootOptions{CommonOptions: common()}, wantErr: "--phase is required"},
		"root unknown phase":      {options: &RootOptions{CommonOptions: common(), Phase: "rollback"}, wantErr: `unknown --phase "rollback"`},
		"root empty CA namespace": {options: &RootOptions{CommonOptions: &CommonOptions{Timeout: time.Second}, Phase: PhasePrepare}, wantErr: "--ca-namespace must not be empty"},
		"status yaml":             {options: &StatusOptions{CommonOptions: common(), Output: output.Options{Format: "yaml"}}},
		"status bad -o":           {options: &StatusOptions{CommonOptions: common(), Output: output.Options{Format: "xml"}}, wantErr: `unknown output format "xml"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.options.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}
