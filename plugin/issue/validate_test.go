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
	"github.com/meshcert/kubectl-meshcert/plugin/command/commandtest"
)

func TestValidate(t *testing.T) {
	occupied := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(occupied, mesh.FilePrivateKey), []byte("key"), 0o600))
	options := func(mutate func(*Options)) *Options {
		o := &Options{ServiceAccount: "web", TTL: time.Hour, OutDir: t.TempDir()}
		mutate(o)
		return o
	}
	tests := map[string]commandtest.Case{
		"out dir":                 {Options: options(func(*Options) {})},
		"secret":                  {Options: options(func(o *Options) { o.OutDir, o.Secret = "", "web-cert" })},
		"occupied dir with force": {Options: options(func(o *Options) { o.OutDir, o.Force = occupied, true })},
		"both destinations":       {Options: options(func(o *Options) { o.Secret = "web-cert" }), WantErr: "give exactly one of --out-dir DIR and --secret NAME"},
		"no destination":          {Options: options(func(o *Options) { o.OutDir = "" }), WantErr: "give exactly one of --out-dir DIR and --secret NAME"},
		"bad service account":     {Options: options(func(o *Options) { o.ServiceAccount = "Web_1" }), WantErr: "Web_1"},
		"zero ttl":                {Options: options(func(o *Options) { o.TTL = 0 }), WantErr: "--ttl 0s must be positive"},
		"occupied dir":            {Options: options(func(o *Options) { o.OutDir = occupied }), WantErr: "already exists: pass --force to overwrite it"},
	}
	commandtest.RunValidate(t, tests)
}
