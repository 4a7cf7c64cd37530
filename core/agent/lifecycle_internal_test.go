// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A part that fails ends Run with the reason, and everything else stops
// with it: the socket file is removed.
func TestRunEndsWithTheReasonWhenAPartFails(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.CertDir, cfg.SocketPath, cfg.MonitoringListen = t.TempDir(), filepath.Join(dir, "sds.sock"), ""
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := Start(context.Background(), cfg)
	require.NoError(t, err)

	require.NoError(t, a.socket.Close(), "the SDS listener fails under the server")
	select {
	case <-a.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not end after its SDS listener failed")
	}
	require.ErrorContains(t, a.Err(), "SDS server on "+cfg.SocketPath)
	_, statErr := os.Stat(cfg.SocketPath)
	require.ErrorIs(t, statErr, os.ErrNotExist, "the socket file is removed when the agent stops")
}

// A cancelled context is a clean stop, not a failure.
func TestRunEndsCleanlyWithItsContext(t *testing.T) {
	cfg := DefaultConfig()
	cfg.CertDir, cfg.SocketPath, cfg.MonitoringListen = t.TempDir(), filepath.Join(t.TempDir(), "sds.sock"), "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	a, err := Start(ctx, cfg)
	require.NoError(t, err)
	require.True(t, a.ready.Load(), "Start returns once the agent serves")
	cancel()
	<-a.Done()
	require.NoError(t, a.Err())
	require.False(t, a.ready.Load())
}

// The agent serves only from a directory no workload can write to.
func TestRefusesASocketDirectoryOthersMayWrite(t *testing.T) {
	tests := map[string]struct {
		mode    os.FileMode
		wantErr string
	}{
		"0700":           {mode: 0o700},
		"0755":           {mode: 0o755},
		"world-writable": {mode: 0o777, wantErr: "has mode 0777: group and others may write to it"},
		"group-writable": {mode: 0o775, wantErr: "mount it read-only into workloads"},
		"sticky /tmp":    {mode: 0o777 | os.ModeSticky, wantErr: "has mode 0777"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "sds")
			require.NoError(t, os.Mkdir(dir, 0o700))
			require.NoError(t, os.Chmod(dir, tc.mode))
			cfg := DefaultConfig()
			cfg.CertDir, cfg.SocketPath, cfg.MonitoringListen = t.TempDir(), filepath.Join(dir, "sds.sock"), ""
			cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
			a, err := New(cfg)
			if tc.wantErr == "" {
				require.NoError(t, err)
				a.release()
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
			require.ErrorContains(t, err, dir)
		})
	}
}
