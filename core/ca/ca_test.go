// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package ca_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	pb "istio.io/api/security/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/meshcert/kubectl-meshcert/core/ca"
	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/core/pki"
	"github.com/meshcert/kubectl-meshcert/harness/localcluster"
	"github.com/meshcert/kubectl-meshcert/harness/localcluster/localclustertest"
)

func boundCluster(t testing.TB) *localcluster.Cluster { return localclustertest.Bound(t) }

func TestMain(m *testing.M) { localclustertest.Main(m) }

// startCA starts a CA replica in namespace against the shared cluster.
func startCA(t testing.TB, namespace string, mutate ...func(*ca.Config)) *ca.Server {
	t.Helper()
	c := boundCluster(t)
	ensureNamespace(t, namespace)
	srv, err := ca.Start(context.Background(), caConfig(namespace, mutate...), c.Config)
	require.NoError(t, err)
	t.Cleanup(srv.Stop)
	return srv
}

// caConfig is a CA configuration for tests: loopback listeners, quiet logs.
func caConfig(namespace string, mutate ...func(*ca.Config)) ca.Config {
	cfg := ca.DefaultConfig()
	cfg.Namespace = namespace
	cfg.Listen = "127.0.0.1:0"
	cfg.MonitoringListen = "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, m := range mutate {
		m(&cfg)
	}
	return cfg
}

func ensureNamespace(t testing.TB, name string) {
	localclustertest.EnsureNamespace(t, boundCluster(t), name)
}

// workload creates a ServiceAccount and returns it.
func workload(t testing.TB, ns, sa string) *corev1.ServiceAccount {
	t.Helper()
	ensureNamespace(t, ns)
	created, err := boundCluster(t).Client.CoreV1().ServiceAccounts(ns).Create(context.Background(),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{})
	require.NoError(t, err)
	return created
}

func projectedToken(t testing.TB, ns, sa, audience string, pod *corev1.Pod) string {
	t.Helper()
	return localclustertest.Token(t, boundCluster(t), ns, sa, audience, pod)
}

func dial(t testing.TB, srv *ca.Server) pb.IstioCertificateServiceClient { return dialFrom(t, srv, "") }

// dialFrom connects to srv from source, a local IP address, when set.
func dialFrom(t testing.TB, srv *ca.Server, source string) pb.IstioCertificateServiceClient {
	t.Helper()
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(srv.RootBundlePEM()))
	options := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: "localhost"}))}
	if source != "" {
		dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
		options = append(options, grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return dialer.DialContext(ctx, "tcp", addr)
		}))
	}
	conn, err := grpc.NewClient(srv.Addr(), options...)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return pb.NewIstioCertificateServiceClient(conn)
}

func newCSR(t testing.TB, uris ...string) (crypto.Signer, string) {
	t.Helper()
	key, err := pki.GenerateKey(pki.ECDSAP256)
	require.NoError(t, err)
	tmpl := &x509.CertificateRequest{}
	for _, u := range uris {
		parsed, err := url.Parse(u)
		require.NoError(t, err)
		tmpl.URIs = append(tmpl.URIs, parsed)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	require.NoError(t, err)
	return key, string(pki.EncodeCSR(der))
}

func create(ctx context.Context, client pb.IstioCertificateServiceClient, bearer, csr string, validitySeconds int64) (*pb.IstioCertificateResponse, error) {
	if bearer != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+bearer, "ClusterID", "Kubernetes")
	}
	return client.CreateCertificate(ctx, &pb.IstioCertificateRequest{Csr: csr, ValidityDuration: validitySeconds})
}

func decodeChain(t testing.TB, resp *pb.IstioCertificateResponse) []*x509.Certificate {
	t.Helper()
	var chain []*x509.Certificate
	for _, p := range resp.CertChain {
		certs, err := pki.DecodeCertificates([]byte(p))
		require.NoError(t, err)
		require.Len(t, certs, 1)
		chain = append(chain, certs...)
	}
	return chain
}

