// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	pb "istio.io/api/security/v1alpha1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshcert/kubectl-meshcert/core/limit"
	"github.com/meshcert/kubectl-meshcert/core/pki"
	"github.com/meshcert/kubectl-meshcert/core/pki/pkitest"
	"github.com/meshcert/kubectl-meshcert/harness/localcluster/localclustertest"
)

// reviewer answers TokenReviews as an API server would for the tokens of
// jwtFor, as the test says, and counts them. With hang it answers only when
// the caller's context ends, as an overloaded API server would.
type reviewer struct {
	reviews atomic.Int64
	answer  func(token string, asked []string) authenticationv1.TokenReviewStatus
	hang    bool
}

func (r *reviewer) Create(ctx context.Context, review *authenticationv1.TokenReview, _ metav1.CreateOptions) (*authenticationv1.TokenReview, error) {
	r.reviews.Add(1)
	if r.hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	out := review.DeepCopy()
	out.Status = r.answer(review.Spec.Token, review.Spec.Audiences)
	return out, nil
}

func authenticated(namespace, name string, audiences ...string) authenticationv1.TokenReviewStatus {
	return authenticationv1.TokenReviewStatus{Authenticated: true, Audiences: audiences, User: authenticationv1.UserInfo{
		Username: "system:serviceaccount:" + namespace + ":" + name,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
	}}
}

// jwtFor is a projected token's shape for namespace/name: the fake
// reviewer, not a signature, decides whether it authenticates.
func jwtFor(t testing.TB, namespace, name, audience string) string {
	t.Helper()
	seg := func(v any) string {
		data, err := json.Marshal(v)
		require.NoError(t, err)
		return base64.RawURLEncoding.EncodeToString(data)
	}
	return seg(map[string]string{"alg": "RS256", "kid": "k"}) + "." + seg(map[string]any{
		"iss": "https://kubernetes.default.svc.cluster.local", "aud": []string{audience},
		"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(), "nbf": time.Now().Unix(),
		"sub":           "system:serviceaccount:" + namespace + ":" + name,
		"kubernetes.io": map[string]any{"namespace": namespace, "serviceaccount": map[string]string{"name": name, "uid": "u"}},
	}) + "." + base64.RawURLEncoding.EncodeToString([]byte("signature"))
}

