// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package local

import (
	"io"
	"net"
	"sync"
)

// service plays kube-proxy for the CA's Service: it accepts on one address
// and forwards each connection to the next of the live replicas, so that a
// killed replica's clients reconnect to another as they would in a cluster.
// Simulated nodes reach it on addresses of their own, and it connects to the
// replicas from each node's own loopback IP, so that the CA tells the nodes
// apart as it tells apart the node IPs of a cluster.
type service struct {
	listeners []net.Listener

	mu       sync.Mutex
	backends []string
	next     int
	conns    map[net.Conn]string
}

func newService(addr string) (*service, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &service{listeners: []net.Listener{ln}, conns: map[net.Conn]string{}}
	go s.serve(ln, &net.Dialer{})
	return s, nil
}

// listenFrom returns a new address of the Service whose connections reach
// the replicas from source.
func (s *service) listenFrom(source net.IP) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.listeners = append(s.listeners, ln)
	s.mu.Unlock()
	go s.serve(ln, &net.Dialer{LocalAddr: &net.TCPAddr{IP: source}})
	return ln.Addr().String(), nil
}

// setBackends replaces the replicas connections go to, and closes the
// connections to replicas no longer listed, as their pods' ends would.
func (s *service) setBackends(addrs []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.backends = addrs
	for conn, backend := range s.conns {
		found := false
		for _, a := range addrs {
			found = found || a == backend
		}
		if !found {
			conn.Close()
		}
	}
}

func (s *service) pick() (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.backends) == 0 {
		return "", false
	}
	s.next = (s.next + 1) % len(s.backends)
	return s.backends[s.next], true
}

func (s *service) track(conn net.Conn, backend string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if backend == "" {
		delete(s.conns, conn)
	} else {
		s.conns[conn] = backend
	}
}

func (s *service) serve(ln net.Listener, dialer *net.Dialer) {
	for {
		client, err := ln.Accept()
		if err != nil {
			return
		}
		go s.forward(client, dialer)
	}
}

// forward connects client to a replica; with none, the connection is
// refused as a Service without endpoints refuses it.
func (s *service) forward(client net.Conn, dialer *net.Dialer) {
	defer client.Close()
	backend, ok := s.pick()
	if !ok {
		return
	}
	upstream, err := dialer.Dial("tcp", backend)
	if err != nil {
		return
	}
	defer upstream.Close()
	s.track(upstream, backend)
	defer s.track(upstream, "")
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(upstream, client); done <- struct{}{} }()
	go func() { _, _ = io.Copy(client, upstream); done <- struct{}{} }()
	<-done
}

func (s *service) close() {
	s.mu.Lock()
	for _, ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()
	s.setBackends(nil)
}
