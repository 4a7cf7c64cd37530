// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package ca_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"math/big"
	mathrand "math/rand/v2"
	"net/url"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/procfs"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	pb "istio.io/api/security/v1alpha1"

	"github.com/meshcert/kubectl-meshcert/core/ca"
	"github.com/meshcert/kubectl-meshcert/core/identity"
	"github.com/meshcert/kubectl-meshcert/core/pki"
	"github.com/meshcert/kubectl-meshcert/core/pki/pkitest"
	"github.com/meshcert/kubectl-meshcert/harness/localcluster/localclustertest"
)

// BenchmarkCreateCertificate measures CreateCertificate over gRPC and TLS on
// loopback against a real local API server, with the review cache on (one
// TokenReview, then hits), off (a TokenReview per call), and with local
// verification (no TokenReview; the token's signature and bound objects
// checked on every call), and reports the TokenReviews per certificate.
// Compare it with BenchmarkSigningFloor: the CSR work alone, with the same
// key types.
func BenchmarkCreateCertificate(b *testing.B) {
	for name, tokens := range map[string]struct {
		cacheTTL     time.Duration
		verification string
	}{
		"cached-review":      {cacheTTL: time.Hour, verification: ca.TokenVerificationReview},
		"review-per-call":    {verification: ca.TokenVerificationReview},
		"local-verification": {verification: ca.TokenVerificationLocal},
	} {
		b.Run(name, func(b *testing.B) {
			srv := startCA(b, localclustertest.UniqueName("bench"), func(c *ca.Config) {
				c.ReviewCacheTTL, c.TokenVerification = tokens.cacheTTL, tokens.verification
				c.MaxConcurrentSignings = 100000
			})
			client := dial(b, srv)
			ns := localclustertest.UniqueName("bench-wl")
			workload(b, ns, "app")
			tok := projectedToken(b, ns, "app", "istio-ca", nil)
			_, csr := newCSR(b, "spiffe://cluster.local/ns/"+ns+"/sa/app")
			_, err := create(b.Context(), client, tok, csr, 0)
			require.NoError(b, err)

			apiServerBefore := cpuSeconds(b, boundCluster(b).PID())
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
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "csr/s")
			b.ReportMetric(1000*(cpuSeconds(b, boundCluster(b).PID())-apiServerBefore)/float64(b.N), "apiserver-cpu-ms/csr")
			reviews := scrape(b, srv, `meshcert_ca_token_reviews_total{result="authenticated"}`)
			b.ReportMetric(reviews/float64(b.N+1), "reviews/csr")
		})
	}
}

// cpuSeconds is the CPU time process pid has used.
func cpuSeconds(b *testing.B, pid int) float64 {
	proc, err := procfs.NewProc(pid)
	require.NoError(b, err)
	st, err := proc.Stat()
	require.NoError(b, err)
	return st.CPUTime()
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

// BenchmarkSignWorkload signs workload certificates as the CA's service
// does (a PEM chain, the leaf not parsed back) and as SignWorkload returns
// them (parsed).
func BenchmarkSignWorkload(b *testing.B) {
	root := pkitest.NewRoot(b)
	a, err := ca.NewAuthority(root.Key, root.Chain(), root.Chain(), nil)
	require.NoError(b, err)
	key, err := pki.GenerateKey(pki.ECDSAP256)
	require.NoError(b, err)
	id := identity.ID{TrustDomain: "cluster.local", Namespace: "bench", ServiceAccount: "app"}
	b.Run("pem", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.SignWorkloadPEM(key.Public(), id, time.Hour); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parsed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.SignWorkload(key.Public(), id, time.Hour); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkGenuineCallUnderForgedFlood keeps 5,000 calls with distinct
// forged tokens (well-formed, signed by a foreign key) in flight against the
// CA, over 20 connections from one address, each call sent again as soon as
// it is answered.
// Each iteration is one genuine workload's certificate request, retried on
// Unavailable and ResourceExhausted with exponential backoff from 100 ms
// (jittered), as Istio's CA client retries. It reports the genuine request's
// median and worst latency, the forged calls answered per second, and the
// growth of the process's heap (the CA and the 5,000 callers together) over
// the flood's start.
func BenchmarkGenuineCallUnderForgedFlood(b *testing.B) {
	const forgedCalls, connections = 5000, 20
	srv := startCA(b, localclustertest.UniqueName("flood"))
	ns := localclustertest.UniqueName("flood-wl")
	sa := workload(b, ns, "app")
	genuine := projectedToken(b, ns, "app", "istio-ca", nil)
	_, csr := newCSR(b, "spiffe://cluster.local/ns/"+ns+"/sa/app")

	foreignKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(b, err)
	forged := make([]string, forgedCalls)
	for i := range forged {
		victim := sa.DeepCopy()
		victim.Name = fmt.Sprintf("forged-%d", i)
		forged[i] = localclustertest.SignToken(b, foreignKey, localclustertest.ServiceAccountClaims(boundCluster(b), victim, "istio-ca", time.Now().Add(time.Hour)))
	}
	clients := make([]pb.IstioCertificateServiceClient, connections)
	for i := range clients {
		clients[i] = dial(b, srv)
	}

	own := dialFrom(b, srv, "127.0.0.2") // the genuine workload's agent: another node, another address
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	ctx, stop := context.WithCancel(context.Background())
	var answered atomic.Int64
	var flood sync.WaitGroup
	for i, tok := range forged {
		flood.Go(func() {
			for ctx.Err() == nil {
				if _, err := create(ctx, clients[i%connections], tok, csr, 0); err == nil {
					b.Error("a forged token got a certificate")
				}
				answered.Add(1)
			}
		})
	}
	defer func() { stop(); flood.Wait() }()
	require.Eventually(b, func() bool { return answered.Load() >= forgedCalls }, time.Minute, 10*time.Millisecond,
		"the CA did not answer the first %d forged calls", forgedCalls)

	floodStart, answeredAtStart := time.Now(), answered.Load()
	var latencies []time.Duration
	var peakHeap uint64
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		delay := 100 * time.Millisecond
		for {
			_, err := create(b.Context(), own, genuine, csr, 0)
			if err == nil {
				break
			}
			if code := status.Code(err); code != codes.Unavailable && code != codes.ResourceExhausted {
				b.Fatalf("the genuine workload was refused: %v", err)
			}
			select {
			case <-b.Context().Done():
				b.Fatalf("the benchmark ended before the genuine workload was served: %v", err)
			case <-time.After(time.Duration(float64(delay) * (0.9 + 0.2*mathrand.Float64()))):
			}
			delay = min(2*delay, 5*time.Second)
		}
		latencies = append(latencies, time.Since(start))
		var now runtime.MemStats
		runtime.ReadMemStats(&now)
		peakHeap = max(peakHeap, now.HeapInuse)
	}
	b.StopTimer()
	slices.Sort(latencies)
	b.ReportMetric(float64(latencies[len(latencies)/2].Milliseconds()), "genuine-p50-ms")
	b.ReportMetric(float64(latencies[len(latencies)-1].Milliseconds()), "genuine-max-ms")
	b.ReportMetric(float64(answered.Load()-answeredAtStart)/time.Since(floodStart).Seconds(), "forged-answers/s")
	b.ReportMetric(float64(peakHeap-min(peakHeap, before.HeapInuse))/(1<<20), "heap-growth-MiB")
}