func testService(t testing.TB, r *reviewer, mutate ...func(*certificateService)) *certificateService {
	t.Helper()
	root := pkitest.NewRoot(t)
	authority, err := NewAuthority(root.Key, []*x509.Certificate{root.Cert}, []*x509.Certificate{root.Cert}, time.Now)
	require.NoError(t, err)
	m := newMetrics()
	s := &certificateService{
		authn: &authenticator{reviews: r, audiences: []string{"istio-ca"}, trustDomain: "cluster.local",
			reviewTimeout: time.Second, refusalTTL: time.Minute, reviewSlots: make(chan struct{}, 8), now: time.Now, metrics: m,
			retries: limit.Pacer{MaxDelay: maxRetryDelay}},
		defaultTTL: time.Hour, maxTTL: 24 * time.Hour,
		slots:   make(chan struct{}, 8),
		metrics: m, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	s.authority.Store(authority)
	for _, f := range mutate {
		f(s)
	}
	return s
}

func csrPEM(t testing.TB, key crypto.Signer, tmpl *x509.CertificateRequest) string {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	require.NoError(t, err)
	return string(pki.EncodeCSR(der))
}

func withBearer(ctx context.Context, token string) context.Context {
	return metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", "Bearer "+token))
}

// The CA endpoint's adversarial table: every request a hostile tenant can
// shape, and what the CA answers. Each refusal names its cause and fix.
func TestCreateCertificateRefusesHostileRequests(t *testing.T) {
	const ns, sa = "shop", "web"
	id := "spiffe://cluster.local/ns/" + ns + "/sa/" + sa
	uri := func(s string) []*url.URL { u, _ := url.Parse(s); return []*url.URL{u} }
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	require.NoError(t, err)
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	rsa2048, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	good := jwtFor(t, ns, sa, "istio-ca")
	honest := func(_ string, asked []string) authenticationv1.TokenReviewStatus {
		return authenticated(ns, sa, asked...)
	}

	tests := map[string]struct {
		token    string
		csr      string
		answer   func(string, []string) authenticationv1.TokenReviewStatus
		wantCode codes.Code
		wantMsg  []string
	}{
		"P-256 key":    {token: good, csr: csrPEM(t, p256, &x509.CertificateRequest{URIs: uri(id)}), wantCode: codes.OK},
		"P-384 key":    {token: good, csr: csrPEM(t, p384, &x509.CertificateRequest{URIs: uri(id)}), wantCode: codes.OK},
		"RSA-2048 key": {token: good, csr: csrPEM(t, rsa2048, &x509.CertificateRequest{URIs: uri(id)}), wantCode: codes.OK},
		"P-224 key": {token: good, csr: csrPEM(t, p224, &x509.CertificateRequest{URIs: uri(id)}),
			wantCode: codes.InvalidArgument, wantMsg: []string{"curve P-224", "P-256 or P-384", "RSA of at least 2048 bits"}},
		"RSA-1024 key": {token: good, csr: csrPEM(t, rsa1024, &x509.CertificateRequest{URIs: uri(id)}),
			wantCode: codes.InvalidArgument, wantMsg: []string{"RSA of 1024 bits"}},
		"a common name": {token: good, csr: csrPEM(t, p256, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "admin"}, URIs: uri(id)}),
			wantCode: codes.PermissionDenied, wantMsg: []string{"CN:admin", "request that URI SAN alone"}},
		"no URI SAN": {token: good, csr: csrPEM(t, p256, &x509.CertificateRequest{}),
			wantCode: codes.InvalidArgument, wantMsg: []string{"carries 0 URI SANs", "exactly one, the caller's SPIFFE ID " + id}},
		"the caller's URI twice": {token: good, csr: csrPEM(t, p256, &x509.CertificateRequest{URIs: append(uri(id), uri(id)...)}),
			wantCode: codes.InvalidArgument, wantMsg: []string{"carries 2 URI SANs"}},
		"an IP SAN": {token: good, csr: csrPEM(t, p256, &x509.CertificateRequest{URIs: uri(id), IPAddresses: []net.IP{net.IPv4(10, 0, 0, 1)}}),
			wantCode: codes.PermissionDenied, wantMsg: []string{"IP:10.0.0.1"}},
		"an email SAN": {token: good, csr: csrPEM(t, p256, &x509.CertificateRequest{URIs: uri(id), EmailAddresses: []string{"root@example.com"}}),
			wantCode: codes.PermissionDenied, wantMsg: []string{"email:root@example.com"}},
		"hundreds of DNS SANs are named, bounded": {token: good,
			csr:      csrPEM(t, p256, &x509.CertificateRequest{URIs: uri(id), DNSNames: strings.Split(strings.Repeat("evil.example.com,", 300)+"x", ",")}),
			wantCode: codes.PermissionDenied, wantMsg: []string{"DNS:evil.example.com", "and 297 more"}},
		"authenticated for another audience only": {token: good, csr: csrPEM(t, p256, &x509.CertificateRequest{URIs: uri(id)}),
			answer:   func(string, []string) authenticationv1.TokenReviewStatus { return authenticated(ns, sa, "vault") },
			wantCode: codes.Unauthenticated, wantMsg: []string{`audiences ["vault"]`, "none of which is the mesh's (istio-ca)"}},
		"authenticated as a user, not a service account": {token: good, csr: csrPEM(t, p256, &x509.CertificateRequest{URIs: uri(id)}),
			answer: func(_ string, asked []string) authenticationv1.TokenReviewStatus {
				return authenticationv1.TokenReviewStatus{Authenticated: true, Audiences: asked, User: authenticationv1.UserInfo{Username: "admin", Groups: []string{"system:masters"}}}
			},
			wantCode: codes.Unauthenticated, wantMsg: []string{`"admin"`, "not a Kubernetes service account"}},
		"a service account's username without its group": {token: good, csr: csrPEM(t, p256, &x509.CertificateRequest{URIs: uri(id)}),
			answer: func(_ string, asked []string) authenticationv1.TokenReviewStatus {
				st := authenticated(ns, sa, asked...)
				st.User.Groups = []string{"system:authenticated"}
				return st
			},
			wantCode: codes.Unauthenticated, wantMsg: []string{"in group system:serviceaccounts"}},
		"a token for another identity asking for this one": {token: jwtFor(t, "kube-system", "admin", "istio-ca"),
			csr: csrPEM(t, p256, &x509.CertificateRequest{URIs: uri(id)}),
			answer: func(_ string, asked []string) authenticationv1.TokenReviewStatus {
				return authenticated("kube-system", "admin", asked...)
			},
			wantCode: codes.PermissionDenied, wantMsg: []string{"URI:" + id, "only vouches for spiffe://cluster.local/ns/kube-system/sa/admin"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := &reviewer{answer: honest}
			if tc.answer != nil {
				r.answer = tc.answer
			}
			s := testService(t, r)
			resp, err := s.CreateCertificate(withBearer(t.Context(), tc.token), &pb.IstioCertificateRequest{Csr: tc.csr})
			require.Equal(t, tc.wantCode, status.Code(err), "%v", err)
			for _, want := range tc.wantMsg {
				require.ErrorContains(t, err, want)
			}
			if tc.wantCode == codes.OK {
				require.Len(t, resp.GetCertChain(), 2)
			}
		})
	}
}

