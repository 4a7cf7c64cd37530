// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package inspect

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/meshcert/kubectl-meshcert/core/pki"
	"github.com/meshcert/kubectl-meshcert/plugin/command"
	"github.com/meshcert/kubectl-meshcert/plugin/output"
)

// FileOptions are `inspect file`'s flags and state. It reads only local
// files.
type FileOptions struct {
	Output    output.Options
	Paths     []string
	RootsFile string
	genericiooptions.IOStreams

	now time.Time
}

func newFileCommand(streams genericiooptions.IOStreams) *cobra.Command {
	o := &FileOptions{IOStreams: streams, Output: output.Options{Table: true}}
	cmd := &cobra.Command{
		Use:   "file PATH...",
		Short: "Inspect PEM certificate chains in files",
		Example: `  # What issue wrote, verified against its root bundle
  kubectl meshcert inspect file ./certs/cert-chain.pem --roots ./certs/root-cert.pem`,
		Args: cobra.MinimumNArgs(1),
		RunE: command.RunE(o),
	}
	cmd.Flags().StringVar(&o.RootsFile, "roots", "", "root bundle to verify the chains against (default: a self-signed root at the end of each file)")
	o.Output.AddFlags(cmd)
	return cmd
}

// Complete takes the paths.
func (o *FileOptions) Complete(args []string) error {
	o.Paths, o.now = args, time.Now()
	return nil
}

// Validate checks the flags.
func (o *FileOptions) Validate() error {
	if len(o.Paths) == 0 {
		return errors.New("name at least one file")
	}
	return o.Output.Validate()
}

// Run prints each file's chain.
func (o *FileOptions) Run(context.Context) error {
	paths := o.Paths
	var extraRoots []*x509.Certificate
	if o.RootsFile != "" {
		data, err := os.ReadFile(o.RootsFile)
		if err != nil {
			return fmt.Errorf("--roots: %w", err)
		}
		if extraRoots, err = pki.DecodeCertificates(data); err != nil {
			return fmt.Errorf("--roots %s: %w", o.RootsFile, err)
		}
	}
	var reports []CertificateReport
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		chain, err := pki.DecodeCertificates(data)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		roots := extraRoots
		if roots == nil && len(chain) > 1 && chain[len(chain)-1].CheckSignatureFrom(chain[len(chain)-1]) == nil {
			roots = chain[len(chain)-1:]
		}
		report, err := pki.Describe(chain, roots, o.now)
		if err != nil {
			return err
		}
		reports = append(reports, CertificateReport{Source: path, Report: report})
	}
	var v any = reports
	if len(reports) == 1 {
		v = reports[0]
	}
	return o.Output.Print(o.Out, v, certTable(reports), nil)
}
