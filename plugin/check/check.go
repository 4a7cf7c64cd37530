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
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/core/preflight"
	"github.com/meshcert/kubectl-meshcert/core/token"
	"github.com/meshcert/kubectl-meshcert/plugin/cluster"
	"github.com/meshcert/kubectl-meshcert/plugin/command"
	"github.com/meshcert/kubectl-meshcert/plugin/exit"
	"github.com/meshcert/kubectl-meshcert/plugin/output"
	"github.com/meshcert/kubectl-meshcert/plugin/version"
)

// Result is check's JSON output; see preflight.Result.
type Result = preflight.Result

// Exit codes of check, besides 0 (no check failed; warnings allowed) and 1
// (check could not run: bad flags, or the cluster was unreachable).
const (
	// ExitFailed means at least one check failed.
	ExitFailed = 2
)

// Options are check's flags and state.
type Options struct {
	Output        output.Options
	Audience      string
	Require       string
	CANamespace   string
	Pre           bool
	ExpiryWarning time.Duration
	Wait          time.Duration
	genericiooptions.IOStreams

	factory *cluster.Factory
	clients *cluster.Clients
	// colour is set when Out is a terminal and NO_COLOR is not.
	colour bool
}

// NewCommand returns the check command.
func NewCommand(factory *cluster.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &Options{factory: factory, IOStreams: streams, Audience: token.DefaultAudience, CANamespace: mesh.DefaultNamespace,
		ExpiryWarning: preflight.DefaultExpiryWarning}
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check the cluster and the installed mesh; exit 2 when a check fails, for pipelines",
		Long: `Check mints a real projected token for a probe service account, has the API server review it and
reads its claims; then it checks the installed mesh: the CA's replicas and leader, a ready agent on every
node, the root's expiry, a root rotation left mid-phase, the root ConfigMap in every namespace, version skew
between the plugin, the CA and the agents, and workload certificates that are expired, failing or overdue.
With --pre it checks only what install needs: the API, tokens, and your permissions.

Each check passes (✔), warns (‼) or fails (✖), with the fix under it. A cluster without trustworthy tokens
only warns (the file-mount path works there) unless --require sds or node agents are installed.

Exit codes: 0 when no check failed (warnings allowed), 1 when check could not run, 2 when a check failed.
--wait repeats the checks until none fails or the time is up. Anything check creates, it removes.`,
		Example: `  # Before installing: can this cluster run the mesh, and may I install it?
  kubectl meshcert check --pre

  # After installing: gate a pipeline until the mesh is healthy, for at most five minutes
  kubectl meshcert check --wait 5m

  # Fail (exit code 2) unless the cluster can serve SDS; warn when the root expires within a year
  kubectl meshcert check --require sds --expiry-warning 8760h -o json`,
		Args: cobra.NoArgs,
		RunE: command.RunE(o),
	}
	cmd.Flags().StringVar(&o.Audience, "audience", o.Audience, "the mesh audience tokens must carry")
	cmd.Flags().StringVar(&o.Require, "require", "", "fail unless this path is possible (sds)")
	cmd.Flags().StringVar(&o.CANamespace, "ca-namespace", o.CANamespace, "namespace of the mesh CA")
	cmd.Flags().BoolVar(&o.Pre, "pre", false, "check only what install needs, before installing")
	cmd.Flags().DurationVar(&o.ExpiryWarning, "expiry-warning", o.ExpiryWarning, "warn when the root expires within this time")
	cmd.Flags().DurationVar(&o.Wait, "wait", 0, "repeat the checks until none fails, for at most this long (such as 5m)")
	o.Output.Kind = "CheckResult"
	o.Output.AddFlags(cmd)
	return cmd
}

// Complete decides whether to colour the output.
func (o *Options) Complete([]string) error {
	o.colour = colourWanted(o.Out)
	return nil
}