// A token the API server refused is refused again from memory: replaying a
// forged token costs one TokenReview, not one per call.
func TestRefusedTokensCostOneReview(t *testing.T) {
	r := &reviewer{answer: func(string, []string) authenticationv1.TokenReviewStatus {
		return authenticationv1.TokenReviewStatus{Error: "invalid bearer token"}
	}}
	s := testService(t, r)
	forged := jwtFor(t, "shop", "web", "istio-ca")
	for range 20 {
		_, err := s.CreateCertificate(withBearer(t.Context(), forged), &pb.IstioCertificateRequest{Csr: "x"})
		require.Equal(t, codes.Unauthenticated, status.Code(err))
		require.ErrorContains(t, err, "invalid bearer token")
	}
	require.Equal(t, int64(1), r.reviews.Load())
}

// Forged calls wait for authentication slots, never for signing slots: with
// every signing slot taken a forged token is still refused as forged, and
// with every authentication slot taken callers are told to back off.
func TestAuthenticationComesBeforeASigningSlot(t *testing.T) {
	r := &reviewer{answer: func(string, []string) authenticationv1.TokenReviewStatus {
		return authenticationv1.TokenReviewStatus{Error: "invalid bearer token"}
	}}
	s := testService(t, r)
	for range cap(s.slots) {
		s.slots <- struct{}{}
	}
	_, err := s.CreateCertificate(withBearer(t.Context(), jwtFor(t, "shop", "web", "istio-ca")), &pb.IstioCertificateRequest{Csr: "x"})
	require.Equal(t, codes.Unauthenticated, status.Code(err), "a forged token is judged before any signing slot is taken: %v", err)

	for range cap(s.authn.reviewSlots) {
		s.authn.reviewSlots <- struct{}{}
	}
	_, err = s.CreateCertificate(withBearer(t.Context(), jwtFor(t, "shop", "other", "istio-ca")), &pb.IstioCertificateRequest{Csr: "x"})
	require.Equal(t, codes.ResourceExhausted, status.Code(err))
	require.ErrorContains(t, err, "--max-concurrent-authentications")
	require.Equal(t, int64(1), r.reviews.Load(), "the call beyond the bound cost no TokenReview")
	first := requireRetryInfo(t, err)
	_, err = s.CreateCertificate(withBearer(t.Context(), jwtFor(t, "shop", "another", "istio-ca")), &pb.IstioCertificateRequest{Csr: "x"})
	require.Greater(t, requireRetryInfo(t, err), first, "the next caller refused is told to come back later")
}

