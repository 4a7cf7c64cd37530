// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// peerProcess is a program of the benchmark's own (istio-peer), its output
// kept in a log file.
type peerProcess struct {
	cmd    *exec.Cmd
	exited chan struct{}
	log    string
}

func startPeer(binary, logFile string, args ...string) (*peerProcess, error) {
	out, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s (build it with make bench): %w", binary, err)
	}
	p := &peerProcess{cmd: cmd, exited: make(chan struct{}), log: logFile}
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(p.exited)
	}()
	return p, nil
}

// awaitFile returns once path exists, or fails when the process ends first.
func (p *peerProcess) awaitFile(ctx context.Context, path string) error {
	return wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		select {
		case <-p.exited:
			return false, fmt.Errorf("%s exited (%s): see %s", filepath.Base(p.cmd.Path), p.cmd.ProcessState, p.log)
		default:
		}
		_, err := os.Stat(path)
		return err == nil, nil
	})
}

func (p *peerProcess) PID() int { return p.cmd.Process.Pid }

func (p *peerProcess) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}
