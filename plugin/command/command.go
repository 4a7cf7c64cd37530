// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package command holds the shape every kubectl meshcert command follows,
// the sample-cli-plugin's: Complete fills the options in from the
// arguments, Validate checks them without any I/O, and only then Run talks
// to the cluster.
package command

import (
	"context"

	"github.com/spf13/cobra"
)

// Options are one command's flags and state.
type Options interface {
	// Complete fills in what follows from the arguments. It makes no API
	// call.
	Complete(args []string) error
	// Validate checks the options before anything is done.
	Validate() error
	// Run does the command's work within ctx, the command's context.
	Run(ctx context.Context) error
}

// RunE runs o as a cobra command does: Complete, Validate, then Run.
func RunE(o Options) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := o.Complete(args); err != nil {
			return err
		}
		if err := o.Validate(); err != nil {
			return err
		}
		return o.Run(cmd.Context())
	}
}