// scrape reads one sample from the CA's /metrics endpoint; missing is 0.
func scrape(t testing.TB, srv *ca.Server, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + srv.MonitoringAddr() + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	scanner := bufio.NewScanner(resp.Body)
	for scanner.Scan() {
		line := scanner.Text()
		if value, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(value, 64)
			require.NoError(t, err)
			return v
		}
	}
	return 0
}

func TestIssueForBoundToken(t *testing.T) {
	srv := startCA(t, localclustertest.UniqueName("ca"))
	client := dial(t, srv)
	ns := localclustertest.UniqueName("shop")
	workload(t, ns, "cart")
	tok := projectedToken(t, ns, "cart", "istio-ca", nil)
	wantID := "spiffe://cluster.local/ns/" + ns + "/sa/cart"

	var published []*x509.Certificate
	require.NoError(t, wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		cm, err := boundCluster(t).Client.CoreV1().ConfigMaps(ns).Get(ctx, ca.RootConfigMapName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		published, err = pki.DecodeCertificates([]byte(cm.Data[mesh.FileRootCert]))
		return err == nil, err
	}), "the root ConfigMap was not published in the workload's namespace")

	tests := map[string]struct {
		validity int64
		wantTTL  time.Duration
	}{
		"default TTL":        {validity: 0, wantTTL: 24 * time.Hour},
		"requested TTL":      {validity: 3600, wantTTL: time.Hour},
		"clamped to the max": {validity: int64((200 * 24 * time.Hour).Seconds()), wantTTL: 90 * 24 * time.Hour},
		"just under the max": {validity: int64((89 * 24 * time.Hour).Seconds()), wantTTL: 89 * 24 * time.Hour},
		"a minute":           {validity: 60, wantTTL: time.Minute},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			key, csr := newCSR(t, wantID)
			before := time.Now()
			resp, err := create(t.Context(), client, tok, csr, tc.validity)
			require.NoError(t, err)
			chain := decodeChain(t, resp)
			require.Len(t, chain, 2, "leaf and root")
			leaf, root := chain[0], chain[1]

			require.Len(t, leaf.URIs, 1)
			require.Equal(t, wantID, leaf.URIs[0].String())
			require.Empty(t, leaf.DNSNames)
			require.True(t, pki.KeyMatches(key, leaf.PublicKey))
			require.Equal(t, x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment, leaf.KeyUsage)
			require.ElementsMatch(t, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, leaf.ExtKeyUsage)
			require.False(t, leaf.IsCA)
			require.Greater(t, leaf.SerialNumber.BitLen(), 100, "serials are 128 random bits")
			require.WithinDuration(t, before.Add(-time.Minute), leaf.NotBefore, 3*time.Second, "not-before is backdated a minute")
			require.WithinDuration(t, before.Add(tc.wantTTL), leaf.NotAfter, 3*time.Second)

			verifiedRoot, err := pki.Verify(chain, published, time.Now())
			require.NoError(t, err)
			require.True(t, verifiedRoot.Equal(root), "the response's last certificate is the published root")
		})
	}
	require.Equal(t, float64(len(tests)), scrape(t, srv, `meshcert_ca_csr_total{result="success"}`))
	require.Equal(t, float64(len(tests)), scrape(t, srv, `meshcert_ca_sign_duration_seconds_count`))
	require.Equal(t, float64(1), scrape(t, srv, `meshcert_ca_token_reviews_total{result="authenticated"}`), "one review, then the cache")
	require.Equal(t, float64(len(tests)-1), scrape(t, srv, `meshcert_ca_token_review_cache_hits_total`))
	root := srv.Authority().SigningRoot()
	require.Equal(t, float64(root.NotAfter.Unix()), scrape(t, srv, `meshcert_ca_root_expiry_timestamp_seconds{fingerprint="`+pki.Fingerprint(root)+`"}`))
	require.WithinDuration(t, time.Now().Add(ca.RootTTL), root.NotAfter, time.Hour, "self-signed roots last 10 years")
	require.Equal(t, "ECDSA-P256", pki.KeyType(root.PublicKey))
}

