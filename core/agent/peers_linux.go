// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// peerCredentials asks the kernel who holds the other end of conn.
func peerCredentials(conn net.Conn) (peerAddr, error) {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return peerAddr{}, fmt.Errorf("not a Unix socket connection: %T", conn)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return peerAddr{}, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return peerAddr{}, err
	}
	if credErr != nil {
		return peerAddr{}, fmt.Errorf("SO_PEERCRED: %w", credErr)
	}
	return peerAddr{uid: int(cred.Uid), pid: int(cred.Pid)}, nil
}
