// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Command kubectl-meshcert is the kubectl meshcert plugin.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	_ "k8s.io/client-go/plugin/pkg/client/auth"

	"github.com/meshcert/kubectl-meshcert/plugin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := plugin.Execute(ctx, plugin.NewRootCommand(os.Args[0], plugin.Streams()))
	stop()
	os.Exit(code)
}
