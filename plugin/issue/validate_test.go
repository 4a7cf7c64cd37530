// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package issue

import (
	"os"
	"path/filepath"
	"strings"
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

// A write that fails leaves no temporary file, and so no copy of the key,
// behind.
func TestWriteFilesLeavesNoTemporaryKey(t *testing.T) {
	dir := t.TempDir()
	// A directory where key.pem should go makes the rename fail.
	require.NoError(t, os.Mkdir(filepath.Join(dir, mesh.FilePrivateKey), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, mesh.FilePrivateKey, "keep"), nil, 0o600))
	_, err := writeFiles(dir, map[string][]byte{mesh.FilePrivateKey: []byte("secret key"), mesh.FileCertChain: nil, mesh.FileRootCert: nil})
	require.Error(t, err)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		require.False(t, strings.HasPrefix(e.Name(), "."), "temporary file %s left behind", e.Name())
	}
}
