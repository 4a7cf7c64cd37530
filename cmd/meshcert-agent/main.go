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

	"github.com/spf13/pflag"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshcert/kubectl-meshcert/core/agent"
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