// signToken mints a JWT with key; with the cluster's own key it is a token
// the API server trusts.
func legacySecretToken(t testing.TB, ns, sa string) string {
	t.Helper()
	client := boundCluster(t).Client
	_, err := client.CoreV1().Secrets(ns).Create(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: sa + "-token", Annotations: map[string]string{corev1.ServiceAccountNameKey: sa}},
		Type:       corev1.SecretTypeServiceAccountToken,
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	var raw string
	require.NoError(t, wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		s, err := client.CoreV1().Secrets(ns).Get(ctx, sa+"-token", metav1.GetOptions{})
		raw = string(s.Data[corev1.ServiceAccountTokenKey])
		return raw != "", err
	}))
	return raw
}

func TestRefusals(t *testing.T) {
	c := boundCluster(t)
	srv := startCA(t, localclustertest.UniqueName("ca"))
	client := dial(t, srv)
	ns := localclustertest.UniqueName("refuse")
	sa := workload(t, ns, "api")
	id := "spiffe://cluster.local/ns/" + ns + "/sa/api"
	_, goodCSR := newCSR(t, id)
	good := projectedToken(t, ns, "api", "istio-ca", nil)

	clusterKeyPEM, err := os.ReadFile(c.SigningKeyFile)
	require.NoError(t, err)
	clusterKey, err := pki.DecodePrivateKey(clusterKeyPEM)
	require.NoError(t, err)
	foreignKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)

	dnsKey, err := pki.GenerateKey(pki.ECDSAP256)
	require.NoError(t, err)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{"evil.example.com"}, URIs: decodeURIs(t, id)}, dnsKey)
	require.NoError(t, err)
	dnsCSR := string(pki.EncodeCSR(der))
	_, otherIDCSR := newCSR(t, "spiffe://cluster.local/ns/kube-system/sa/admin")

	badSigDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: decodeURIs(t, id)}, dnsKey)
	require.NoError(t, err)
	badSigDER[len(badSigDER)-5] ^= 0xff
	badSigCSR := string(pki.EncodeCSR(badSigDER))

	oversized := goodCSR + strings.Repeat(" ", ca.MaxCSRSize)

	tests := map[string]struct {
		token         string
		csr           string
		wantCode      codes.Code
		wantMsg       []string
		wantNoReview  bool
		wantAuthError string
	}{
		"no token": {
			csr: goodCSR, wantCode: codes.Unauthenticated, wantMsg: []string{`"authorization: Bearer <jwt>"`},
			wantNoReview: true, wantAuthError: "missing_token",
		},
		"wrong audience": {
			token: projectedToken(t, ns, "api", "spire-server", nil), csr: goodCSR,
			wantCode: codes.Unauthenticated, wantMsg: []string{"the Kubernetes API rejected the token", "audience"},
			wantAuthError: "review_rejected",
		},
		"expired token": {
			token: localclustertest.SignToken(t, clusterKey, localclustertest.ServiceAccountClaims(c, sa, "istio-ca", time.Now().Add(-time.Minute))), csr: goodCSR,
			wantCode: codes.Unauthenticated, wantMsg: []string{"the Kubernetes API rejected the token", "expired"},
			wantAuthError: "review_rejected",
		},
		"legacy Secret token, refused before any API call": {
			token: legacySecretToken(t, ns, "api"), csr: goodCSR, wantCode: codes.Unauthenticated,
			wantMsg:      []string{"no aud claim", "no exp claim", `issuer is "kubernetes/serviceaccount"`, "TokenRequest", "file-mount path"},
			wantNoReview: true, wantAuthError: "untrustworthy_token",
		},
		"JWT signed by a foreign key": {
			token: localclustertest.SignToken(t, foreignKey, localclustertest.ServiceAccountClaims(c, sa, "istio-ca", time.Now().Add(time.Hour))), csr: goodCSR,
			wantCode: codes.Unauthenticated, wantMsg: []string{"the Kubernetes API rejected the token"},
			wantAuthError: "review_rejected",
		},
		"a user's token, not a service account's": {
			token: c.UserToken, csr: goodCSR, wantCode: codes.Unauthenticated,
			wantMsg:      []string{"not a service-account JWT"},
			wantNoReview: true, wantAuthError: "malformed_token",
		},
		"CSR with a DNS SAN": {
			token: good, csr: dnsCSR, wantCode: codes.PermissionDenied,
			wantMsg: []string{"DNS:evil.example.com", "only vouches for " + id},
		},
		"CSR for another identity": {
			token: good, csr: otherIDCSR, wantCode: codes.PermissionDenied,
			wantMsg: []string{"URI:spiffe://cluster.local/ns/kube-system/sa/admin"},
		},
		"CSR with a bad signature": {
			token: good, csr: badSigCSR, wantCode: codes.InvalidArgument, wantMsg: []string{"signature does not verify"},
		},
		"oversized CSR": {
			token: good, csr: oversized, wantCode: codes.InvalidArgument, wantMsg: []string{"more than the 65536-byte limit"},
		},
		"not a CSR": {
			token: good, csr: "hello", wantCode: codes.InvalidArgument, wantMsg: []string{"cannot read the CSR", "holds no PEM block"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			reviewsBefore := scrape(t, srv, `meshcert_ca_token_reviews_total{result="authenticated"}`) +
				scrape(t, srv, `meshcert_ca_token_reviews_total{result="rejected"}`)
			failuresBefore := scrape(t, srv, `meshcert_ca_auth_failures_total{reason="`+tc.wantAuthError+`"}`)

			_, err := create(t.Context(), client, tc.token, tc.csr, 0)
			require.Error(t, err)
			st := status.Convert(err)
			require.Equal(t, tc.wantCode, st.Code(), st.Message())
			for _, want := range tc.wantMsg {
				require.Contains(t, st.Message(), want)
			}
			reviewsAfter := scrape(t, srv, `meshcert_ca_token_reviews_total{result="authenticated"}`) +
				scrape(t, srv, `meshcert_ca_token_reviews_total{result="rejected"}`)
			if tc.wantNoReview {
				require.Equal(t, reviewsBefore, reviewsAfter, "no TokenReview may be sent")
			}
			if tc.wantAuthError != "" {
				require.Equal(t, failuresBefore+1, scrape(t, srv, `meshcert_ca_auth_failures_total{reason="`+tc.wantAuthError+`"}`))
			}
		})
	}
}

