// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Command meshcert-runc wraps runc for dockerd on hosts whose capability
// bounding set lacks capabilities that Docker grants to --privileged
// containers (CAP_SYS_RESOURCE here). It trims the OCI documents that runc is
// about to apply to what the host allows, then runs the real runc.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/meshcert/kubectl-meshcert/harness/dockerhost"
)

func main() {
	realRunc := os.Getenv("MESHCERT_REAL_RUNC")
	if realRunc == "" {
		realRunc = "/usr/sbin/runc"
	}
	if err := adjust(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "meshcert-runc: %v\n", err)
		os.Exit(1)
	}
	args := append([]string{realRunc}, os.Args[1:]...)
	err := syscall.Exec(realRunc, args, os.Environ())
	fmt.Fprintf(os.Stderr, "meshcert-runc: run %s: %v (set MESHCERT_REAL_RUNC to the real runc)\n", realRunc, err)
	os.Exit(1)
}

func adjust(args []string) error {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return err
	}
	bounding, err := dockerhost.BoundingSet(string(status))
	if err != nil {
		return err
	}
	inv := dockerhost.ParseInvocation(args)
	if inv.Bundle != "" {
		if err := rewrite(filepath.Join(inv.Bundle, "config.json"), func(raw []byte) ([]byte, []string, error) {
			return dockerhost.AdjustBundleConfig(raw, bounding)
		}); err != nil {
			return err
		}
	}
	if inv.ProcessFile != "" {
		return rewrite(inv.ProcessFile, func(raw []byte) ([]byte, []string, error) {
			return dockerhost.AdjustProcess(raw, bounding)
		})
	}
	return nil
}

func rewrite(path string, change func([]byte) ([]byte, []string, error)) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, changes, err := change(raw)
	if err != nil || len(changes) == 0 {
		return err
	}
	return os.WriteFile(path, out, 0o600)
}
