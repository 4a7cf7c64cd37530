// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package issue

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshcert/kubectl-meshcert/core/mesh"
)

func TestValidate(t *testing.T) {
	occupied := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(occupied, mesh.FilePrivateKey), []byte("key"), 0o600))
	options := func(mutate func(*Options)) *Options {
		o := &Options{ServiceAccount: "web", TTL: time.Hour, OutDir: t.TempDir()}
		mutate(o)
		return o
	}
	tests := map[string]struct {
		options *Options
		wantErr string
	}{
		"out dir":                 {options: options(func(*Options) {})},
		"secret":                  {options: options(func(o *Options) { o.OutDir, o.Secret = "", "web-cert" })},
		"occupied dir with force": {options: options(func(o *Options) { o.OutDir, o.Force = occupied, true })},
		"both destinations":       {options: options(func(o *Options) { o.Secret = "web-cert" }), wantErr: "give exactly one of --out-dir DIR and --secret NAME"},
		"no destination":          {options: options(func(o *Options) { o.OutDir = "" }), wantErr: "give exactly one of --out-dir DIR and --secret NAME"},
		"bad service account":     {options: options(func(o *Options) { o.ServiceAccount = "Web_1" }), wantErr: "Web_1"},
		"zero ttl":                {options: options(func(o *Options) { o.TTL = 0 }), wantErr: "--ttl 0s must be positive"},
		"occupied dir":            {options: options(func(o *Options) { o.OutDir = occupied }), wantErr: "already exists: pass --force to overwrite it"},
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
