// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"crypto/x509"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshcert/kubectl-meshcert/core/pki"
)

// servedRoots is the root bundle the agent serves as ROOTCA. Immutable.
type servedRoots struct {
	certs   []*x509.Certificate
	pem     []byte
	version string
	sds     atomic.Pointer[encodedResource]
}

// rootBundle is the agent-wide trust bundle: the roots of the mounted bundle
// file, which hold old and new roots during a root rotation. Nothing the CA
// answers is ever added to it: a CA (or whatever answers in its place)
// cannot widen what workloads trust.
type rootBundle struct {
	broadcaster
	now func() time.Time

	mu       sync.Mutex
	fromFile []*x509.Certificate
	current  atomic.Pointer[servedRoots]
	ready    chan struct{}
}

func newRootBundle(now func() time.Time) *rootBundle {
	return &rootBundle{now: now, ready: make(chan struct{})}
}

func (r *rootBundle) setFileRoots(roots []*x509.Certificate) {
	r.mu.Lock()
	r.fromFile = roots
	r.mu.Unlock()
	r.rebuild()
}

// fileRoots is the bundle as the file last gave it.
func (r *rootBundle) fileRoots() []*x509.Certificate {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fromFile
}

// rebuild recomputes the bundle and wakes ROOTCA streams only when it
// changed.
func (r *rootBundle) rebuild() {
	r.mu.Lock()
	var certs []*x509.Certificate
	seen := map[string]bool{}
	for _, c := range r.fromFile {
		if c == nil || seen[pki.Fingerprint(c)] {
			continue
		}
		seen[pki.Fingerprint(c)] = true
		certs = append(certs, c)
	}
	r.mu.Unlock()
	if len(certs) == 0 {
		return
	}
	pemBytes := pki.EncodeCertificates(certs...)
	if old := r.current.Load(); old != nil && string(old.pem) == string(pemBytes) {
		return
	}
	first := r.current.Swap(&servedRoots{certs: certs, pem: pemBytes, version: nextVersion(r.now())}) == nil
	if first {
		close(r.ready)
	}
	r.notify()
}
