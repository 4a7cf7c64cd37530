// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package workload

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// TryTakeOverSocket does what a hostile workload would do to the node
// agent's socket at path: unlink it, put a file of its own in the socket's
// directory, rename that over the socket, and listen at the socket's path.
// It returns a line per attempt, and an error naming every attempt that
// succeeded or failed for another reason than the file system refusing it.
// It undoes nothing: it is meant to fail.
func TryTakeOverSocket(path string) ([]string, error) {
	dir := filepath.Dir(path)
	planted := filepath.Join(dir, "planted.sock")
	attempts := []struct {
		name string
		do   func() error
	}{
		{"unlink the socket", func() error { return os.Remove(path) }},
		{"create a file beside it", func() error {
			f, err := os.Create(planted)
			if err == nil {
				f.Close()
			}
			return err
		}},
		{"rename a file over it", func() error { return os.Rename(planted, path) }},
		{"listen at its path", func() error {
			ln, err := net.Listen("unix", path)
			if err == nil {
				ln.Close()
			}
			return err
		}},
	}
	var lines, taken []string
	for _, a := range attempts {
		err := a.do()
		lines = append(lines, fmt.Sprintf("%s: %v", a.name, errOrSucceeded(err)))
		if !refusedByTheFileSystem(err) {
			taken = append(taken, fmt.Sprintf("%s (%v)", a.name, errOrSucceeded(err)))
		}
	}
	if _, err := os.Stat(path); err != nil {
		taken = append(taken, fmt.Sprintf("the socket is gone (%v)", err))
	}
	if len(taken) > 0 {
		return lines, fmt.Errorf("the workload could touch the agent's socket: %s", strings.Join(taken, "; "))
	}
	return lines, nil
}

func errOrSucceeded(err error) any {
	if err == nil {
		return "succeeded"
	}
	return err
}

// refusedByTheFileSystem reports a refusal because the mount is read-only
// or the directory is not the caller's; listening at a path that exists
// fails with EADDRINUSE, which also leaves the socket alone.
func refusedByTheFileSystem(err error) bool {
	return errors.Is(err, syscall.EROFS) || errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EADDRINUSE) ||
		errors.Is(err, fs.ErrNotExist) // renaming a file that could not be created
}
