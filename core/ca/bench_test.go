// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package ca_test

import (
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshcert/kubectl-meshcert/core/ca"
	"github.com/meshcert/kubectl-meshcert/core/pki"
	"github.com/meshcert/kubectl-meshcert/core/pki/pkitest"
	"github.com/meshcert/kubectl-meshcert/harness/localcluster/localclustertest"
)

// BenchmarkCreateCertificate measures CreateCertificate over gRPC and TLS on
// loopback against a real local API server, with the review cache on (one
// TokenReview, then hits) and off (a TokenReview per call). Compare it with
// BenchmarkSigningFloor: the CSR work alone, with the same key types.
func BenchmarkCreateCertificate(b *testing.B) {
	for name, cacheTTL := range map[string]time.Duration{"cached-review": time.Hour, "review-per-call": 0} {
		b.Run(name, func(b *testing.B) {
			srv := startCA(b, localclustertest.UniqueName("bench"), func(c *ca.Config) {
				c.ReviewCacheTTL = cacheTTL
				c.MaxConcurrentSignings = 100000
			})
			client := dial(b, srv)
			ns := localclustertest.UniqueName("bench-wl")
			workload(b, ns, "app")
			tok := projectedToken(b, ns, "app", "istio-ca", nil)
			_, csr := newCSR(b, "spiffe://cluster.local/ns/"+ns+"/sa/app")
			_, err := create(b.Context(), client, tok, csr, 0)
			require.NoError(b, err)

			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := create(b.Context(), client, tok, csr, 0); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "csr/s")
		})
	}
}

var maxSerial = new(big.Int).Lsh(big.NewInt(1), 128)

// BenchmarkSigningFloor is the least work any CA must do per CSR:
// x509.ParseCertificateRequest, CheckSignature and x509.CreateCertificate,
// ECDSA P-256 throughout.
func BenchmarkSigningFloor(b *testing.B) {
	root := pkitest.NewRoot(b)
	_, csrPEM := newCSR(b, "spiffe://cluster.local/ns/bench/sa/app")
	csr, err := pki.DecodeCSR([]byte(csrPEM))
	require.NoError(b, err)
	der := csr.Raw
	uri, _ := url.Parse("spiffe://cluster.local/ns/bench/sa/app")

	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			parsed, err := x509.ParseCertificateRequest(der)
			if err != nil {
				b.Error(err)
				return
			}
			if err := parsed.CheckSignature(); err != nil {
				b.Error(err)
				return
			}
			serial, _ := rand.Int(rand.Reader, maxSerial)
			tmpl := &x509.Certificate{
				SerialNumber: serial, URIs: []*url.URL{uri},
				NotBefore: time.Now(), NotAfter: time.Now().Add(24 * time.Hour),
				KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
				ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			}
			if _, err := x509.CreateCertificate(rand.Reader, tmpl, root.Cert, parsed.PublicKey, root.Key); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "csr/s")
}
