// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package lifecycle runs a long-running part's Run(ctx) error in the
// background, for callers that start and stop it rather than block on it:
// tests and the harness. The parts themselves (CA, agent, file-mount
// controller, workload) only implement Run.
package lifecycle

import "context"

// Background is a Run in progress.
type Background struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Go calls run in a goroutine with a context derived from ctx: it ends
// when ctx does or when Stop is called.
func Go(ctx context.Context, run func(context.Context) error) *Background {
	ctx, cancel := context.WithCancel(ctx)
	b := &Background{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(b.done)
		b.err = run(ctx)
	}()
	return b
}

// Start is Go, and returns once serving is closed (the part serves) or the
// run has returned (it could not).
func Start(ctx context.Context, run func(context.Context) error, serving <-chan struct{}) *Background {
	b := Go(ctx, run)
	select {
	case <-serving:
	case <-b.done:
	}
	return b
}

// Stop ends the run and waits until it has returned.
func (b *Background) Stop() {
	b.cancel()
	<-b.done
}

// Done is closed once the run has returned.
func (b *Background) Done() <-chan struct{} { return b.done }

// Err is what ended the run: nil while it runs, and when its context or
// Stop ended it.
func (b *Background) Err() error {
	select {
	case <-b.done:
		return b.err
	default:
		return nil
	}
}
