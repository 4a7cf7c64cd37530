// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Command meshcert-ca is the mesh certificate authority. It runs in-cluster,
// or against any cluster with --kubeconfig.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshcert/kubectl-meshcert/core/ca"
)

func main() {
	cfg := ca.DefaultConfig()
	fs := pflag.NewFlagSet("meshcert-ca", pflag.ContinueOnError)
	cfg.AddFlags(fs)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file; empty means in-cluster configuration")
	debug := fs.Bool("debug", false, "log every issued certificate")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if err == pflag.ErrHelp {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(2)
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(2)
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	restConfig, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: no Kubernetes configuration: %v (run in a pod, or pass --kubeconfig)\n", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := ca.Run(ctx, cfg, restConfig); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
}
