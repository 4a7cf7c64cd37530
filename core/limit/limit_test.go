// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package limit_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meshcert/kubectl-meshcert/core/limit"
)

func TestPerKey(t *testing.T) {
	l := &limit.PerKey[string]{Max: 2}
	releaseA1, ok := l.Acquire("a")
	require.True(t, ok)
	_, ok = l.Acquire("a")
	require.True(t, ok)
	_, ok = l.Acquire("a")
	require.False(t, ok, "a third hold of a beyond Max")
	require.Equal(t, 2, l.Held("a"), "a refused hold takes nothing")
	_, ok = l.Acquire("b")
	require.True(t, ok, "another key has its own allowance")

	releaseA1()
	releaseA1() // giving a hold back twice gives back one
	require.Equal(t, 1, l.Held("a"))
	_, ok = l.Acquire("a")
	require.True(t, ok, "a hold given back can be taken again")

	unbounded := &limit.PerKey[int]{}
	for range 100 {
		_, ok := unbounded.Acquire(0)
		require.True(t, ok)
	}
}