// requireRetryInfo requires err to tell the caller when to come back, in
// its message and as a google.rpc.RetryInfo, and returns that delay.
func requireRetryInfo(t *testing.T, err error) time.Duration {
	t.Helper()
	st := status.Convert(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.RetryInfo); ok {
			delay := info.GetRetryDelay().AsDuration()
			require.Positive(t, delay)
			require.LessOrEqual(t, delay, maxRetryDelay)
			require.Contains(t, st.Message(), "retry in "+delay.String())
			return delay
		}
	}
	require.Failf(t, "no RetryInfo", "%v", err)
	return 0
}

// A TokenReview that hangs ends at the review timeout with Unavailable, so
// that the caller retries and the slot is given back.
func TestTokenReviewTimesOut(t *testing.T) {
	r := &reviewer{hang: true}
	s := testService(t, r, func(s *certificateService) { s.authn.reviewTimeout = 50 * time.Millisecond })
	_, err := s.CreateCertificate(withBearer(t.Context(), jwtFor(t, "shop", "web", "istio-ca")), &pb.IstioCertificateRequest{Csr: "x"})
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	require.Empty(t, s.authn.reviewSlots, "the authentication slot is given back")
}

// Beyond --max-concurrent-signings, authenticated callers are told to back
// off, and the refusal is counted.
func TestSigningBound(t *testing.T) {
	s := testService(t, &reviewer{answer: func(_ string, asked []string) authenticationv1.TokenReviewStatus {
		return authenticated("shop", "web", asked...)
	}})
	for range cap(s.slots) {
		s.slots <- struct{}{}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	u, _ := url.Parse("spiffe://cluster.local/ns/shop/sa/web")
	_, err = s.CreateCertificate(withBearer(t.Context(), jwtFor(t, "shop", "web", "istio-ca")),
		&pb.IstioCertificateRequest{Csr: csrPEM(t, key, &x509.CertificateRequest{URIs: []*url.URL{u}})})
	require.Equal(t, codes.ResourceExhausted, status.Code(err))
	require.ErrorContains(t, err, "--max-concurrent-signings")
	require.Equal(t, float64(1), testutil.ToFloat64(s.metrics.csrs.WithLabelValues(resultResourceExhausted)))
	requireRetryInfo(t, err)
}

// One source address holds at most --max-concurrent-authentications-per-peer
// token reviews: its next call is told to back off, while a call from
// another address is still reviewed.
func TestTokenReviewsPerPeer(t *testing.T) {
	r := &reviewer{hang: true}
	s := testService(t, r, func(s *certificateService) {
		s.authn.perPeer.Max = 2
		s.authn.reviewTimeout = 10 * time.Second
	})
	from := func(ip string) context.Context {
		ctx := peer.NewContext(t.Context(), &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}})
		return withBearer(ctx, jwtFor(t, "shop", localclustertest.UniqueName("sa"), "istio-ca"))
	}
	ctx, cancel := context.WithCancel(from("10.0.0.1"))
	defer cancel()
	var hanging sync.WaitGroup
	for range 2 {
		hanging.Go(func() { _, _ = s.CreateCertificate(ctx, &pb.IstioCertificateRequest{Csr: "x"}) })
	}
	require.Eventually(t, func() bool { return r.reviews.Load() == 2 }, 5*time.Second, time.Millisecond)

	_, err := s.CreateCertificate(from("10.0.0.1"), &pb.IstioCertificateRequest{Csr: "x"})
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	require.ErrorContains(t, err, "the calls from 10.0.0.1 hold 2 token reviews")
	require.ErrorContains(t, err, "--max-concurrent-authentications-per-peer")
	require.Equal(t, int64(2), r.reviews.Load(), "the call beyond the peer's bound cost no TokenReview")

	other, stop := context.WithTimeout(from("10.0.0.2"), 100*time.Millisecond)
	defer stop()
	_, err = s.CreateCertificate(other, &pb.IstioCertificateRequest{Csr: "x"})
	require.NotEqual(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	require.Equal(t, int64(3), r.reviews.Load(), "another address's call was reviewed")
	cancel()
	hanging.Wait()
	require.Empty(t, s.authn.reviewSlots, "every review slot is given back")
	require.Zero(t, s.authn.perPeer.Held("10.0.0.1"), "every peer's count is given back")
}
