// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package lifecycle

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBackground(t *testing.T) {
	tests := map[string]struct {
		run     func(context.Context) error
		stop    bool
		wantErr string
	}{
		"stopped":           {run: func(ctx context.Context) error { <-ctx.Done(); return nil }, stop: true},
		"failed on its own": {run: func(context.Context) error { return errors.New("listener closed") }, wantErr: "listener closed"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			started := make(chan struct{})
			b := Start(context.Background(), func(ctx context.Context) error {
				close(started)
				return tc.run(ctx)
			}, started)
			if tc.stop {
				require.NoError(t, b.Err(), "no error while it runs")
				b.Stop()
			}
			<-b.Done()
			if tc.wantErr == "" {
				require.NoError(t, b.Err())
				return
			}
			require.ErrorContains(t, b.Err(), tc.wantErr)
		})
	}
}