func decodeURIs(t testing.TB, raw ...string) []*url.URL {
	var out []*url.URL
	for _, r := range raw {
		u, err := url.Parse(r)
		require.NoError(t, err)
		out = append(out, u)
	}
	return out
}

// TestDeletedPodTokenRefused deletes the pod a token is bound to and waits
// for the CA to refuse the token, in both verification modes; the time it
// took is logged (the API server caches a review for 10 s, the CA for
// --token-review-cache-ttl).
func TestDeletedPodTokenRefused(t *testing.T) {
	tests := map[string]struct {
		verification, refusedBy, counted string
	}{
		"tokenreview": {verification: ca.TokenVerificationReview, refusedBy: "the Kubernetes API rejected the token", counted: "meshcert_ca_token_reviews_total"},
		"local":       {verification: ca.TokenVerificationLocal, refusedBy: "local verification rejected the token", counted: "meshcert_ca_local_token_verifications_total"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := startCA(t, localclustertest.UniqueName("ca"), func(c *ca.Config) { c.TokenVerification = tc.verification })
			client := dial(t, srv)
			ns := localclustertest.UniqueName("pods")
			workload(t, ns, "web")
			pods := boundCluster(t).Client.CoreV1().Pods(ns)
			pod := localclustertest.Pod(t, boundCluster(t), ns, "web-0", "web", "")
			tok := projectedToken(t, ns, "web", "istio-ca", pod)
			_, csr := newCSR(t, "spiffe://cluster.local/ns/"+ns+"/sa/web")
			resp, err := create(t.Context(), client, tok, csr, 0)
			require.NoError(t, err)
			require.Equal(t, "spiffe://cluster.local/ns/"+ns+"/sa/web", decodeChain(t, resp)[0].URIs[0].String())
			require.Equal(t, float64(1), scrape(t, srv, tc.counted+`{result="authenticated"}`), "decided by %s", tc.verification)
			if tc.verification == ca.TokenVerificationLocal {
				require.Zero(t, scrape(t, srv, `meshcert_ca_token_reviews_total{result="authenticated"}`), "no TokenReview")
			}

			require.NoError(t, pods.Delete(t.Context(), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}))
			deleted := time.Now()
			var last error
			err = wait.PollUntilContextTimeout(t.Context(), 250*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
				_, last = create(ctx, client, tok, csr, 0)
				return last != nil, nil
			})
			require.NoError(t, err, "the deleted pod's token still got certificates 30s later")
			require.Equal(t, codes.Unauthenticated, status.Code(last))
			require.Contains(t, status.Convert(last).Message(), tc.refusedBy)
			t.Logf("%s: refused %s after the pod was deleted: %s", tc.verification, time.Since(deleted).Round(time.Millisecond), status.Convert(last).Message())
		})
	}
}

