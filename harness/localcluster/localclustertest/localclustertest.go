// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package localclustertest shares one embedded control plane per profile
// among the tests of a package: the first test that asks starts it, and
// Main stops them all when the tests end.
package localclustertest

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meshcert/kubectl-meshcert/harness/localcluster"
)

var (
	mu       sync.Mutex
	clusters = map[localcluster.Profile]*localcluster.Cluster{}
)

// Cluster returns the package's shared cluster of profile p.
func Cluster(t testing.TB, p localcluster.Profile) *localcluster.Cluster {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if c, ok := clusters[p]; ok {
		return c
	}
	c, err := localcluster.Start(context.Background(), localcluster.Options{Profile: p})
	require.NoError(t, err)
	clusters[p] = c
	return c
}

// Bound is Cluster(t, ProfileBound).
func Bound(t testing.TB) *localcluster.Cluster { return Cluster(t, localcluster.ProfileBound) }

// Main runs the tests and stops the shared clusters. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	mu.Lock()
	for _, c := range clusters {
		_ = c.Stop()
	}
	mu.Unlock()
	os.Exit(code)
}
