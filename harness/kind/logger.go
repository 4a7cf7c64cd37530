// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package kind

import (
	"fmt"
	"io"
	"sync"

	"sigs.k8s.io/kind/pkg/log"
)

// logger writes kind's warnings, errors and V(0) messages to a writer, each
// prefixed with "kind: ".
type logger struct {
	mu  sync.Mutex
	out io.Writer
}

func newLogger(out io.Writer) *logger { return &logger{out: out} }

func (l *logger) print(message string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintln(l.out, "kind: "+message)
}

func (l *logger) Warn(message string)               { l.print(message) }
func (l *logger) Warnf(format string, args ...any)  { l.print(fmt.Sprintf(format, args...)) }
func (l *logger) Error(message string)              { l.print(message) }
func (l *logger) Errorf(format string, args ...any) { l.print(fmt.Sprintf(format, args...)) }
func (l *logger) V(level log.Level) log.InfoLogger  { return infoLogger{l: l, enabled: level == 0} }

type infoLogger struct {
	l       *logger
	enabled bool
}

func (i infoLogger) Info(message string) {
	if i.enabled {
		i.l.print(message)
	}
}

func (i infoLogger) Infof(format string, args ...any) {
	if i.enabled {
		i.l.print(fmt.Sprintf(format, args...))
	}
}

func (i infoLogger) Enabled() bool { return i.enabled }
