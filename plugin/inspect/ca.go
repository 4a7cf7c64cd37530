// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package inspect

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/meshcert/kubectl-meshcert/core/ca"
	"github.com/meshcert/kubectl-meshcert/core/fleet"
	"github.com/meshcert/kubectl-meshcert/core/kubeapi"
	"github.com/meshcert/kubectl-meshcert/core/pki"
	"github.com/meshcert/kubectl-meshcert/plugin/cluster"
	"github.com/meshcert/kubectl-meshcert/plugin/command"
	"github.com/meshcert/kubectl-meshcert/plugin/output"
)

// CAOptions are `inspect ca`'s flags and state.
type CAOptions struct {
	*CommonOptions
	Output output.Options
	genericiooptions.IOStreams
	connection
}

func newCACommand(factory *cluster.Factory, streams genericiooptions.IOStreams, common *CommonOptions) *cobra.Command {
	o := &CAOptions{CommonOptions: common, IOStreams: streams, Output: output.Options{Table: true}, connection: connection{factory: factory}}
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Show the CA's roots, which root signs, and their expiry",
		Example: `  # The roots of the CA installed in meshcert-system
  kubectl meshcert inspect ca

  # The trust bundle, as PEM, for a client outside the mesh
  kubectl meshcert inspect ca -o pem > mesh-roots.pem`,
		Args: cobra.NoArgs,
		RunE: command.RunE(o),
	}
	o.Output.Kind = "CAStatus"
	o.Output.AddFlags(cmd)
	cmd.Flag("output").Usage = "output format: wide|json|yaml, or pem for the trust bundle (default: a table)"
	return cmd
}

// FormatPEM prints the CA's trust bundle as PEM.
const FormatPEM = "pem"

// Complete has nothing to fill in: inspect ca takes no arguments.
func (o *CAOptions) Complete([]string) error { return nil }

// Validate checks the flags, before any API call.
func (o *CAOptions) Validate() error {
	if err := o.CommonOptions.Validate(); err != nil {
		return err
	}
	if o.Output.Format == FormatPEM {
		return nil
	}
	if err := o.Output.Validate(); err != nil {
		return fmt.Errorf("%w (inspect ca also takes -o pem)", err)
	}
	return nil
}

// Run prints the CA's roots.
func (o *CAOptions) Run(ctx context.Context) error {
	if err := o.connect(ctx); err != nil {
		return err
	}
	st, _, err := ca.ReadRotationStatus(ctx, o.clients.Client, o.CANamespace)
	if errors.Is(err, ca.ErrNotInstalled) {
		return err
	}
	if err != nil {
		return kubeapi.Explain(err, "read the CA")
	}
	if o.Output.Format == FormatPEM {
		authority, _, err := ca.LoadAuthorityReadOnly(ctx, o.clients.Client, o.CANamespace)
		if err != nil {
			return kubeapi.Explain(err, "read the CA's roots")
		}
		_, err = o.Out.Write(pki.EncodeCertificates(authority.Roots()...))
		return err
	}
	rows := [][]any{}
	add := func(role string, r ca.RootInfo) {
		rows = append(rows, []any{role, fleet.Short(r.Fingerprint), r.Subject, timeOrDash(r.NotAfter), pki.Remaining(r.NotAfter, o.now)})
	}
	for _, r := range st.Bundle {
		role := "trusted"
		if r.Fingerprint == st.SigningRoot.Fingerprint {
			role = "trusted, signing"
		}
		add(role, r)
	}
	if st.Previous != nil && !slices.ContainsFunc(st.Bundle, func(r ca.RootInfo) bool { return r.Fingerprint == st.Previous.Fingerprint }) {
		add("previous", *st.Previous)
	}
	table := output.NewTable([]output.Column{{Name: "ROLE"}, {Name: "SHA-256"}, {Name: "SUBJECT"}, {Name: "NOT AFTER"}, {Name: "REMAINING"}}, rows)
	return o.Output.Print(o.Out, st, table, nil)
}
