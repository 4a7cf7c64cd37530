// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package ca

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshcert/kubectl-meshcert/core/identity"
)

func TestReviewCacheLifetime(t *testing.T) {
	start := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	id := identity.ID{TrustDomain: "cluster.local", Namespace: "a", ServiceAccount: "b"}
	tests := map[string]struct {
		cacheTTL    time.Duration
		tokenExpiry time.Time
		hitAt       []time.Duration
		missAt      []time.Duration
	}{
		"lives for the cache TTL": {
			cacheTTL: 5 * time.Second, tokenExpiry: start.Add(time.Hour),
			hitAt: []time.Duration{0, 4 * time.Second}, missAt: []time.Duration{5 * time.Second},
		},
		"never outlives the token": {
			cacheTTL: 5 * time.Second, tokenExpiry: start.Add(2 * time.Second),
			hitAt: []time.Duration{time.Second}, missAt: []time.Duration{2 * time.Second},
		},
		"zero turns the cache off": {
			cacheTTL: 0, tokenExpiry: start.Add(time.Hour),
			missAt: []time.Duration{0},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			now := start
			a := &authenticator{cacheTTL: tc.cacheTTL, now: func() time.Time { return now }}
			sum := sha256.Sum256([]byte("token"))
			a.remember(sum, id, tc.tokenExpiry)
			for _, at := range tc.hitAt {
				now = start.Add(at)
				got, ok := a.cached(sum)
				require.True(t, ok, "expected a hit at +%s", at)
				require.Equal(t, id, got)
			}
			for _, at := range tc.missAt {
				now = start.Add(at)
				_, ok := a.cached(sum)
				require.False(t, ok, "expected a miss at +%s", at)
			}
		})
	}
}