// colourWanted reports whether w is a terminal and NO_COLOR is unset
// (https://no-color.org).
func colourWanted(w io.Writer) bool {
	if _, set := os.LookupEnv("NO_COLOR"); set {
		return false
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Validate checks the flags, before any API call.
func (o *Options) Validate() error {
	if o.Require != "" && o.Require != mesh.ModeSDS {
		return fmt.Errorf("--require %q: the only requirement check knows is %q", o.Require, mesh.ModeSDS)
	}
	if o.Audience == "" {
		return errors.New("--audience must not be empty")
	}
	if o.ExpiryWarning <= 0 {
		return fmt.Errorf("--expiry-warning %s must be positive (such as 2160h for 90 days)", o.ExpiryWarning)
	}
	if o.Wait < 0 {
		return fmt.Errorf("--wait %s must not be negative", o.Wait)
	}
	return o.Output.Validate()
}

// Run performs the checks, repeating them while --wait allows, and prints
// the last result.
func (o *Options) Run(ctx context.Context) error {
	var err error
	if o.clients, err = o.factory.Clients(); err != nil {
		return err
	}
	deadline := time.Now().Add(o.Wait)
	var result *Result
	for {
		result, err = preflight.Run(ctx, o.clients.Fleet, preflight.Options{
			Server: o.clients.Config.Host, Namespace: o.clients.Namespace, Audience: o.Audience, CANamespace: o.CANamespace,
			Pre: o.Pre, RequireSDS: o.Require == mesh.ModeSDS, ExpiryWarning: o.ExpiryWarning, ClientVersion: version.Current(),
		})
		if err != nil {
			return err
		}
		if result.Failed == 0 || !time.Now().Add(waitInterval).Before(deadline) {
			break
		}
		fmt.Fprintf(o.ErrOut, "waiting: %d check(s) failing: %s\n", result.Failed, strings.Join(result.Failing(), ", "))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(waitInterval):
		}
	}
	if err := o.Output.Print(o.Out, result, nil, func(w io.Writer) error { return printText(w, result, o.colour) }); err != nil {
		return err
	}
	if result.Failed > 0 {
		msg := fmt.Sprintf("%d check(s) failed: %s", result.Failed, strings.Join(result.Failing(), ", "))
		if o.Require == mesh.ModeSDS && result.RecommendedPath != mesh.ModeSDS {
			msg = "SDS is not possible on this cluster: it cannot issue trustworthy tokens for the mesh; " + msg
		}
		if o.Wait > 0 {
			msg += fmt.Sprintf(" (still, after waiting %s)", o.Wait)
		}
		return exit.Error{Code: ExitFailed, Err: errors.New(msg)}
	}
	return nil
}

const waitInterval = 2 * time.Second

// Symbols of the statuses, as linkerd check prints them.
var symbols = map[string]string{preflight.Pass: "✔", preflight.Warn: "‼", preflight.Fail: "✖"}

// ANSI colours of the statuses.
var colours = map[string]string{preflight.Pass: "\x1b[32m", preflight.Warn: "\x1b[33m", preflight.Fail: "\x1b[31m"}

var groupTitles = map[string]string{
	preflight.GroupKubernetes: "Kubernetes",
	preflight.GroupTokens:     "Service-account tokens",
	preflight.GroupCA:         "Mesh CA",
	preflight.GroupAgents:     "Node agents",
	preflight.GroupRoots:      "Roots",
	preflight.GroupWorkloads:  "Workload certificates",
}

func printText(w io.Writer, r *Result, colour bool) error {
	paint := func(status, s string) string {
		if !colour {
			return s
		}
		return colours[status] + s + "\x1b[0m"
	}
	fmt.Fprintf(w, "Cluster %s\n", r.Server)
	group := ""
	for _, c := range r.Checks {
		if c.Group != group {
			group = c.Group
			title := groupTitles[group]
			fmt.Fprintf(w, "\n%s\n%s\n", title, strings.Repeat("-", utf8.RuneCountInString(title)))
		}
		fmt.Fprintf(w, "%s %s: %s\n", paint(c.Status, symbols[c.Status]), c.Name, c.Message)
		if c.Fix != "" && c.Status != preflight.Pass {
			fmt.Fprintf(w, "    fix: %s\n", c.Fix)
		}
	}
	fmt.Fprintf(w, "\nTrustworthy JWTs: %t\nRecommended path: %s\n", r.TrustworthyJWT, r.RecommendedPath)
	status, summary := preflight.Pass, "Status check results are ✔"
	switch {
	case r.Failed > 0:
		status, summary = preflight.Fail, fmt.Sprintf("Status check results are ✖ (%d failed, %d warnings)", r.Failed, r.Warnings)
	case r.Warnings > 0:
		status, summary = preflight.Warn, fmt.Sprintf("Status check results are ‼ (%d warnings)", r.Warnings)
	}
	_, err := fmt.Fprintln(w, paint(status, summary))
	return err
}
