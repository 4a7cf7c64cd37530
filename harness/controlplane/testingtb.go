// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"k8s.io/klog/v2"
)

// programTB lets this program use k8s.io/apiserver's etcd3/testserver, which
// is written against testing.TB, outside a test. Fatal records the failure
// and unwinds to the nearest call of guard; cleanups run in reverse order when
// runCleanups is called.
type programTB struct {
	testing.TB // unimplemented methods panic; the test server does not call them

	name string
	dir  string

	mu       sync.Mutex
	cleanups []func()
	failure  error
	tempDirs int
}

func (t *programTB) Helper()      {}
func (t *programTB) Name() string { return t.name }

func (t *programTB) Log(args ...any)                 { klog.InfoDepth(1, args...) }
func (t *programTB) Logf(format string, args ...any) { klog.InfoDepth(1, fmt.Sprintf(format, args...)) }
func (t *programTB) Error(args ...any)               { t.fail(fmt.Sprint(args...)) }
func (t *programTB) Errorf(format string, args ...any) {
	t.fail(fmt.Sprintf(format, args...))
}
func (t *programTB) Fatal(args ...any) {
	t.fail(fmt.Sprint(args...))
	panic(errFatal)
}
func (t *programTB) Fatalf(format string, args ...any) {
	t.fail(fmt.Sprintf(format, args...))
	panic(errFatal)
}
func (t *programTB) Fail()    { t.fail("failed") }
func (t *programTB) FailNow() { t.Fatal("failed") }
func (t *programTB) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failure != nil
}

func (t *programTB) fail(msg string) {
	klog.ErrorDepth(2, t.name+": "+msg)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.failure == nil {
		t.failure = fmt.Errorf("%s: %s", t.name, msg)
	}
}

func (t *programTB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

// TempDir is a directory under --dir named by the order of the calls, so
// that a control plane started again on the same --dir finds etcd's data
// where it left it. It is removed with --dir, not on cleanup.
func (t *programTB) TempDir() string {
	t.mu.Lock()
	t.tempDirs++
	dir := filepath.Join(t.dir, fmt.Sprintf("%s-%d", t.name, t.tempDirs))
	t.mu.Unlock()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// errFatal is the panic value Fatal unwinds with.
var errFatal = errors.New("fatal")

// guard runs f and turns a Fatal inside it into the recorded error.
func (t *programTB) guard(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if r != errFatal {
				panic(r)
			}
			err = t.failure
		}
	}()
	f()
	return t.failure
}

func (t *programTB) runCleanups() {
	t.mu.Lock()
	cleanups := t.cleanups
	t.cleanups = nil
	t.mu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
}
