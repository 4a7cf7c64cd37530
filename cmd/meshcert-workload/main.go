// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Command meshcert-workload is the harness's demo workload as a program, for
// clusters where workloads run as containers: it gets its certificate over
// SDS or from mounted files, serves mTLS, optionally calls a peer at a
// steady rate, and serves a control endpoint: its state as JSON on /status,
// and calls to peers on /call and /traffic.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/meshcert/kubectl-meshcert/harness/workload"
)

func main() {
	fs := pflag.NewFlagSet("meshcert-workload", pflag.ContinueOnError)
	name := fs.String("name", os.Getenv("HOSTNAME"), "workload name")
	socket := fs.String("sds-socket", "", "node agent SDS socket (with --token-file)")
	tokenFile := fs.String("token-file", "", "projected service-account token to present over SDS")
	certDir := fs.String("cert-dir", "", "mounted key/cert Secret (file-mount path)")
	listen := fs.String("listen", ":8443", "mTLS listen address")
	statusListen := fs.String("status-listen", ":8080", "address of the control endpoint: GET /status, POST /call, POST and DELETE /traffic")
	allow := fs.StringArray("allow", nil, "peer SPIFFE ID to accept (repeatable; none accepts any chaining to the roots)")
	call := fs.String("call", "", "peer address to call at --interval")
	interval := fs.Duration("interval", 100*time.Millisecond, "time between calls to --call")
	takeOver := fs.String("try-take-over-socket", "", "act as a hostile workload: try to unlink or replace the node agent's socket at this path, print each attempt, and exit 0 only if every one was refused")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if *takeOver != "" {
		lines, err := workload.TryTakeOverSocket(*takeOver)
		fmt.Println(strings.Join(lines, "\n"))
		if err != nil {
			fmt.Fprintf(os.Stderr, "error: %v\n", err)
			os.Exit(1)
		}
		return
	}
	var source workload.Source
	switch {
	case *certDir != "" && *socket == "":
		source = &workload.Files{Dir: *certDir}
	case *socket != "" && *tokenFile != "" && *certDir == "":
		source = &workload.SDS{Socket: *socket, TokenFile: *tokenFile, Node: *name}
	default:
		fmt.Fprintln(os.Stderr, "error: give --cert-dir (file-mount), or --sds-socket with --token-file (sds)")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	w, err := workload.New(*listen, *name, source, *allow, workload.WithControl(*statusListen))
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
	if *call != "" {
		w.StartTraffic(*call, *interval)
	}
	if err := w.Run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
}
