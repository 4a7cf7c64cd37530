// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package workload

import (
	"context"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshcert/kubectl-meshcert/core/pki/pkitest"
)

func TestControlEndpoint(t *testing.T) {
	root := pkitest.NewRoot(t)
	roots := []*x509.Certificate{root.Cert}
	const idA, idB = "spiffe://cluster.local/ns/ctl/sa/a", "spiffe://cluster.local/ns/ctl/sa/b"
	a := start(t, "a", mount(t, root, roots, idA))
	b := start(t, "b", mount(t, root, roots, idB), idB)
	server := httptest.NewServer(a.Handler())
	t.Cleanup(server.Close)
	remote := &Remote{Base: server.URL}

	st, err := remote.Status(t.Context())
	require.NoError(t, err)
	require.Equal(t, idA, st.Identity)

	peer, err := remote.Call(t.Context(), b.Addr())
	require.ErrorContains(t, err, "bad certificate", "b allows only itself, and the error travels back")
	require.Empty(t, peer)

	c := start(t, "c", mount(t, root, roots, idB))
	peer, err = remote.Call(t.Context(), c.Addr())
	require.NoError(t, err)
	require.Equal(t, idB, peer)

	require.NoError(t, remote.StartTraffic(t.Context(), c.Addr(), time.Second))
	require.NoError(t, remote.StartTraffic(t.Context(), c.Addr(), 10*time.Millisecond), "a second start replaces the first")
	require.Eventually(t, func() bool { return a.Status().CallsOK >= 5 }, 5*time.Second, 20*time.Millisecond)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	stopped, err := remote.StopTraffic(ctx)
	require.NoError(t, err, "stop ends every call loop")
	require.GreaterOrEqual(t, stopped.CallsOK, int64(5))

	for name, bad := range map[string]string{
		"call without a peer":         "/call",
		"traffic without an interval": "/traffic?to=" + c.Addr(),
		"traffic with a bad interval": "/traffic?to=" + c.Addr() + "&interval=soon",
	} {
		resp, err := http.Post(server.URL+bad, "", nil)
		require.NoError(t, err, name)
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, name)
	}
}
