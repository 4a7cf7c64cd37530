// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"io"
	"log/slog"
	"math/big"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/stretchr/testify/require"
	"k8s.io/utils/ptr"

	"github.com/meshcert/kubectl-meshcert/core/pki"
	"github.com/meshcert/kubectl-meshcert/core/pki/pkitest"
)

type countingWaker struct{ woken atomic.Int32 }

func (w *countingWaker) wake() { w.woken.Add(1) }

func TestRootBundleWakesOnlyOnChange(t *testing.T) {
	a, b := pkitest.NewRoot(t), pkitest.NewRoot(t)
	roots := newRootBundle(time.Now)
	w := &countingWaker{}
	roots.subscribe(w)

	roots.setFileRoots([]*x509.Certificate{a.Cert})
	require.Equal(t, int32(1), w.woken.Load())
	first := roots.current.Load()

	roots.setFileRoots([]*x509.Certificate{a.Cert})
	require.Equal(t, int32(1), w.woken.Load(), "the same bundle again pushes nothing")
	require.Same(t, first, roots.current.Load())

	roots.setFileRoots([]*x509.Certificate{a.Cert, b.Cert})
	require.Equal(t, int32(2), w.woken.Load(), "a bundle that gains a root (a rotation's prepare) pushes ROOTCA")
	require.Len(t, roots.current.Load().certs, 2)
	require.NotEqual(t, first.version, roots.current.Load().version)
}

