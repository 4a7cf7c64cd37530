// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package check

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meshcert/kubectl-meshcert/plugin/output"
)

func TestValidate(t *testing.T) {
	tests := map[string]struct {
		options Options
		wantErr string
	}{
		"defaults":         {options: Options{Audience: "istio-ca"}},
		"require sds":      {options: Options{Audience: "istio-ca", Require: "sds", Output: output.Options{Format: "json"}}},
		"require unknown":  {options: Options{Audience: "istio-ca", Require: "file-mount"}, wantErr: `--require "file-mount": the only requirement check knows is "sds"`},
		"empty audience":   {options: Options{}, wantErr: "--audience must not be empty"},
		"unknown -o value": {options: Options{Audience: "istio-ca", Output: output.Options{Format: "wide"}}, wantErr: `unknown output format "wide"`},
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
