// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"context"
	"errors"
	"net"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/meshcert/kubectl-meshcert/core/limit"
)

// peerAddr is who is at the other end of an SDS connection, as the kernel
// reports it (SO_PEERCRED): the process's user and process IDs, as seen from
// the agent's namespaces (the PID is 0 for a process in another PID
// namespace, which is every workload's).
type peerAddr struct {
	uid, pid int
}

func (a peerAddr) Network() string { return "unix" }
func (a peerAddr) String() string {
	return "uid " + strconv.Itoa(a.uid) + ", pid " + strconv.Itoa(a.pid)
}

// peerConn is an accepted connection that knows its peer.
type peerConn struct {
	net.Conn
	peer peerAddr
}

func (c *peerConn) RemoteAddr() net.Addr { return c.peer }

// peerListener labels each accepted connection with its peer's credentials.
type peerListener struct{ net.Listener }

func (l peerListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	addr, err := peerCredentials(conn)
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		return conn, nil
	case err != nil:
		// A connection whose peer cannot be told is not served uncounted:
		// it is closed, and the server drops it; the listener goes on.
		conn.Close()
		return conn, nil
	}
	return &peerConn{Conn: conn, peer: addr}, nil
}

// peerLimits caps the SDS calls each peer user holds at once, so that one
// workload cannot take every stream the agent serves. Pods whose containers
// run under the same UID share one cap.
type peerLimits struct {
	byUID   limit.PerKey[int]
	refused prometheus.Counter
}

func (l *peerLimits) acquire(ctx context.Context) (release func(), err error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return func() {}, nil
	}
	addr, ok := p.Addr.(peerAddr)
	if !ok {
		return func() {}, nil
	}
	release, ok = l.byUID.Acquire(addr.uid)
	if !ok {
		l.refused.Inc()
		return nil, status.Errorf(codes.ResourceExhausted,
			"the workloads running as uid %d hold %d SDS calls, the most one user may (--max-streams-per-peer): close idle streams, run workloads under distinct UIDs, or raise the limit", addr.uid, l.byUID.Max)
	}
	return release, nil
}

func (l *peerLimits) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	release, err := l.acquire(ss.Context())
	if err != nil {
		return err
	}
	defer release()
	return handler(srv, ss)
}

func (l *peerLimits) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	release, err := l.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	return handler(ctx, req)
}
