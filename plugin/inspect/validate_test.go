// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package inspect

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshcert/kubectl-meshcert/plugin/output"
)

func TestValidate(t *testing.T) {
	common := &CommonOptions{CANamespace: "meshcert-system"}
	table := output.Options{Table: true}
	tests := map[string]struct {
		options interface{ Validate() error }
		wantErr string
	}{
		"fleet":                    {options: &FleetOptions{CommonOptions: common, Output: table, ExpiringWithin: 72 * time.Hour}},
		"fleet wide":               {options: &FleetOptions{CommonOptions: common, Output: output.Options{Table: true, Format: "wide"}}},
		"fleet negative expiring":  {options: &FleetOptions{CommonOptions: common, ExpiringWithin: -time.Hour}, wantErr: "--expiring-within -1h0m0s must not be negative"},
		"fleet bad -o":             {options: &FleetOptions{CommonOptions: common, Output: output.Options{Table: true, Format: "xml"}}, wantErr: `unknown output format "xml": use wide, json or yaml`},
		"fleet empty CA namespace": {options: &FleetOptions{CommonOptions: &CommonOptions{}}, wantErr: "--ca-namespace must not be empty"},
		"secret":                   {options: &SecretOptions{CommonOptions: common, Name: "meshcert.web", Output: table}},
		"secret without name":      {options: &SecretOptions{CommonOptions: common, Output: table}, wantErr: "name the Secret"},
		"file":                     {options: &FileOptions{Paths: []string{"chain.pem"}, Output: table}},
		"file without paths":       {options: &FileOptions{Output: table}, wantErr: "name at least one file"},
		"pod":                      {options: &PodOptions{CommonOptions: common, Pod: "web-0", Output: table}},
		"pod without name":         {options: &PodOptions{CommonOptions: common, Output: table}, wantErr: "name the pod"},
		"token":                    {options: &TokenOptions{Audience: "istio-ca", Output: table}},
		"token empty audience":     {options: &TokenOptions{Output: table}, wantErr: "--audience must not be empty"},
		"ca json":                  {options: &CAOptions{CommonOptions: common, Output: output.Options{Table: true, Format: "json"}}},
		"ca bad -o":                {options: &CAOptions{CommonOptions: common, Output: output.Options{Table: true, Format: "toml"}}, wantErr: `unknown output format "toml"`},
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
