// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package limit bounds how much of a shared resource each caller holds at
// once, so that one caller, hostile or not, cannot take it all, and tells
// the callers it refuses when to come back.
package limit

import "sync"

// PerKey allows each key at most Max holds at once; Max 0 or less allows
// any number. The zero value with Max set is ready to use.
type PerKey[K comparable] struct {
	Max int

	mu     sync.Mutex
	active map[K]int
}

// Acquire takes one hold for key, and returns how to give it back; ok is
// false, and nothing is taken, when key holds Max already.
func (l *PerKey[K]) Acquire(key K) (release func(), ok bool) {
	if l.Max <= 0 {
		return func() {}, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.active[key] >= l.Max {
		return nil, false
	}
	if l.active == nil {
		l.active = map[K]int{}
	}
	l.active[key]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.active[key]--; l.active[key] <= 0 {
				delete(l.active, key)
			}
		})
	}, true
}

// Held reports how many holds key has now (none are counted without Max).
func (l *PerKey[K]) Held(key K) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.active[key]
}
