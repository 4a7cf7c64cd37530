// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Command meshcert-harness brings up local clusters and shows what the mesh
// sees on them.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/meshcert/kubectl-meshcert/harness/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
