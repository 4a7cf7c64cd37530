// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package local

import (
	"net"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestServiceReachesReplicasFromEachNodesAddress(t *testing.T) {
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer backend.Close()
	s, err := newService("127.0.0.1:0")
	require.NoError(t, err)
	defer s.close()
	s.setBackends([]string{backend.Addr().String()})

	for _, node := range []int{0, 1, 251} {
		addr := s.listeners[0].Addr().String()
		if node > 0 {
			addr, err = s.listenFrom(nodeIP(node))
			require.NoError(t, err)
		}
		client, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		upstream, err := backend.Accept()
		require.NoError(t, err)
		from := upstream.RemoteAddr().(*net.TCPAddr).IP
		require.True(t, nodeIP(node).Equal(from), "node %d's connection came from %s", node, from)
		client.Close()
		upstream.Close()
	}
	require.False(t, nodeIP(1).Equal(nodeIP(251)), "nodes have addresses of their own")
}

func TestFreeAddrsAreDistinctAndOutsideTheEphemeralRange(t *testing.T) {
	seen := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			addr, err := FreeAddr()
			require.NoError(t, err)
			_, port, err := net.SplitHostPort(addr)
			require.NoError(t, err)
			n, err := strconv.Atoi(port)
			require.NoError(t, err)
			require.Less(t, n, 32768, "the kernel may hand ports from 32768 up to any socket")
			mu.Lock()
			defer mu.Unlock()
			require.False(t, seen[addr], "%s was handed out twice", addr)
			seen[addr] = true
		})
	}
	wg.Wait()
}
