// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Command meshcert-controlplane runs a real kube-apiserver with embedded etcd
// and the service-account, tokens and garbage-collector controllers in one
// process, for tests and for the local harness provider.
//
// It prints one JSON line on stdout when the cluster is ready, and shuts down
// (API server first, then etcd) when its standard input closes or it receives
// SIGINT or SIGTERM. Reading standard input is what ties its life to its
// parent's: when the parent dies, the pipe closes.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/klog/v2"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.profile, "profile", profileBound, "token profile: bound (TokenRequest works) or legacy (TokenRequest answers 404, Secrets get legacy tokens)")
	flag.StringVar(&cfg.dir, "dir", "", "working directory for keys, kubeconfig and etcd data (required)")
	flag.StringVar(&cfg.issuer, "issuer", defaultIssuer, "service-account token issuer")
	flag.BoolVar(&cfg.removeDir, "remove-dir", false, "remove --dir on exit")
	flag.IntVar(&cfg.port, "port", 0, "the API server's port; 0 picks a free one")
	flag.BoolVar(&cfg.watchStdin, "exit-on-stdin-close", true, "shut down when standard input reaches EOF")
	flag.Parse()

	if err := cfg.validate(); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
}

func run(cfg config) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-signals
		cancel()
	}()
	if cfg.watchStdin {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			cancel()
		}()
	}
	if cfg.removeDir {
		defer os.RemoveAll(cfg.dir)
	}

	cluster, err := startCluster(ctx, cfg)
	if cluster != nil {
		defer cluster.stop()
	}
	if err != nil {
		return err
	}

	ready, err := json.Marshal(cluster.ready)
	if err != nil {
		return err
	}
	fmt.Println(string(ready))

	<-ctx.Done()
	klog.InfoS("shutting down", "reason", "stdin closed or signal received")
	return nil
}

// readyTimeout bounds how long the cluster may take to become usable.
const readyTimeout = 60 * time.Second