func TestRootPersistsAcrossRestarts(t *testing.T) {
	ns := localclustertest.UniqueName("ca")
	first := startCA(t, ns)
	root := first.Authority().SigningRoot()
	require.Equal(t, ca.SourceSelfSigned, first.Source())
	first.Stop()

	second := startCA(t, ns)
	require.True(t, root.Equal(second.Authority().SigningRoot()), "a restarted CA must reuse its root")

	s, err := boundCluster(t).Client.CoreV1().Secrets(ns).Get(t.Context(), ca.RootSecretName, metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, ca.SecretTypeCA, s.Type)
}

func TestConcurrentStartsShareOneRootAndBothSign(t *testing.T) {
	ns := localclustertest.UniqueName("ca")
	ensureNamespace(t, ns)
	servers := make([]*ca.Server, 4)
	var wg sync.WaitGroup
	for i := range servers {
		wg.Go(func() { servers[i] = startCA(t, ns) })
	}
	wg.Wait()
	root := servers[0].Authority().SigningRoot()
	for _, s := range servers[1:] {
		require.True(t, root.Equal(s.Authority().SigningRoot()), "concurrent first starts must end with one root")
	}

	wl := localclustertest.UniqueName("wl")
	workload(t, wl, "app")
	tok := projectedToken(t, wl, "app", "istio-ca", nil)
	for i, s := range servers {
		_, csr := newCSR(t, "spiffe://cluster.local/ns/"+wl+"/sa/app")
		resp, err := create(t.Context(), dial(t, s), tok, csr, 0)
		require.NoError(t, err, "replica %d", i)
		_, err = pki.Verify(decodeChain(t, resp), []*x509.Certificate{root}, time.Now())
		require.NoError(t, err)
	}
}

func leaderOf(servers []*ca.Server) int {
	for i, s := range servers {
		if s.IsLeader() {
			return i
		}
	}
	return -1
}

func TestLeaderFailoverTakesOverPublication(t *testing.T) {
	ns := localclustertest.UniqueName("ca")
	crashLike := func(c *ca.Config) {
		c.ReleaseLeaseOnStop = false
		// A shorter lease than the default 10 s keeps the test short; the
		// wait below allows five of them, for a loaded machine.
		c.LeaseDuration, c.RenewDeadline, c.RetryPeriod = 4*time.Second, 3*time.Second, 500*time.Millisecond
	}
	servers := []*ca.Server{startCA(t, ns, crashLike), startCA(t, ns, crashLike)}

	require.NoError(t, wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 20*time.Second, true, func(context.Context) (bool, error) {
		return leaderOf(servers) >= 0, nil
	}))
	leader := leaderOf(servers)
	other := servers[1-leader]
	require.False(t, other.IsLeader())
	require.Equal(t, float64(1), scrape(t, servers[leader], "meshcert_ca_leader"))
	require.Equal(t, float64(0), scrape(t, other, "meshcert_ca_leader"))

	servers[leader].Stop() // as if the process died: the lease is not released
	killed := time.Now()
	require.NoError(t, wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 20*time.Second, true, func(context.Context) (bool, error) {
		return other.IsLeader(), nil
	}), "the surviving replica did not take over within 20s")
	t.Logf("leadership taken over %s after the leader died", time.Since(killed).Round(time.Millisecond))

	fresh := localclustertest.UniqueName("after-failover")
	ensureNamespace(t, fresh)
	requireRootConfigMap(t, fresh, other.RootBundlePEM(), 5*time.Second)
}

