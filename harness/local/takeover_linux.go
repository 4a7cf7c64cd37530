// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package local

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/meshcert/kubectl-meshcert/harness/workload"
)

// takeOverEnv, set in the environment of this very program, makes it the
// hostile workload of TryTakeOverSocket instead of what it is.
const takeOverEnv = "MESHCERT_LOCAL_TAKE_OVER_SOCKET"

func init() {
	if path := os.Getenv(takeOverEnv); path != "" {
		os.Exit(takeOverFromReadOnlyMount(path))
	}
}

// TryTakeOverSocket runs a hostile workload against the agent's socket as
// a pod would meet it: this program, run again as root of a user namespace
// of its own (mapped to this user, who owns the socket's directory) and in
// a mount namespace of its own where the socket's directory is bind-mounted
// read-only, as the kubelet mounts it into pods (deploy.MountSDSSocket).
func (p *Provider) TryTakeOverSocket(ctx context.Context, _ string) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), takeOverEnv+"="+p.Socket())
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	report := strings.TrimSpace(out.String())
	if err != nil {
		return report, fmt.Errorf("the hostile workload (user and mount namespaces of its own, socket directory read-only) %v: %s", err, report)
	}
	return report, nil
}

// takeOverFromReadOnlyMount is the hostile workload's side.
func takeOverFromReadOnlyMount(path string) int {
	dir := filepath.Dir(path)
	for _, m := range []struct {
		source string
		flags  uintptr
	}{
		{"", unix.MS_REC | unix.MS_PRIVATE}, // nothing done here reaches the host's mounts
		{dir, unix.MS_BIND},
		{"", unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY},
	} {
		target := dir
		if m.flags&unix.MS_PRIVATE != 0 {
			target = "/"
		}
		if err := unix.Mount(m.source, target, "", m.flags, ""); err != nil {
			fmt.Fprintf(os.Stderr, "mount %s read-only as the kubelet would: %v\n", dir, err)
			return 2
		}
	}
	lines, err := workload.TryTakeOverSocket(path)
	fmt.Println(strings.Join(lines, "\n"))
	if err != nil {
		fmt.Println(err)
		return 1
	}
	return 0
}
