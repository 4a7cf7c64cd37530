// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package local

import (
	"net"
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