func requireRootConfigMap(t testing.TB, ns string, want []byte, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var got string
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, within, true, func(ctx context.Context) (bool, error) {
		cm, err := boundCluster(t).Client.CoreV1().ConfigMaps(ns).Get(ctx, ca.RootConfigMapName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		got = cm.Data[mesh.FileRootCert]
		return got == string(want), nil
	})
	require.NoError(t, err, "ConfigMap %s/%s does not hold the root bundle after %s (has %q)", ns, ca.RootConfigMapName, within, got)
	return time.Since(start)
}

func TestRootConfigMapPublishedRepairedRecreated(t *testing.T) {
	srv := startCA(t, localclustertest.UniqueName("ca"))
	require.NoError(t, wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 20*time.Second, true, func(context.Context) (bool, error) {
		return srv.IsLeader(), nil
	}))
	bundle := srv.RootBundlePEM()
	cms := func(ns string) interface {
		Update(context.Context, *corev1.ConfigMap, metav1.UpdateOptions) (*corev1.ConfigMap, error)
		Get(context.Context, string, metav1.GetOptions) (*corev1.ConfigMap, error)
		Delete(context.Context, string, metav1.DeleteOptions) error
	} {
		return boundCluster(t).Client.CoreV1().ConfigMaps(ns)
	}

	ns := localclustertest.UniqueName("new-ns")
	ensureNamespace(t, ns)
	t.Logf("published in a new namespace after %s", requireRootConfigMap(t, ns, bundle, 2*time.Second))

	cm, err := cms(ns).Get(t.Context(), ca.RootConfigMapName, metav1.GetOptions{})
	require.NoError(t, err)
	cm.Data[mesh.FileRootCert] = "tampered"
	cm.Data["extra"] = "x"
	_, err = cms(ns).Update(t.Context(), cm, metav1.UpdateOptions{})
	require.NoError(t, err)
	t.Logf("repaired after %s", requireRootConfigMap(t, ns, bundle, 2*time.Second))
	cm, err = cms(ns).Get(t.Context(), ca.RootConfigMapName, metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, map[string]string{mesh.FileRootCert: string(bundle)}, cm.Data)

	require.NoError(t, cms(ns).Delete(t.Context(), ca.RootConfigMapName, metav1.DeleteOptions{}))
	t.Logf("recreated after %s", requireRootConfigMap(t, ns, bundle, 2*time.Second))
	require.GreaterOrEqual(t, scrape(t, srv, `meshcert_ca_root_configmap_writes_total{operation="create"}`), float64(2))
	require.GreaterOrEqual(t, scrape(t, srv, `meshcert_ca_root_configmap_writes_total{operation="update"}`), float64(1))
}

