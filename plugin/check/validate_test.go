// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package check

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/require"

	"github.com/meshcert/kubectl-meshcert/core/preflight"

	"github.com/meshcert/kubectl-meshcert/plugin/command/commandtest"
)

func TestValidate(t *testing.T) {
	tests := map[string]commandtest.Case{
		"defaults":          {Options: valid()},
		"require sds":       {Options: with(func(o *Options) { o.Require, o.Output.Format = "sds", "json" })},
		"require unknown":   {Options: with(func(o *Options) { o.Require = "file-mount" }), WantErr: `--require "file-mount": the only requirement check knows is "sds"`},
		"empty audience":    {Options: with(func(o *Options) { o.Audience = "" }), WantErr: "--audience must not be empty"},
		"unknown -o value":  {Options: with(func(o *Options) { o.Output.Format = "wide" }), WantErr: `unknown output format "wide"`},
		"no expiry warning": {Options: with(func(o *Options) { o.ExpiryWarning = 0 }), WantErr: "--expiry-warning 0s must be positive"},
		"negative wait":     {Options: with(func(o *Options) { o.Wait = -time.Second }), WantErr: "--wait -1s must not be negative"},
	}
	commandtest.RunValidate(t, tests)
}

func valid() *Options {
	return &Options{Audience: "istio-ca", ExpiryWarning: preflight.DefaultExpiryWarning}
}

func with(change func(*Options)) *Options {
	o := valid()
	change(o)
	return o
}

func TestPrintText(t *testing.T) {
	result := &Result{Server: "https://127.0.0.1:6443", RecommendedPath: "sds", Failed: 1, Warnings: 1, Checks: []preflight.Check{
		{Group: preflight.GroupKubernetes, Name: "server-version", Status: preflight.Pass, Message: "Kubernetes v1.37.2", Fix: "not shown"},
		{Group: preflight.GroupCA, Name: "ca-leader", Status: preflight.Fail, Message: "no CA replica leads", Fix: "see the CA's logs"},
		{Group: preflight.GroupCA, Name: "version-skew", Status: preflight.Warn, Message: "differ", Fix: "upgrade"},
	}}
	tests := map[string]struct {
		colour bool
		want   []string
		absent []string
	}{
		"plain": {want: []string{"Kubernetes\n----------\n✔ server-version: Kubernetes v1.37.2\n", "\nMesh CA\n-------\n✖ ca-leader: no CA replica leads\n    fix: see the CA's logs\n‼ version-skew",
			"Status check results are ✖ (1 failed, 1 warnings)"}, absent: []string{"\x1b[", "not shown"}},
		"coloured": {colour: true, want: []string{"\x1b[32m✔\x1b[0m server-version", "\x1b[31m✖\x1b[0m ca-leader", "\x1b[33m‼\x1b[0m version-skew"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			require.NoError(t, printText(&out, result, tc.colour))
			for _, w := range tc.want {
				require.Contains(t, out.String(), w)
			}
			for _, a := range tc.absent {
				require.NotContains(t, out.String(), a)
			}
		})
	}
}

func TestColourOnlyOnATerminalWithoutNoColor(t *testing.T) {
	ptmx, tty, err := pty.Open()
	require.NoError(t, err)
	defer ptmx.Close()
	defer tty.Close()
	tests := map[string]struct {
		out     io.Writer
		noColor bool
		want    bool
	}{
		"a terminal":               {out: tty, want: true},
		"a terminal, NO_COLOR set": {out: tty, noColor: true},
		"a pipe":                   {out: &bytes.Buffer{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.noColor {
				t.Setenv("NO_COLOR", "")
			}
			require.Equal(t, tc.want, colourWanted(tc.out))
		})
	}
}
