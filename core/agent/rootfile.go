// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"os"
	"sync"

	"github.com/meshcert/kubectl-meshcert/core/pki"
)

// rootFile reads a PEM root bundle from a file, such as the mounted
// meshcert-root-cert ConfigMap, and notices when it changes.
type rootFile struct {
	path string

	mu    sync.Mutex
	data  []byte
	roots []*x509.Certificate
}

func (r *rootFile) load() ([]*x509.Certificate, bool, error) {
	data, err := os.ReadFile(r.path)
	if err != nil {
		return nil, false, fmt.Errorf("read the CA root bundle: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.roots != nil && bytes.Equal(data, r.data) {
		return r.roots, false, nil
	}
	roots, err := pki.DecodeCertificates(data)
	if err != nil {
		if r.roots != nil {
			// A half-written file: keep the last good bundle.
			return r.roots, false, nil
		}
		return nil, false, fmt.Errorf("the CA root bundle %s: %w", r.path, err)
	}
	r.data, r.roots = data, roots
	return roots, true, nil
}
