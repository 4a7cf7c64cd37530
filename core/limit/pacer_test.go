// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package limit

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPacerSpacesRetriesAtTheRateCallsComplete(t *testing.T) {
	start := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	type step struct {
		at        time.Duration
		done      int             // completions recorded at at
		wantDelay []time.Duration // RetryAfter's answers at at, in order
	}
	tests := map[string]struct {
		minRate int
		steps   []step
	}{
		"no completion yet, none assumed: one a second": {steps: []step{
			{at: 0, wantDelay: []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}},
		}},
		"no completion yet, four a second assumed": {minRate: 4, steps: []step{
			{at: 0, wantDelay: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond}},
		}},
		"a full second measured overrides what was assumed": {minRate: 4, steps: []step{
			{at: 0, done: 2},
			{at: time.Second, wantDelay: []time.Duration{500 * time.Millisecond}},
		}},
		"ten completions in the last second: a tenth of a second apart": {steps: []step{
			{at: 0, done: 10},
			{at: 1500 * time.Millisecond, wantDelay: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond}},
		}},
		"the current second counts until a full one is over": {steps: []step{
			{at: 0, done: 4, wantDelay: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond}},
		}},
		"moments handed out are not handed out again": {steps: []step{
			{at: 0, done: 2},
			{at: 1 * time.Second, wantDelay: []time.Duration{500 * time.Millisecond, time.Second}},
			{at: 1750 * time.Millisecond, wantDelay: []time.Duration{750 * time.Millisecond}},
			{at: 5 * time.Second, wantDelay: []time.Duration{time.Second}},
		}},
		"beyond the longest delay every caller is told it": {steps: []step{
			{at: 0, wantDelay: []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second, 3 * time.Second}},
			{at: 500 * time.Millisecond, wantDelay: []time.Duration{3 * time.Second, 3 * time.Second}},
		}},
		"a quiet spell forgets the old rate": {steps: []step{
			{at: 0, done: 100},
			{at: 10 * time.Second, wantDelay: []time.Duration{time.Second}},
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			now := start
			p := &Pacer{MaxDelay: 3 * time.Second, MinRate: tc.minRate, Now: func() time.Time { return now }}
			for _, s := range tc.steps {
				now = start.Add(s.at)
				for range s.done {
					p.Done()
				}
				for i, want := range s.wantDelay {
					require.Equal(t, want, p.RetryAfter(), "answer %d at +%s", i, s.at)
				}
			}
		})
	}
}
