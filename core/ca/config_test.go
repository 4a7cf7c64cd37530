// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package ca_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meshcert/kubectl-meshcert/core/ca"
)

func TestConfigValidate(t *testing.T) {
	tests := map[string]struct {
		mutate  func(*ca.Config)
		wantErr string
	}{
		"defaults":                   {mutate: func(*ca.Config) {}},
		"local token verification":   {mutate: func(c *ca.Config) { c.TokenVerification = ca.TokenVerificationLocal }},
		"unknown token verification": {mutate: func(c *ca.Config) { c.TokenVerification = "none" }, wantErr: `--token-verification "none": want tokenreview or local`},
		"no audience":                {mutate: func(c *ca.Config) { c.Audiences = nil }, wantErr: "--audience: at least one audience is required"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := ca.DefaultConfig()
			tc.mutate(&cfg)
			err := cfg.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}
