// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package inspect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/meshcert/kubectl-meshcert/core/token"
	"github.com/meshcert/kubectl-meshcert/plugin/command"
	"github.com/meshcert/kubectl-meshcert/plugin/output"
)

// TokenReport is inspect token's JSON.
type TokenReport struct {
	Claims     *token.Claims    `json:"claims"`
	Assessment token.Assessment `json:"assessment"`
}

// TokenOptions are `inspect token`'s flags and state. It reads only a
// local file or standard input.
type TokenOptions struct {
	Output   output.Options
	File     string
	Audience string
	genericiooptions.IOStreams

	now time.Time
}

func newTokenCommand(streams genericiooptions.IOStreams) *cobra.Command {
	o := &TokenOptions{IOStreams: streams, Audience: token.DefaultAudience, Output: output.Options{Table: true}}
	cmd := &cobra.Command{
		Use:   "token [FILE|-]",
		Short: "Decode a service-account token and say whether it is trustworthy, with every reason",
		Example: `  # Is the token a pod presents trustworthy for the mesh?
  kubectl exec web-7d4b9 -- cat /var/run/secrets/tokens/istio-token | kubectl meshcert inspect token -`,
		Args: cobra.MaximumNArgs(1),
		RunE: command.RunE(o),
	}
	cmd.Flags().StringVar(&o.Audience, "audience", o.Audience, "the audience the token should carry")
	o.Output.Kind = "TokenReport"
	o.Output.AddFlags(cmd)
	return cmd
}

// Complete takes the file, if any.
func (o *TokenOptions) Complete(args []string) error {
	if len(args) == 1 {
		o.File = args[0]
	}
	o.now = time.Now()
	return nil
}

// Validate checks the flags.
func (o *TokenOptions) Validate() error {
	if o.Audience == "" {
		return errors.New("--audience must not be empty")
	}
	return o.Output.Validate()
}

// Run decodes and classifies the token.
func (o *TokenOptions) Run(context.Context) error {
	var data []byte
	var err error
	switch o.File {
	case "", "-":
		data, err = io.ReadAll(io.LimitReader(o.In, token.MaxSize+1))
	default:
		data, err = os.ReadFile(o.File)
	}
	if err != nil {
		return err
	}
	claims, err := token.Decode(string(data))
	if err != nil {
		return err
	}
	r := TokenReport{Claims: claims, Assessment: token.Classify(claims, token.Options{ExpectedAudience: o.Audience, Now: o.now})}
	return o.Output.Print(o.Out, r, nil, func(w io.Writer) error {
		fmt.Fprintf(w, "Issuer:          %s\nSubject:         %s\nAudiences:       %s\n", claims.Issuer, claims.Subject, dash(strings.Join(claims.Audiences, ", ")))
		fmt.Fprintf(w, "Expires:         %s\nService account: %s/%s\n", timeOrDash(claims.Expiry), dash(claims.Namespace), dash(claims.ServiceAccount))
		if claims.Pod != "" {
			fmt.Fprintf(w, "Bound to pod:    %s\n", claims.Pod)
		}
		fmt.Fprintf(w, "Trustworthy:     %t\nUsable for %s: %t\n", r.Assessment.Trustworthy, o.Audience, r.Assessment.Usable)
		for _, f := range r.Assessment.Findings {
			mark := "info"
			if f.Blocking {
				mark = "BLOCKING"
			}
			fmt.Fprintf(w, "  %-8s %s: %s\n", mark, f.Code, f.Message)
		}
		if err := r.Assessment.Err(); err != nil {
			fmt.Fprintf(w, "\n%v\n", err)
		}
		return nil
	})
}
