// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Command meshcert-agent is the mesh's node agent: it serves workload
// certificates to Envoy over SDS. `meshcert-agent inspect` shows what a
// running agent serves.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshcert/kubectl-meshcert/core/agent"
	"github.com/meshcert/kubectl-meshcert/core/fleet"
	"github.com/meshcert/kubectl-meshcert/plugin/output"
)

func main() {
	args := os.Args[1:]
	command := "serve"
	if len(args) > 0 && (args[0] == "serve" || args[0] == "inspect") {
		command, args = args[0], args[1:]
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if command == "inspect" {
		err = inspect(ctx, args)
	} else {
		err = serve(ctx, args)
	}
	switch {
	case errors.Is(err, pflag.ErrHelp):
	case err != nil:
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
}

func serve(ctx context.Context, args []string) error {
	cfg := agent.DefaultConfig()
	fs := pflag.NewFlagSet("meshcert-agent", pflag.ContinueOnError)
	cfg.AddFlags(fs)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig for reporting to pods; empty means in-cluster when available")
	report := fs.Bool("report-to-pods", true, "report what is served in each pod's meshcert.io/sds annotation (needs pods get/patch/watch)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if *report && cfg.Mode() != agent.ModeFileMount {
		kube, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
		if err != nil {
			cfg.Logger.Warn("no Kubernetes configuration: not reporting to pods", "error", err)
		} else {
			cfg.Kube = kube
		}
	}
	return agent.Run(ctx, cfg)
}

func inspect(ctx context.Context, args []string) error {
	var opts agent.InspectOptions
	out := output.Options{Table: true}
	fs := pflag.NewFlagSet("meshcert-agent inspect", pflag.ContinueOnError)
	fs.StringVar(&opts.SocketPath, "sds-socket", agent.DefaultConfig().SocketPath, "the agent's SDS socket")
	fs.StringVar(&opts.TokenFile, "token-file", "", "workload token to present (node mode)")
	fs.DurationVar(&opts.Timeout, "timeout", 30*time.Second, "how long to wait for the agent")
	fs.StringVarP(&out.Format, "output", "o", "", "output format: wide, json or yaml (default: a table)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := out.Validate(); err != nil {
		return err
	}
	report, err := agent.Inspect(ctx, opts)
	if err != nil {
		return err
	}
	rows := make([][]any, len(report.Resources))
	for i, r := range report.Resources {
		roots := fleet.ShortList(r.RootFingerprints)
		if r.ChainsToRoot != "" {
			roots = "chains to " + fleet.Short(r.ChainsToRoot)
		}
		rows[i] = []any{r.Name, r.Type, r.SPIFFEID, r.Serial, timeOrEmpty(r.NotAfter), timeOrEmpty(r.RotationDue), roots, r.KeyType}
	}
	table := output.NewTable([]output.Column{{Name: "RESOURCE"}, {Name: "TYPE"}, {Name: "IDENTITY"}, {Name: "SERIAL", Wide: true},
		{Name: "NOT AFTER"}, {Name: "ROTATION DUE"}, {Name: "ROOTS"}, {Name: "KEY TYPE", Wide: true}}, rows)
	return out.Print(os.Stdout, report, table, nil)
}

func timeOrEmpty(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
