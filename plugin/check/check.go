// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package check is `kubectl meshcert check`: an end-to-end preflight that
// mints and reviews a real token and recommends a certificate path.
package check

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/core/preflight"
	"github.com/meshcert/kubectl-meshcert/core/token"
	"github.com/meshcert/kubectl-meshcert/plugin/cluster"
	"github.com/meshcert/kubectl-meshcert/plugin/command"
	"github.com/meshcert/kubectl-meshcert/plugin/exit"
	"github.com/meshcert/kubectl-meshcert/plugin/output"
)

// Result is check's JSON output; see preflight.Result.
type Result = preflight.Result

// Options are check's flags and state.
type Options struct {
	Output      output.Options
	Audience    string
	Require     string
	CANamespace string
	genericiooptions.IOStreams

	factory *cluster.Factory
	clients *cluster.Clients
}

// NewCommand returns the check command.
func NewCommand(factory *cluster.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &Options{factory: factory, IOStreams: streams, Audience: token.DefaultAudience, CANamespace: mesh.DefaultNamespace}
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check whether the cluster can issue trustworthy tokens, and recommend sds or file-mount",
		Long: `Check mints a real projected token for a probe service account, has the API server review it,
reads its claims, and looks for the mesh CA and its root ConfigMap. Each check is PASS, WARN or FAIL with
the reason and the fix. It ends with the recommended certificate path. Anything it creates, it removes.`,
		Example: `  # Check the current context and print the recommended path
  kubectl meshcert check

  # Fail a pipeline (exit code 2) unless the cluster can serve SDS
  kubectl meshcert check --require sds -o json`,
		Args: cobra.NoArgs,
		RunE: command.RunE(o),
	}
	cmd.Flags().StringVar(&o.Audience, "audience", o.Audience, "the mesh audience tokens must carry")
	cmd.Flags().StringVar(&o.Require, "require", "", "exit with code 2 unless this path is possible (sds)")
	cmd.Flags().StringVar(&o.CANamespace, "ca-namespace", o.CANamespace, "namespace of the mesh CA")
	o.Output.AddFlags(cmd)
	return cmd
}

// Complete has nothing to fill in: check takes no arguments.
func (o *Options) Complete([]string) error { return nil }

// Validate checks the flags, before any API call.
func (o *Options) Validate() error {
	if o.Require != "" && o.Require != mesh.ModeSDS {
		return fmt.Errorf("--require %q: the only requirement check knows is %q", o.Require, mesh.ModeSDS)
	}
	if o.Audience == "" {
		return errors.New("--audience must not be empty")
	}
	return o.Output.Validate()
}

// Run performs the checks and prints them.
func (o *Options) Run(ctx context.Context) error {
	var err error
	if o.clients, err = o.factory.Clients(); err != nil {
		return err
	}
	result, err := preflight.Run(ctx, o.clients.Client, preflight.Options{
		Server: o.clients.Config.Host, Namespace: o.clients.Namespace, Audience: o.Audience, CANamespace: o.CANamespace,
	})
	if err != nil {
		return err
	}
	if err := o.Output.Print(o.Out, result, nil, func(w io.Writer) error { return printText(w, result) }); err != nil {
		return err
	}
	if o.Require == mesh.ModeSDS && result.RecommendedPath != mesh.ModeSDS {
		return exit.Error{Code: 2, Err: errors.New("SDS is not possible on this cluster: it cannot issue trustworthy tokens for the mesh (see the FAIL lines above)")}
	}
	return nil
}

func printText(w io.Writer, r *Result) error {
	fmt.Fprintf(w, "Cluster %s\n\n", r.Server)
	for _, c := range r.Checks {
		fmt.Fprintf(w, "[%s] %s: %s\n", c.Status, c.Name, c.Message)
		if c.Fix != "" {
			fmt.Fprintf(w, "       fix: %s\n", c.Fix)
		}
	}
	fmt.Fprintf(w, "\nTrustworthy JWTs: %t\nRecommended path: %s\n", r.TrustworthyJWT, r.RecommendedPath)
	return nil
}
