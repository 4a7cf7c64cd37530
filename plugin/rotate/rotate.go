// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package rotate is `kubectl meshcert rotate`: re-issue file-mount Secrets,
// re-key an SDS workload without restarting it, and rotate the CA root in
// guided phases. The decisions (which phase may run, what blocks it) are
// core/ca's; this package parses flags, calls core and prints.
package rotate

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/meshcert/kubectl-meshcert/core/fleet"
	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/plugin/cluster"
)

// CommonOptions are the flags every rotate subcommand shares: they are
// persistent flags of rotate itself.
type CommonOptions struct {
	Wait        bool
	Timeout     time.Duration
	CANamespace string
}

// Validate checks the shared flags.
func (c *CommonOptions) Validate() error {
	if c.Timeout <= 0 {
		return fmt.Errorf("--timeout %s must be positive", c.Timeout)
	}
	if c.CANamespace == "" {
		return fmt.Errorf("--ca-namespace must not be empty")
	}
	return nil
}

// NewCommand returns rotate and its subcommands.
func NewCommand(factory *cluster.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	common := &CommonOptions{Wait: true, Timeout: 2 * time.Minute, CANamespace: mesh.DefaultNamespace}
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Re-issue certificates now: file-mount Secrets, an SDS pod's identity, or the CA root",
		Example: `  # Re-issue one file-mount Secret and wait until the CA has written it
  kubectl meshcert rotate secret meshcert.web -n shop

  # Re-key an SDS workload without restarting it
  kubectl meshcert rotate pod web-7d4b9 -n shop

  # Rotate the CA root, one phase at a time
  kubectl meshcert rotate root --phase prepare`,
	}
	cmd.PersistentFlags().BoolVar(&common.Wait, "wait", common.Wait, "wait until the new certificate is served")
	cmd.PersistentFlags().DurationVar(&common.Timeout, "timeout", common.Timeout, "how long --wait waits")
	cmd.PersistentFlags().StringVar(&common.CANamespace, "ca-namespace", common.CANamespace, "namespace of the mesh CA")
	root := newRootCommand(factory, streams, common)
	root.AddCommand(newStatusCommand(factory, streams, common))
	cmd.AddCommand(newSecretCommand(factory, streams, common), newPodCommand(factory, streams, common), root)
	return cmd
}

// requestValue is the value of a rotation request: the time, so that each
// request differs from the last.
func requestValue() string { return fleet.RotationRequestValue(time.Now()) }

// waitFor polls done until it holds or the --timeout passes.
func (c *CommonOptions) waitFor(ctx context.Context, what string, done wait.ConditionWithContextFunc) error {
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, c.Timeout, true, done); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%s did not get its new certificate within %s (--timeout)", what, c.Timeout)
	}
	return nil
}