func TestResourceExhausted(t *testing.T) {
	srv := startCA(t, localclustertest.UniqueName("ca"), func(c *ca.Config) {
		// A review per call, one at a time: the burst meets the bound on
		// calls being authenticated; signings have their own bound, tested
		// in service_internal_test.go.
		c.MaxConcurrentSignings, c.MaxConcurrentAuthentications = 1, 1
		c.ReviewCacheTTL = 0
	})
	client := dial(t, srv)
	ns := localclustertest.UniqueName("burst")
	workload(t, ns, "app")
	tok := projectedToken(t, ns, "app", "istio-ca", nil)
	_, csr := newCSR(t, "spiffe://cluster.local/ns/"+ns+"/sa/app")
	// Warm the connection so that the burst arrives at once.
	_, err := create(t.Context(), client, tok, csr, 0)
	require.NoError(t, err)

	const callers = 64
	codesSeen := make([]codes.Code, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			_, err := create(t.Context(), client, tok, csr, 0)
			codesSeen[i] = status.Code(err)
		})
	}
	wg.Wait()
	counts := map[codes.Code]int{}
	for _, c := range codesSeen {
		counts[c]++
	}
	require.Equal(t, callers, counts[codes.OK]+counts[codes.ResourceExhausted], "only success or ResourceExhausted: %v", counts)
	require.Positive(t, counts[codes.ResourceExhausted], "64 callers against a limit of 1 must see backpressure")
	require.Equal(t, float64(counts[codes.ResourceExhausted]), scrape(t, srv, `meshcert_ca_csr_total{result="resource_exhausted"}`))
	require.Equal(t, float64(1), scrape(t, srv, "meshcert_ca_max_concurrent_signings"))
	t.Logf("outcomes: %d signed, %d ResourceExhausted", counts[codes.OK], counts[codes.ResourceExhausted])
}

func TestUnavailableWhenTheAPIServerIsGone(t *testing.T) {
	doomed, err := localcluster.Start(t.Context(), localcluster.Options{})
	require.NoError(t, err)
	defer func() { _ = doomed.Stop() }() // the test stops its API server itself
	sa, err := doomed.Client.CoreV1().ServiceAccounts("default").Get(t.Context(), "default", metav1.GetOptions{})
	require.NoError(t, err)

	cfg := ca.DefaultConfig()
	cfg.Namespace, cfg.Listen, cfg.MonitoringListen = "default", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := ca.Start(t.Context(), cfg, doomed.Config)
	require.NoError(t, err)
	defer srv.Stop()
	client := dial(t, srv)

	key, err := pki.GenerateKey(pki.RSA2048)
	require.NoError(t, err)
	tok := localclustertest.SignToken(t, key, localclustertest.ServiceAccountClaims(doomed, sa, "istio-ca", time.Now().Add(time.Hour)))
	require.NoError(t, doomed.Stop())

	_, csr := newCSR(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err = create(ctx, client, tok, csr, 0)
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "cannot reach the Kubernetes API")
	require.Equal(t, float64(1), scrape(t, srv, `meshcert_ca_csr_total{result="unavailable"}`))
}

func TestHealthAndReadiness(t *testing.T) {
	srv := startCA(t, localclustertest.UniqueName("ca"))
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + srv.MonitoringAddr() + path)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		require.Equal(t, "ok", string(bytes.TrimSpace(body)))
	}
}

func TestKubeClientRateLimitIsVisible(t *testing.T) {
	srv := startCA(t, localclustertest.UniqueName("ca"), func(c *ca.Config) {
		c.KubeAPIQPS = 5
		c.KubeAPIBurst = 1
		c.ReviewCacheTTL = 0
	})
	client := dial(t, srv)
	ns := localclustertest.UniqueName("qps")
	workload(t, ns, "app")
	tok := projectedToken(t, ns, "app", "istio-ca", nil)
	_, csr := newCSR(t, "spiffe://cluster.local/ns/"+ns+"/sa/app")
	for range 5 {
		_, err := create(t.Context(), client, tok, csr, 0)
		require.NoError(t, err)
	}
	require.Equal(t, float64(5), scrape(t, srv, "meshcert_ca_kube_client_qps_limit"))
	require.GreaterOrEqual(t, scrape(t, srv, "meshcert_ca_kube_client_throttle_seconds_count"), float64(5))
	require.Greater(t, scrape(t, srv, "meshcert_ca_kube_client_throttle_seconds_sum"), 0.3,
		"five reviews at 5 QPS with burst 1 must have waited for the limiter")
}
