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
	Text      bool
	genericiooptions.IOStreams

	now time.Time
}

func newFileCommand(streams genericiooptions.IOStreams) *cobra.Command {
	o := &FileOptions{IOStreams: streams, Output: output.Options{Table: true}}
	cmd := &cobra.Command{
		Use:   "file PATH...",
		Short: "Inspect PEM certificate chains in files",
		Example: `  # What issue wrote, verified against its root bundle
  kubectl meshcert inspect file ./certs/cert-chain.pem --roots ./certs/root-cert.pem

  # Every certificate of the chain, with usages, and why verification fails
  kubectl meshcert inspect file ./certs/cert-chain.pem --roots ./certs/root-cert.pem --text`,
		Args: cobra.MinimumNArgs(1),
		RunE: command.RunE(o),
	}
	cmd.Flags().StringVar(&o.RootsFile, "roots", "", "root bundle to verify the chains against (default: a self-signed root at the end of each file)")
	o.Output.Kind = "Certificate"
	o.Output.AddFlags(cmd)
	cmd.Flags().BoolVar(&o.Text, "text", false, textFlagHelp)
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
	if err := validateText(o.Text, o.Output); err != nil {
		return err
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
		if o.Text {
			if len(paths) > 1 {
				fmt.Fprintf(o.Out, "==> %s <==\n", path)
			}
			if err := pki.WriteChainText(o.Out, chain, roots, o.now); err != nil {
				return err
			}
			continue
		}
		report, err := pki.Describe(chain, roots, o.now)
		if err != nil {
			return err
		}
		reports = append(reports, CertificateReport{Source: path, Report: report})
	}
	if o.Text {
		return nil
	}
	list := make(output.List, len(reports))
	for i, r := range reports {
		list[i] = output.Item{Name: r.Source, Value: r}
	}
	return o.Output.Print(o.Out, list, certTable(reports), nil)
}

const textFlagHelp = "print every certificate of the chain (subject, issuer, validity, key and extended key usages, SANs) and why verification fails"

func validateText(text bool, out output.Options) error {
	if text && out.Format != "" {
		return fmt.Errorf("--text and -o %s both choose the output: use one", out.Format)
	}
	return nil
}
