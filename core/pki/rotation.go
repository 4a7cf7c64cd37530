// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package pki

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Rotation says when a certificate is renewed: at
// notAfter − (Ratio ± Jitter)·lifetime, as Istio's secret cache does. With
// Ratio 0.5 a certificate is renewed half-way through its life.
type Rotation struct {
	Ratio  float64
	Jitter float64
	// Rand returns a number in [0, 1). Nil means math/rand/v2; tests inject
	// a fixed source.
	Rand func() float64
}

// DefaultRotation renews at half of the lifetime, give or take 1 %.
var DefaultRotation = Rotation{Ratio: 0.5, Jitter: 0.01}

// Validate checks that the grace period stays inside the lifetime whatever
// the jitter draws.
func (r Rotation) Validate() error {
	if r.Jitter < 0 {
		return fmt.Errorf("rotation jitter %v is negative", r.Jitter)
	}
	if r.Ratio-r.Jitter <= 0 || r.Ratio+r.Jitter >= 1 {
		return fmt.Errorf("rotation ratio %v ± jitter %v must stay strictly between 0 and 1", r.Ratio, r.Jitter)
	}
	return nil
}

// Time returns when a certificate valid from notBefore to notAfter is due
// for renewal.
func (r Rotation) Time(notBefore, notAfter time.Time) time.Time {
	draw := rand.Float64
	if r.Rand != nil {
		draw = r.Rand
	}
	fraction := r.Ratio + r.Jitter*(2*draw()-1)
	lifetime := notAfter.Sub(notBefore)
	return notAfter.Add(-time.Duration(fraction * float64(lifetime)))
}
