// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package cli is the meshcert-harness command line.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/meshcert/kubectl-meshcert/harness/demo"
)

// Execute runs meshcert-harness with args and returns its exit code.
func Execute(ctx context.Context, args []string, out, errOut io.Writer) int {
	root := &cobra.Command{
		Use:           "meshcert-harness",
		Short:         "Bring up local clusters and prove the mesh's certificate paths on them",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(out)
	root.SetErr(errOut)
	root.AddCommand(&cobra.Command{
		Use:   "demo",
		Short: "Start a bound and a legacy local cluster, mint and review a workload token on each, and print what was seen",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := demo.Run(cmd.Context(), demo.Options{Out: out})
			return err
		},
	})
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		if errors.Is(err, context.Canceled) {
			return 130
		}
		fmt.Fprintf(errOut, "error: %v\n", err)
		return 1
	}
	return 0
}
