// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package plugin assembles the kubectl meshcert command tree. Each verb lives
// in its own package below this one.
package plugin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/meshcert/kubectl-meshcert/plugin/check"
	"github.com/meshcert/kubectl-meshcert/plugin/cluster"
	"github.com/meshcert/kubectl-meshcert/plugin/completion"
	"github.com/meshcert/kubectl-meshcert/plugin/exit"
	"github.com/meshcert/kubectl-meshcert/plugin/inspect"
	"github.com/meshcert/kubectl-meshcert/plugin/install"
	"github.com/meshcert/kubectl-meshcert/plugin/issue"
	"github.com/meshcert/kubectl-meshcert/plugin/optin"
	"github.com/meshcert/kubectl-meshcert/plugin/rotate"
	"github.com/meshcert/kubectl-meshcert/plugin/version"
)

// NewRootCommand returns the root command. name is how the user invoked the
// binary (os.Args[0]): invoked as kubectl-meshcert, help reads
// "kubectl meshcert".
func NewRootCommand(name string, streams genericiooptions.IOStreams) *cobra.Command {
	display := DisplayName(name)
	root := &cobra.Command{
		Use:           "meshcert",
		Short:         "Issue, inspect and rotate service-mesh workload certificates",
		Long:          display + " manages the workload certificates of a service mesh: SPIFFE certificates issued against projected service-account tokens and served over SDS, or kept in mounted Secrets where the cluster cannot issue trustworthy tokens.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: display},
		Example: `  # Can this cluster serve SDS, or does it need the file-mount path?
  kubectl meshcert check

  # Install the mesh CA and agent, then list every workload certificate
  kubectl meshcert install && kubectl meshcert inspect -A`,
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	flags := genericclioptions.NewConfigFlags(true)
	flags.AddFlags(root.PersistentFlags())
	factory := cluster.NewFactory(flags)
	_ = root.RegisterFlagCompletionFunc("namespace", factory.CompleteNames(cluster.CompleteNamespaces, true))
	_ = root.RegisterFlagCompletionFunc("context", factory.CompleteContexts)
	root.AddCommand(
		check.NewCommand(factory, streams),
		issue.NewCommand(factory, streams),
		inspect.NewCommand(factory, streams),
		rotate.NewCommand(factory, streams),
		install.NewCommand(factory, streams),
		install.NewUninstallCommand(factory, streams),
		optin.NewCommand(factory, streams),
		version.NewCommand(factory, streams),
	)
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(completion.NewCommand(root, display))
	return root
}

// DisplayName is "kubectl meshcert" when the binary runs as a kubectl plugin
// and its own file name otherwise.
func DisplayName(argv0 string) string {
	base := strings.TrimSuffix(filepath.Base(argv0), ".exe")
	if strings.HasPrefix(base, "kubectl-") {
		return "kubectl " + strings.ReplaceAll(strings.TrimPrefix(base, "kubectl-"), "_", "-")
	}
	if base == "" || base == "." {
		return "kubectl-meshcert"
	}
	return base
}

// Execute runs the command tree and returns the process exit code, printing
// errors as kubectl does: "error: ..." on stderr, exit code 1. A cancelled
// context (Ctrl-C) is not reported as an error.
func Execute(ctx context.Context, root *cobra.Command) int {
	err := root.ExecuteContext(ctx)
	// An interrupt cancels ctx: whatever the command made of that (a
	// cancelled call, a wait that "timed out"), it did not finish.
	if ctx.Err() != nil {
		fmt.Fprintln(root.ErrOrStderr(), "error: interrupted")
		return ExitInterrupted
	}
	if err == nil {
		return 0
	}
	var withCode exit.Error
	if errors.As(err, &withCode) {
		if withCode.Err != nil {
			fmt.Fprintf(root.ErrOrStderr(), "error: %v\n", withCode.Err)
		}
		return withCode.Code
	}
	fmt.Fprintf(root.ErrOrStderr(), "error: %v\n", err)
	return 1
}

// ExitInterrupted is the exit code after an interrupt (SIGINT or SIGTERM),
// as shells report 128+SIGINT.
const ExitInterrupted = 130

// Streams returns the process's standard streams.
func Streams() genericiooptions.IOStreams {
	return genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
}
