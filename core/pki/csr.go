// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"net/url"
)

// NewCSR returns a PEM certificate request signed by key that asks for one
// URI SAN, the workload's SPIFFE ID, and nothing else: the CA takes the
// identity from the caller's token and refuses any other name.
func NewCSR(key crypto.Signer, uri *url.URL) ([]byte, error) {
	if uri == nil || uri.String() == "" {
		return nil, fmt.Errorf("a workload CSR needs a URI SAN")
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: []*url.URL{uri}}, key)
	if err != nil {
		return nil, fmt.Errorf("create certificate request: %w", err)
	}
	return EncodeCSR(der), nil
}
