// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build unix

package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// checkSocketDir refuses to serve from a directory that anyone but the
// agent's user (or root) may write to: whoever may write there can unlink
// the socket and listen in its place, collect every workload's token and
// hand out a root bundle of their own.
func checkSocketDir(socketPath string) error {
	dir := filepath.Dir(socketPath)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("the SDS socket directory: %w", err)
	}
	if st.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("the SDS socket directory %s has mode %04o: group and others may write to it, so a workload could replace the socket; make it 0755 (or stricter), owned by the agent's user, and mount it read-only into workloads", dir, st.Mode().Perm())
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Uid != 0 && int(sys.Uid) != os.Geteuid() {
		return fmt.Errorf("the SDS socket directory %s belongs to uid %d, which could replace the socket: it must belong to the agent's user (uid %d) or root", dir, sys.Uid, os.Geteuid())
	}
	return nil
}
