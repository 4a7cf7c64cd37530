// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package plugin

import (
	"context"
	"errors"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/meshcert/kubectl-meshcert/plugin/exit"
)

func TestDisplayName(t *testing.T) {
	tests := map[string]struct{ argv0, want string }{
		"kubectl plugin":          {argv0: "/usr/local/bin/kubectl-meshcert", want: "kubectl meshcert"},
		"krew link on windows":    {argv0: `kubectl-meshcert.exe`, want: "kubectl meshcert"},
		"underscore means a dash": {argv0: "kubectl-mesh_cert", want: "kubectl mesh-cert"},
		"renamed binary":          {argv0: "./meshcert", want: "meshcert"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, DisplayName(tc.argv0))
		})
	}
}

func TestExecute(t *testing.T) {
	tests := map[string]struct {
		args     []string
		wantCode int
		wantErr  string
		wantOut  string
	}{
		"help as a kubectl plugin": {args: []string{"--help"}, wantOut: "kubectl meshcert [command]"},
		"unknown command":          {args: []string{"bogus"}, wantCode: 1, wantErr: "error: unknown command \"bogus\" for \"kubectl meshcert\"\n"},
		"bad flag value":           {args: []string{"version", "-o", "xml"}, wantCode: 1, wantErr: "error: unknown output format \"xml\": use json, yaml, name, jsonpath=..., jsonpath-file=..., go-template=..., go-template-file=..., or leave -o out\n"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			streams, _, out, errOut := genericiooptions.NewTestIOStreams()
			root := NewRootCommand("kubectl-meshcert", streams)
			root.SetArgs(tc.args)
			require.Equal(t, tc.wantCode, Execute(context.Background(), root))
			require.Equal(t, tc.wantErr, errOut.String())
			require.Contains(t, out.String(), tc.wantOut)
		})
	}
}

func TestExitError(t *testing.T) {
	streams, _, _, errOut := genericiooptions.NewTestIOStreams()
	root := NewRootCommand("kubectl-meshcert", streams)
	root.RunE = func(*cobra.Command, []string) error {
		return exit.Error{Code: 3, Err: errors.New("2 certificates expire within 72h")}
	}
	root.SetArgs(nil)
	require.Equal(t, 3, Execute(context.Background(), root))
	require.Equal(t, "error: 2 certificates expire within 72h\n", errOut.String())
}

// An interrupt (the context cancelled) exits 130 whatever the command made
// of it; a cancellation that no interrupt caused is an error like another.
func TestInterruptExits130(t *testing.T) {
	tests := map[string]struct {
		interrupted bool
		returns     func(ctx context.Context) error
		want        int
		wantErr     string
	}{
		"a cancelled wait":                   {interrupted: true, returns: func(ctx context.Context) error { return ctx.Err() }, want: 130, wantErr: "error: interrupted\n"},
		"a wait that calls it a timeout":     {interrupted: true, returns: func(context.Context) error { return errors.New("did not finish within 5m0s (--timeout)") }, want: 130, wantErr: "error: interrupted\n"},
		"a command that finished regardless": {interrupted: true, returns: func(context.Context) error { return nil }, want: 130, wantErr: "error: interrupted\n"},
		"a cancellation nobody asked for":    {returns: func(context.Context) error { return context.Canceled }, want: 1, wantErr: "error: context canceled\n"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			streams, _, _, errOut := genericiooptions.NewTestIOStreams()
			root := NewRootCommand("kubectl-meshcert", streams)
			root.RunE = func(cmd *cobra.Command, _ []string) error { return tc.returns(cmd.Context()) }
			root.SetArgs(nil)
			ctx, cancel := context.WithCancel(context.Background())
			if tc.interrupted {
				cancel()
			}
			defer cancel()
			require.Equal(t, tc.want, Execute(ctx, root))
			require.Equal(t, tc.wantErr, errOut.String())
		})
	}
}

// Every command shows how it is used, and reads -o through one place.
func TestEveryCommandHasAnExample(t *testing.T) {
	root := NewRootCommand("kubectl-meshcert", genericiooptions.NewTestIOStreamsDiscard())
	var walk func(*cobra.Command)
	seen := 0
	walk = func(c *cobra.Command) {
		if !c.Hidden && c.Name() != "help" {
			seen++
			require.NotEmpty(t, c.Example, "%q has no Example", c.CommandPath())
			require.Contains(t, c.Example, "meshcert", "%q: the example runs the plugin", c.CommandPath())
			if f := c.Flags().Lookup("output"); f != nil {
				require.Equal(t, "o", f.Shorthand, "%q: -o is output", c.CommandPath())
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	require.GreaterOrEqual(t, seen, 18, "every verb and subcommand was walked")
}
