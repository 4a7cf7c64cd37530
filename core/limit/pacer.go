// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package limit

import (
	"sync"
	"time"
)

// Pacer tells refused callers when to come back: each is handed the next
// free moment, spaced at the rate calls have been completing, so that the
// retries of a mass start arrive about as fast as they can be served rather
// than all at once, again and again. The zero value with MaxDelay set is
// ready to use.
type Pacer struct {
	// MaxDelay is the longest delay handed out; callers beyond it are all
	// told MaxDelay.
	MaxDelay time.Duration
	// MinRate is the completions a second assumed until a full second
	// with some has been seen: at a mass start's first refusals none has
	// completed yet.
	MinRate int
	// Now is the clock; time.Now when nil.
	Now func() time.Time

	mu sync.Mutex
	// next is the latest moment handed out.
	next time.Time
	// second starts the current one-second window; done and donePrevious
	// count the completions in it and in the one before.
	second             time.Time
	done, donePrevious int
}

// Done records one completed call.
func (p *Pacer) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.advance(p.now())
	p.done++
}

// RetryAfter returns how long a caller refused now should wait.
func (p *Pacer) RetryAfter() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	p.advance(now)
	// The last full second is the estimate; without one, the current
	// second's completions so far or MinRate, and at least one a second.
	rate := p.donePrevious
	if rate == 0 {
		rate = max(p.done, p.MinRate, 1)
	}
	interval := time.Second / time.Duration(rate)
	next := p.next
	if next.Before(now) {
		next = now
	}
	next = next.Add(interval)
	if delay := next.Sub(now); delay > p.MaxDelay {
		return p.MaxDelay
	}
	p.next = next
	return next.Sub(now)
}

// advance moves the window to the second now falls in.
func (p *Pacer) advance(now time.Time) {
	switch elapsed := now.Sub(p.second); {
	case elapsed < time.Second:
	case elapsed < 2*time.Second:
		p.second, p.donePrevious, p.done = p.second.Add(time.Second), p.done, 0
	default:
		p.second, p.donePrevious, p.done = now, 0, 0
	}
}

func (p *Pacer) now() time.Time {
	if p.Now == nil {
		return time.Now()
	}
	return p.Now()
}
