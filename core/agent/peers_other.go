// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build !linux

package agent

import (
	"errors"
	"net"
)

// peerCredentials is Linux's SO_PEERCRED; elsewhere no peer is told apart,
// and the per-peer cap does not apply.
func peerCredentials(net.Conn) (peerAddr, error) {
	return peerAddr{uid: -1}, errors.ErrUnsupported
}
