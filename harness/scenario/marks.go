// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package scenario

import (
	"context"
	"sync"
)

// marks are the serials a scenario run has recorded by name (expectCert
// mark), for later steps to compare with (sameAs, newerThan).
type marks struct {
	mu      sync.Mutex
	serials map[string]string
}

type marksKey struct{}

// withMarks gives a scenario run's steps a place to record serials.
func withMarks(ctx context.Context) context.Context {
	return context.WithValue(ctx, marksKey{}, &marks{serials: map[string]string{}})
}

func marksOf(ctx context.Context) *marks {
	if m, ok := ctx.Value(marksKey{}).(*marks); ok {
		return m
	}
	return &marks{serials: map[string]string{}}
}

func (m *marks) record(mark, workload, serial string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.serials[mark+"/"+workload] = serial
}

func (m *marks) serial(mark, workload string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.serials[mark+"/"+workload]
	return s, ok
}