// The agent serves the CA's answer only when it is what it asked for, and
// never trusts a root the answer brings: a CA, or whatever answers in its
// place, cannot hand a workload another identity, another key, or trust in
// its own root.
func TestCAAnswerIsChecked(t *testing.T) {
	trusted, foreign := pkitest.NewRoot(t), pkitest.NewRoot(t)
	const id = "spiffe://cluster.local/ns/shop/sa/web"
	key, err := pki.GenerateKey(pki.ECDSAP256)
	require.NoError(t, err)
	otherKey, err := pki.GenerateKey(pki.ECDSAP256)
	require.NoError(t, err)
	issue := func(ca *pkitest.CA, pub crypto.PublicKey, uris ...string) []*x509.Certificate {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}
		for _, u := range uris {
			parsed, err := url.Parse(u)
			require.NoError(t, err)
			tmpl.URIs = append(tmpl.URIs, parsed)
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
		require.NoError(t, err)
		leaf, err := x509.ParseCertificate(der)
		require.NoError(t, err)
		return append([]*x509.Certificate{leaf}, ca.Chain()...)
	}
	tests := map[string]struct {
		chain   []*x509.Certificate
		wantErr string
	}{
		"what was asked":                  {chain: issue(trusted, key.Public(), id)},
		"another identity":                {chain: issue(trusted, key.Public(), "spiffe://cluster.local/ns/kube-system/sa/admin"), wantErr: "not for " + id},
		"an extra identity":               {chain: issue(trusted, key.Public(), id, "spiffe://cluster.local/ns/kube-system/sa/admin"), wantErr: "not for " + id},
		"another key":                     {chain: issue(trusted, otherKey.Public(), id), wantErr: "another key"},
		"a root the bundle does not hold": {chain: issue(foreign, key.Public(), id), wantErr: "does not chain to the root bundle file"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := checkAnswer(tc.chain, id, key, []*x509.Certificate{trusted.Cert}, time.Now())
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestEvictIdleKeepsValidCertificates(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	cfg := DefaultConfig()
	clk := clocktesting.NewFakeClock(now)
	cfg.Clock = clk
	c := newSecretCache(&cfg, nil, newRootBundle(cfg.Clock.Now), newMetrics(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	root := pkitest.NewRoot(t)
	withCert := func(id string, notAfter time.Time) *identityEntry {
		e := c.entry(id)
		leaf := &x509.Certificate{NotAfter: notAfter}
		e.cert.Store(&servedCert{chain: []*x509.Certificate{leaf, root.Cert}, rotateAt: notAfter})
		return e
	}
	expiredIdle := withCert("spiffe://td/ns/a/sa/expired-idle", now.Add(-time.Minute))
	validIdle := withCert("spiffe://td/ns/a/sa/valid-idle", now.Add(time.Hour))
	expiredBusy := withCert("spiffe://td/ns/a/sa/expired-busy", now.Add(-time.Minute))
	expiredBusy.subscribe(&countingWaker{})
	_ = validIdle

	require.Equal(t, 0, c.evictIdle(10*time.Minute), "nothing has been idle long enough yet")
	now = now.Add(11 * time.Minute)
	clk.SetTime(now)
	require.Equal(t, 1, c.evictIdle(10*time.Minute))
	require.Nil(t, c.lookup(expiredIdle.id))
	require.NotNil(t, c.lookup("spiffe://td/ns/a/sa/valid-idle"), "a valid certificate is never withdrawn")
	require.NotNil(t, c.lookup(expiredBusy.id), "an identity a stream still uses stays")
	c.close()
}

func TestVerifiedTokensAreReverified(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	cfg := DefaultConfig()
	clk := clocktesting.NewFakeClock(now)
	cfg.Clock = clk
	c := newSecretCache(&cfg, nil, newRootBundle(cfg.Clock.Now), newMetrics(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer c.close()
	e := c.entry("spiffe://td/ns/a/sa/b")
	long, short := [32]byte{1}, [32]byte{2}
	e.remember(long, "long-lived", now.Add(time.Hour))
	e.remember(short, "short-lived", now.Add(10*time.Second))
	require.True(t, e.isVerified(long))
	require.True(t, e.isVerified(short))
	now = now.Add(30 * time.Second)
	clk.SetTime(now)
	require.True(t, e.isVerified(long))
	require.False(t, e.isVerified(short), "never trusted past the token's expiry")
	now = now.Add(31 * time.Second)
	clk.SetTime(now)
	require.False(t, e.isVerified(long), "asked again after a minute, so that a deleted pod's token stops working")
	tokens, err := e.renewalTokens()
	require.NoError(t, err)
	require.Equal(t, []string{"long-lived"}, tokens, "renewals present the freshest token; the CA checks it")

	e.hold(&streamState{token: "held-longest", tokenExpiry: now.Add(2 * time.Hour)})
	e.hold(&streamState{token: "held-expired", tokenExpiry: now.Add(-time.Second)})
	e.hold(&streamState{token: "long-lived", tokenExpiry: now.Add(time.Hour)})
	tokens, err = e.renewalTokens()
	require.NoError(t, err)
	require.Equal(t, []string{"held-longest", "long-lived"}, tokens, "every live stream's unexpired token, the longest-lived first, each once")
}

func TestRetryDelayIsBoundedByTheServedLifetime(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	cfg := DefaultConfig()
	clk := clocktesting.NewFakeClock(now)
	cfg.Clock = clk
	entry := &identityEntry{cache: &secretCache{cfg: &cfg}}
	for name, tc := range map[string]struct {
		served *time.Duration // time left on the served certificate; nil for none
		delay  time.Duration
		want   time.Duration
	}{
		"without a certificate the delay doubles":   {delay: 4 * time.Second, want: 8 * time.Second},
		"without a certificate it stops at the max": {delay: 50 * time.Second, want: cfg.RetryMax},
		"a long-lived certificate changes nothing":  {served: ptr.To(12 * time.Hour), delay: 4 * time.Second, want: 8 * time.Second},
		"ten tries fit in what is left":             {served: ptr.To(30 * time.Second), delay: 8 * time.Second, want: 3 * time.Second},
		"never faster than the base delay":          {served: ptr.To(2 * time.Second), delay: 4 * time.Second, want: cfg.RetryBase},
	} {
		t.Run(name, func(t *testing.T) {
			entry.cert.Store(nil)
			if tc.served != nil {
				entry.cert.Store(&servedCert{chain: []*x509.Certificate{{NotAfter: now.Add(*tc.served)}}})
			}
			require.Equal(t, tc.want, entry.nextDelay(tc.delay))
		})
	}
}

// refusingCA refuses every call: first for want of capacity, with the
// delay it asks for when one is set, then for good.
type refusingCA struct {
	askDelay *time.Duration
	calls    chan struct{}
	answered atomic.Int32
}

func (r *refusingCA) CreateCertificate(context.Context, string, []byte, time.Duration) ([]*x509.Certificate, error) {
	r.calls <- struct{}{}
	if r.answered.Add(1) > 1 {
		return nil, status.Error(codes.Unauthenticated, "refused for good")
	}
	st := status.New(codes.ResourceExhausted, "busy")
	if r.askDelay != nil {
		var err error
		st, err = st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(*r.askDelay)})
		if err != nil {
			return nil, err
		}
	}
	return nil, st.Err()
}

func (r *refusingCA) Close() error { return nil }

// The agent retries when the CA asks it to (google.rpc.RetryInfo), within
// --ca-retry-max, and on its own backoff when the CA says nothing. Each
// case steps the clock to just before the earliest jittered retry, where
// the retry's timer must still be waiting, then past the latest.
func TestRetryWaitsAsLongAsTheCAAsks(t *testing.T) {
	cfg := DefaultConfig()
	tests := map[string]struct {
		askDelay *time.Duration
		// servedFor is what is left of a certificate served meanwhile.
		servedFor         *time.Duration
		notYet, thenFires time.Duration
	}{
		"the CA's delay, capped by the served certificate's life": {askDelay: ptr.To(7 * time.Second), servedFor: ptr.To(30 * time.Second),
			notYet: 2300 * time.Millisecond, thenFires: 1400 * time.Millisecond},
		"the CA's delay":                    {askDelay: ptr.To(7 * time.Second), notYet: 5500 * time.Millisecond, thenFires: 3 * time.Second},
		"the CA's delay, capped at the max": {askDelay: ptr.To(10 * time.Minute), notYet: 47 * time.Second, thenFires: 26 * time.Second},
		"no delay asked: the agent's base":  {notYet: 700 * time.Millisecond, thenFires: 600 * time.Millisecond},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := cfg
			clk := clocktesting.NewFakeClock(time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC))
			cfg.Clock = clk
			ca := &refusingCA{askDelay: tc.askDelay, calls: make(chan struct{}, 2)}
			c := newSecretCache(&cfg, ca, newRootBundle(cfg.Clock.Now), newMetrics(), slog.New(slog.NewTextHandler(io.Discard, nil)))
			defer c.close()
			e := c.newEntry("spiffe://td/ns/a/sa/b")
			if tc.servedFor != nil {
				leaf := &x509.Certificate{NotAfter: clk.Now().Add(*tc.servedFor)}
				e.cert.Store(&servedCert{chain: []*x509.Certificate{leaf, pkitest.NewRoot(t).Cert}})
			}
			done := make(chan error, 1)
			go func() {
				_, err := e.request(t.Context(), "token", nil)
				done <- err
			}()
			<-ca.calls
			require.Eventually(t, func() bool { return clk.Waiters() == 1 }, 10*time.Second, time.Millisecond, "the agent waits to retry")
			clk.Step(tc.notYet)
			require.Equal(t, 1, clk.Waiters(), "the retry must not be due after %s", tc.notYet)
			clk.Step(tc.thenFires)
			select {
			case <-ca.calls:
			case <-time.After(10 * time.Second):
				t.Fatalf("no retry %s after the refusal", tc.notYet+tc.thenFires)
			}
			require.ErrorContains(t, <-done, "refused for good")
		})
	}
}
