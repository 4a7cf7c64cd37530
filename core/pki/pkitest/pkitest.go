// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package pkitest builds certificate authorities for tests: a root, and
// intermediates under it, each with its key.
package pkitest

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshcert/kubectl-meshcert/core/pki"
)

// CA is a test certificate authority.
type CA struct {
	Cert   *x509.Certificate
	Key    crypto.Signer
	Parent *CA
}

// Option adjusts a CA certificate before it is signed.
type Option func(*x509.Certificate)

// WithCommonName sets the subject's common name.
func WithCommonName(cn string) Option {
	return func(c *x509.Certificate) { c.Subject.CommonName = cn }
}

// WithValidity sets the validity window.
func WithValidity(notBefore, notAfter time.Time) Option {
	return func(c *x509.Certificate) { c.NotBefore, c.NotAfter = notBefore, notAfter }
}

// NewRoot returns a self-signed root valid from an hour ago for a year.
func NewRoot(t testing.TB, opts ...Option) *CA {
	t.Helper()
	return issueCA(t, nil, append([]Option{WithCommonName("test root")}, opts...))
}

// NewIntermediate returns a CA signed by c.
func (c *CA) NewIntermediate(t testing.TB, opts ...Option) *CA {
	t.Helper()
	return issueCA(t, c, append([]Option{WithCommonName("test intermediate")}, opts...))
}

// Chain returns c's certificate and its issuers, up to and including the
// root.
func (c *CA) Chain() []*x509.Certificate {
	var chain []*x509.Certificate
	for ca := c; ca != nil; ca = ca.Parent {
		chain = append(chain, ca.Cert)
	}
	return chain
}

// Root returns the root of c's chain.
func (c *CA) Root() *CA {
	for c.Parent != nil {
		c = c.Parent
	}
	return c
}

// KeyPEM returns c's key as PEM.
func (c *CA) KeyPEM(t testing.TB) []byte {
	t.Helper()
	data, err := pki.EncodePrivateKey(c.Key)
	require.NoError(t, err)
	return data
}

func issueCA(t testing.TB, parent *CA, opts []Option) *CA {
	t.Helper()
	key, err := pki.GenerateKey(pki.ECDSAP256)
	require.NoError(t, err)
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	require.NoError(t, err)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"meshcert test"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	for _, o := range opts {
		o(tmpl)
	}
	issuer, issuerKey := tmpl, key
	if parent != nil {
		issuer, issuerKey = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), issuerKey)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &CA{Cert: cert, Key: key, Parent: parent}
}
