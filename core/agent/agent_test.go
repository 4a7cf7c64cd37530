// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package agent_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	secretv3 "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/meshcert/kubectl-meshcert/core/agent"
	"github.com/meshcert/kubectl-meshcert/core/pki"
	"github.com/meshcert/kubectl-meshcert/core/pki/pkitest"
	"github.com/meshcert/kubectl-meshcert/harness/localcluster/localclustertest"
)

func TestInitialFetchThenACK(t *testing.T) {
	m := startMesh(t)
	ns := localclustertest.UniqueName("shop")
	tok := workloadToken(t, ns, "cart", "istio-ca")
	e := openStream(t, dialSDS(t, m.agent.SocketPath()), withToken(t.Context(), tok), agent.ResourceDefault, agent.ResourceRootCA)

	first := e.next(10 * time.Second)
	require.NotEmpty(t, first.VersionInfo)
	require.NotEmpty(t, first.Nonce)
	require.Equal(t, agent.SecretTypeURL, first.TypeUrl)
	got := decode(t, first)
	require.Equal(t, "spiffe://cluster.local/ns/"+ns+"/sa/cart", got.id())
	key, err := pki.DecodePrivateKey(got.keyPEM)
	require.NoError(t, err)
	require.True(t, pki.KeyMatches(key, got.chain[0].PublicKey))
	require.Len(t, got.roots, 1)
	require.True(t, got.roots[0].Equal(m.ca.Authority().SigningRoot()))
	_, err = pki.Verify(got.chain, got.roots, time.Now())
	require.NoError(t, err)

	e.ack(first)
	e.quietUntil("the ACK is counted", counterAtLeast(t, m.agent.MonitoringAddr(), "meshcert_agent_sds_acks_total", 1))
	require.Equal(t, float64(1), scrape(t, m.agent.MonitoringAddr(), "meshcert_agent_sds_acks_total"))
	require.Equal(t, float64(1), scrape(t, m.agent.MonitoringAddr(), "meshcert_agent_open_streams"))
	require.Equal(t, float64(got.chain[0].NotAfter.Unix()),
		scrape(t, m.agent.MonitoringAddr(), `meshcert_agent_cert_expiry_timestamp_seconds{identity="`+got.id()+`"}`))
}

func TestNACKKeepsTheStreamAndRecovers(t *testing.T) {
	m := startMesh(t)
	ns := localclustertest.UniqueName("nack")
	tok := workloadToken(t, ns, "api", "istio-ca")
	e := openStream(t, dialSDS(t, m.agent.SocketPath()), withToken(t.Context(), tok), agent.ResourceDefault)
	first := e.next(10 * time.Second)
	e.nack(first, "", "unable to load private key: invalid PEM")
	e.quietUntil("the NACK is counted", counterAtLeast(t, m.agent.MonitoringAddr(), "meshcert_agent_sds_nacks_total", 1))
	require.Equal(t, float64(1), scrape(t, m.agent.MonitoringAddr(), "meshcert_agent_sds_nacks_total"))

	id := decode(t, first).id()
	require.True(t, m.agent.RotateIdentity(id))
	second := e.next(10 * time.Second)
	require.NotEqual(t, first.VersionInfo, second.VersionInfo)
	require.NotEqual(t, first.Nonce, second.Nonce)
	require.NotEqual(t, decode(t, first).chain[0].SerialNumber, decode(t, second).chain[0].SerialNumber)
	e.ack(second)
	e.quietUntil("the ACK is counted", counterAtLeast(t, m.agent.MonitoringAddr(), "meshcert_agent_sds_acks_total", 1))
	require.Equal(t, float64(1), scrape(t, m.agent.MonitoringAddr(), "meshcert_agent_sds_acks_total"))
}

func TestRotationPushedBeforeExpiry(t *testing.T) {
	m := startMesh(t, func(c *agent.Config) { c.WorkloadCertTTL = 4 * time.Second })
	ns := localclustertest.UniqueName("rot")
	tok := workloadToken(t, ns, "app", "istio-ca")
	e := openStream(t, dialSDS(t, m.agent.SocketPath()), withToken(t.Context(), tok), agent.ResourceDefault, agent.ResourceRootCA)
	prev := decode(t, e.next(10*time.Second)).chain[0]
	for i := range 2 {
		resp := e.next(6 * time.Second)
		received := time.Now()
		next := decode(t, resp).chain[0]
		require.NotEqual(t, prev.SerialNumber, next.SerialNumber, "rotation %d", i+1)
		require.True(t, received.Before(prev.NotAfter), "rotation %d arrived at %s, after the old certificate expired at %s", i+1, received, prev.NotAfter)
		t.Logf("rotation %d pushed %s before the old certificate expired", i+1, prev.NotAfter.Sub(received).Round(time.Millisecond))
		e.ack(resp)
		prev = next
	}
	require.GreaterOrEqual(t, scrape(t, m.agent.MonitoringAddr(), "meshcert_agent_rotations_total"), float64(2))
}

func TestCAOutageKeepsServingAndRecovers(t *testing.T) {
	m := startMesh(t, func(c *agent.Config) { c.WorkloadCertTTL = 4 * time.Second })
	ns := localclustertest.UniqueName("outage")
	tok := workloadToken(t, ns, "app", "istio-ca")
	client := dialSDS(t, m.agent.SocketPath())
	e := openStream(t, client, withToken(t.Context(), tok), agent.ResourceDefault)
	first := decode(t, e.next(10*time.Second)).chain[0]
	addr := m.ca.Addr()

	m.ca.Stop()
	// Past the rotation time, the CA is unreachable: the renewal's calls
	// fail, nothing new is pushed and the same valid certificate is served.
	e.quietUntil("two renewal calls failed", counterAtLeast(t, m.agent.MonitoringAddr(), `meshcert_agent_ca_errors_total{code="Unavailable"}`, 2))
	fetched, err := client.FetchSecrets(withToken(t.Context(), tok), &discovery.DiscoveryRequest{
		Node: &corev3.Node{Id: "probe"}, ResourceNames: []string{agent.ResourceDefault}, TypeUrl: agent.SecretTypeURL})
	require.NoError(t, err)
	require.Equal(t, first.SerialNumber, decode(t, fetched).chain[0].SerialNumber, "a valid certificate is never withdrawn")
	require.Positive(t, scrape(t, m.agent.MonitoringAddr(), `meshcert_agent_ca_errors_total{code="Unavailable"}`))

	restarted := startCA(t, m.caNS, addr)
	require.True(t, restarted.Authority().SigningRoot().Equal(m.ca.Authority().SigningRoot()))
	back := time.Now()
	recovered := decode(t, e.next(10*time.Second)).chain[0]
	require.NotEqual(t, first.SerialNumber, recovered.SerialNumber)
	t.Logf("renewed %s after the CA came back", time.Since(back).Round(time.Millisecond))
}

func TestTwoWorkloadsGetTheirOwnIdentities(t *testing.T) {
	m := startMesh(t)
	client := dialSDS(t, m.agent.SocketPath())
	ns := localclustertest.UniqueName("two")
	ids := map[string]string{}
	for _, sa := range []string{"frontend", "backend"} {
		e := openStream(t, client, withToken(t.Context(), workloadToken(t, ns, sa, "istio-ca")), agent.ResourceDefault)
		ids[sa] = decode(t, e.next(10*time.Second)).id()
	}
	require.Equal(t, "spiffe://cluster.local/ns/"+ns+"/sa/frontend", ids["frontend"])
	require.Equal(t, "spiffe://cluster.local/ns/"+ns+"/sa/backend", ids["backend"])
	require.Equal(t, float64(2), scrape(t, m.agent.MonitoringAddr(), "meshcert_agent_identities"))
}

func legacyToken(t *testing.T, ns, sa string) string {
	t.Helper()
	workloadToken(t, ns, sa, "istio-ca")
	client := boundCluster(t).Client
	_, err := client.CoreV1().Secrets(ns).Create(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: sa + "-legacy", Annotations: map[string]string{corev1.ServiceAccountNameKey: sa}},
		Type:       corev1.SecretTypeServiceAccountToken,
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	var raw string
	require.NoError(t, wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		s, err := client.CoreV1().Secrets(ns).Get(ctx, sa+"-legacy", metav1.GetOptions{})
		raw = string(s.Data[corev1.ServiceAccountTokenKey])
		return raw != "", err
	}))
	return raw
}

func TestRefusedTokens(t *testing.T) {
	m := startMesh(t)
	client := dialSDS(t, m.agent.SocketPath())
	ns := localclustertest.UniqueName("refused")
	tests := map[string]struct {
		ctx      context.Context
		wantCode codes.Code
		wantMsg  []string
	}{
		"legacy Secret token": {
			ctx: withToken(t.Context(), legacyToken(t, ns, "old")), wantCode: codes.Unauthenticated,
			wantMsg: []string{"no aud claim", "no exp claim", "TokenRequest", "file-mount path"},
		},
		"wrong audience": {
			ctx: withToken(t.Context(), workloadToken(t, ns, "aud", "spire-server")), wantCode: codes.Unauthenticated,
			wantMsg: []string{"the CA refused a certificate for spiffe://cluster.local/ns/" + ns + "/sa/aud", "audience"},
		},
		"no token": {
			ctx: t.Context(), wantCode: codes.Unauthenticated, wantMsg: []string{"no workload token on the stream", "file-mount path"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := openStream(t, client, tc.ctx, agent.ResourceDefault, agent.ResourceRootCA)
			st := status.Convert(e.err(10 * time.Second))
			require.Equal(t, tc.wantCode, st.Code(), st.Message())
			for _, want := range tc.wantMsg {
				require.Contains(t, st.Message(), want)
			}
		})
	}

	t.Run("unknown resource name", func(t *testing.T) {
		e := openStream(t, client, withToken(t.Context(), workloadToken(t, ns, "app", "istio-ca")), "file-cert")
		st := status.Convert(e.err(10 * time.Second))
		require.Equal(t, codes.InvalidArgument, st.Code())
		require.Contains(t, st.Message(), `unknown SDS resource "file-cert"`)
	})

	t.Run("sidecar mode with a legacy token file exits", func(t *testing.T) {
		dir := shortTempDir(t)
		tokenFile := filepath.Join(dir, "token")
		require.NoError(t, os.WriteFile(tokenFile, []byte(legacyToken(t, ns, "sidecar")), 0o600))
		cfg := agent.DefaultConfig()
		cfg.SocketPath, cfg.TokenFile, cfg.CARootFile, cfg.CAAddress = filepath.Join(dir, "sds.sock"), tokenFile, m.rootFile, m.ca.Addr()
		cfg.MonitoringListen, cfg.Logger = "", quiet()
		_, err := agent.Start(t.Context(), cfg)
		require.ErrorContains(t, err, "--token-file "+tokenFile)
		require.ErrorContains(t, err, "no aud claim")
		require.ErrorContains(t, err, "file-mount path")
		require.NoFileExists(t, cfg.SocketPath)
	})
}

func TestIstio13CredentialsHeader(t *testing.T) {
	m := startMesh(t)
	ns := localclustertest.UniqueName("istio13")
	ctx := metadata.AppendToOutgoingContext(t.Context(), agent.IstioCredentialsHeader, workloadToken(t, ns, "legacy-envoy", "istio-ca"))
	e := openStream(t, dialSDS(t, m.agent.SocketPath()), ctx, agent.ResourceDefault)
	require.Equal(t, "spiffe://cluster.local/ns/"+ns+"/sa/legacy-envoy", decode(t, e.next(10*time.Second)).id())
}

func TestSidecarModeReadsTheTokenFile(t *testing.T) {
	dir := shortTempDir(t)
	tokenFile := filepath.Join(dir, "token")
	ns := localclustertest.UniqueName("sidecar")
	require.NoError(t, os.WriteFile(tokenFile, []byte(workloadToken(t, ns, "app", "istio-ca")), 0o600))
	m := startMesh(t, func(c *agent.Config) { c.TokenFile = tokenFile })
	e := openStream(t, dialSDS(t, m.agent.SocketPath()), t.Context(), agent.ResourceDefault)
	first := e.next(10 * time.Second)
	require.Equal(t, "spiffe://cluster.local/ns/"+ns+"/sa/app", decode(t, first).id())

	// The kubelet refreshes the token: renewals present the new one.
	require.NoError(t, os.WriteFile(tokenFile, []byte("not a token"), 0o600))
	require.True(t, m.agent.RotateIdentity(decode(t, first).id()))
	e.quietUntil("the renewal failed", counterAtLeast(t, m.agent.MonitoringAddr(), "meshcert_agent_renewal_failures_total", 1))
	require.NoError(t, os.WriteFile(tokenFile, []byte(workloadToken(t, ns, "app", "istio-ca")), 0o600))
	second := e.next(10 * time.Second)
	require.NotEqual(t, decode(t, first).chain[0].SerialNumber, decode(t, second).chain[0].SerialNumber)
}

func TestDeltaSecrets(t *testing.T) {
	m := startMesh(t)
	ns := localclustertest.UniqueName("delta")
	ctx := withToken(t.Context(), workloadToken(t, ns, "app", "istio-ca"))
	stream, err := dialSDS(t, m.agent.SocketPath()).DeltaSecrets(ctx)
	require.NoError(t, err)
	require.NoError(t, stream.Send(&discovery.DeltaDiscoveryRequest{
		Node: &corev3.Node{Id: "delta"}, TypeUrl: agent.SecretTypeURL, ResourceNamesSubscribe: []string{agent.ResourceDefault, agent.ResourceRootCA},
	}))
	resp, err := stream.Recv()
	require.NoError(t, err)
	require.Len(t, resp.Resources, 2)
	require.NotEmpty(t, resp.Nonce)
	require.NoError(t, stream.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: agent.SecretTypeURL, ResponseNonce: resp.Nonce}))

	require.True(t, m.agent.RotateIdentity("spiffe://cluster.local/ns/"+ns+"/sa/app"))
	update, err := stream.Recv()
	require.NoError(t, err)
	require.Len(t, update.Resources, 1, "only the changed resource is sent")
	require.Equal(t, agent.ResourceDefault, update.Resources[0].Name)
	require.NotEqual(t, resp.Nonce, update.Nonce)
}

func TestInspect(t *testing.T) {
	m := startMesh(t, func(c *agent.Config) { c.WorkloadCertTTL = time.Hour })
	ns := localclustertest.UniqueName("inspect")
	dir := shortTempDir(t)
	tokenFile := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(workloadToken(t, ns, "app", "istio-ca")), 0o600))

	report, err := agent.Inspect(t.Context(), agent.InspectOptions{SocketPath: m.agent.SocketPath(), TokenFile: tokenFile})
	require.NoError(t, err)
	id := "spiffe://cluster.local/ns/" + ns + "/sa/app"
	require.Equal(t, id, report.Identity)
	require.Len(t, report.Resources, 2)
	def, root := report.Resources[0], report.Resources[1]
	require.Equal(t, agent.ResourceDefault, def.Name)
	require.Equal(t, id, def.SPIFFEID)
	require.NotEmpty(t, def.Serial)
	require.WithinDuration(t, time.Now().Add(time.Hour), def.NotAfter, 5*time.Second)
	require.WithinDuration(t, time.Now().Add(30*time.Minute), def.RotationDue, 2*time.Minute)
	rootFP := pki.Fingerprint(m.ca.Authority().SigningRoot())
	require.Equal(t, rootFP, def.ChainsToRoot)
	require.Equal(t, []string{rootFP}, root.RootFingerprints)

	_, err = agent.Inspect(t.Context(), agent.InspectOptions{SocketPath: filepath.Join(dir, "missing.sock")})
	require.ErrorContains(t, err, "no agent socket at")
}

func TestSocketPermissionsAndStaleSockets(t *testing.T) {
	m := startMesh(t)
	st, err := os.Stat(m.agent.SocketPath())
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	dir := shortTempDir(t)
	base := func(c *agent.Config) {
		c.CAAddress, c.CAServerName, c.CARootFile = m.ca.Addr(), "localhost", m.rootFile
	}
	custom := startAgent(t, base, func(c *agent.Config) { c.SocketPath, c.SocketMode = filepath.Join(dir, "custom.sock"), 0o660 })
	st, err = os.Stat(custom.SocketPath())
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o660), st.Mode().Perm())

	// A socket file nobody answers on is left by a dead agent: removed.
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	require.NoError(t, err)
	ln.SetUnlinkOnClose(false)
	require.NoError(t, ln.Close())
	require.FileExists(t, stale)
	startAgent(t, base, func(c *agent.Config) { c.SocketPath = stale })

	// A live one belongs to another agent: refused.
	cfg := agent.DefaultConfig()
	base(&cfg)
	cfg.SocketPath, cfg.MonitoringListen, cfg.Logger = m.agent.SocketPath(), "", quiet()
	_, err = agent.Start(t.Context(), cfg)
	require.ErrorContains(t, err, "another process is serving on "+m.agent.SocketPath())

	// A regular file is never removed.
	plain := filepath.Join(dir, "plain")
	require.NoError(t, os.WriteFile(plain, []byte("x"), 0o600))
	cfg.SocketPath = plain
	_, err = agent.Start(t.Context(), cfg)
	require.ErrorContains(t, err, "is not a socket")
	require.FileExists(t, plain)
}

func TestThousandConcurrentStreams(t *testing.T) {
	m := startMesh(t)
	ns := localclustertest.UniqueName("many")
	tok := workloadToken(t, ns, "app", "istio-ca")
	const n = 1000
	clients := make([]*envoy, n)
	var wg sync.WaitGroup
	var client secretv3.SecretDiscoveryServiceClient
	// A hundred connections of ten streams, as a node of Envoys would open.
	for i := range n {
		if i%10 == 0 {
			client = dialSDS(t, m.agent.SocketPath())
		}
		client := client
		wg.Go(func() {
			clients[i] = openStream(t, client, withToken(t.Context(), tok), agent.ResourceDefault, agent.ResourceRootCA)
		})
	}
	wg.Wait()
	var serial string
	for _, c := range clients {
		got := decode(t, c.next(30*time.Second))
		if serial == "" {
			serial = got.chain[0].SerialNumber.String()
		}
		require.Equal(t, serial, got.chain[0].SerialNumber.String(), "one certificate per identity, shared by every stream")
	}
	require.Equal(t, float64(n), scrape(t, m.agent.MonitoringAddr(), "meshcert_agent_open_streams"))

	start := time.Now()
	require.True(t, m.agent.RotateIdentity("spiffe://cluster.local/ns/"+ns+"/sa/app"))
	for _, c := range clients {
		got := decode(t, c.next(30*time.Second))
		require.NotEqual(t, serial, got.chain[0].SerialNumber.String())
	}
	t.Logf("a rotation reached all %d streams %s after it was requested (CA round trip included)", n, time.Since(start).Round(time.Millisecond))
}

// While an identity's first certificate is being asked for, streams of the
// same identity with tokens of their own wait for it rather than each
// making a key and a CSR that would be thrown away; then each token is
// checked by the CA once. n streams cost n CSRs and share one certificate.
func TestFirstStreamsOfAnIdentityCostOneCSREach(t *testing.T) {
	m := startMesh(t)
	ns := localclustertest.UniqueName("first")
	const n = 20
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = workloadToken(t, ns, "app", "istio-ca")
	}
	clients := make([]*envoy, n)
	var wg sync.WaitGroup
	for i, tok := range tokens {
		wg.Go(func() {
			clients[i] = openStream(t, dialSDS(t, m.agent.SocketPath()), withToken(t.Context(), tok), agent.ResourceDefault)
		})
	}
	wg.Wait()
	var serial string
	for _, c := range clients {
		got := decode(t, c.next(30*time.Second))
		if serial == "" {
			serial = got.chain[0].SerialNumber.String()
		}
		require.Equal(t, serial, got.chain[0].SerialNumber.String(), "one certificate for the identity")
	}
	require.Equal(t, float64(n), scrape(t, m.ca.MonitoringAddr(), `meshcert_ca_csr_total{result="success"}`),
		"each token was checked by one CSR, and no stream made a key of its own to throw away")
}

func TestRootFileChangePushesROOTCA(t *testing.T) {
	m := startMesh(t)
	ns := localclustertest.UniqueName("roots")
	e := openStream(t, dialSDS(t, m.agent.SocketPath()), withToken(t.Context(), workloadToken(t, ns, "app", "istio-ca")), agent.ResourceRootCA)
	first := decode(t, e.next(10*time.Second))
	require.Len(t, first.roots, 1)
	e.ack(e.lastSeen())

	next := pkitest.NewRoot(t)
	bundle := append(append([]byte{}, first.rootsPEM...), pki.EncodeCertificates(next.Cert)...)
	require.NoError(t, os.WriteFile(m.rootFile, bundle, 0o644))
	got := decode(t, e.next(5*time.Second))
	require.Len(t, got.roots, 2, "a root rotation's bundle reaches ROOTCA without a restart")
	require.True(t, got.roots[1].Equal(next.Cert))
}

// A stream is authorised only as long as its token: when the token
// expires, the stream ends with Unauthenticated so that Envoy reconnects
// with its refreshed token, and a rotation after that pushes no key to it.
// A fresh token on a new stream is served the same identity.
func TestStreamEndsWhenItsTokenExpires(t *testing.T) {
	m := startMesh(t)
	client := dialSDS(t, m.agent.SocketPath())
	ns := localclustertest.UniqueName("expiry")
	workloadToken(t, ns, "app", "istio-ca") // creates the service account
	sa, err := boundCluster(t).Client.CoreV1().ServiceAccounts(ns).Get(t.Context(), "app", metav1.GetOptions{})
	require.NoError(t, err)
	expiry := time.Now().Add(4 * time.Second).Truncate(time.Second) // a JWT counts in seconds
	short := localclustertest.TokenExpiringAt(t, boundCluster(t), sa, "istio-ca", expiry)

	e := openStream(t, client, withToken(t.Context(), short), agent.ResourceDefault, agent.ResourceRootCA)
	first := e.next(10 * time.Second)
	e.ack(first)
	require.Equal(t, "spiffe://cluster.local/ns/"+ns+"/sa/app", decode(t, first).id())

	st := status.Convert(e.err(20 * time.Second))
	require.Equal(t, codes.Unauthenticated, st.Code(), st.Message())
	require.Contains(t, st.Message(), "the stream's token expired at "+expiry.UTC().Format(time.RFC3339))
	require.Contains(t, st.Message(), "reconnect with the workload's refreshed token")
	require.False(t, time.Now().Before(expiry), "the stream ended at its token's expiry, not before")
	require.Equal(t, float64(1), scrape(t, m.agent.MonitoringAddr(), "meshcert_agent_sds_expired_streams_total"))

	again := openStream(t, client, withToken(t.Context(), workloadToken(t, ns, "app", "istio-ca")), agent.ResourceDefault)
	require.Equal(t, "spiffe://cluster.local/ns/"+ns+"/sa/app", decode(t, again.next(10*time.Second)).id())
}

// Tokens the CA refuses leave nothing behind in the agent: no identity, no
// key. Past --max-identities, new identities are told to back off.
func TestRefusedTokensLeaveNoIdentity(t *testing.T) {
	m := startMesh(t, func(c *agent.Config) { c.MaxIdentities = 2 })
	client := dialSDS(t, m.agent.SocketPath())
	ns := localclustertest.UniqueName("forged")
	foreignKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	for i := range 5 {
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("forged-%d", i), UID: "u"}}
		forged := localclustertest.SignToken(t, foreignKey, localclustertest.ServiceAccountClaims(boundCluster(t), sa, "istio-ca", time.Now().Add(time.Hour)))
		e := openStream(t, client, withToken(t.Context(), forged), agent.ResourceDefault)
		st := status.Convert(e.err(10 * time.Second))
		require.Equal(t, codes.Unauthenticated, st.Code(), st.Message())
		require.Contains(t, st.Message(), "the CA refused a certificate for spiffe://cluster.local/ns/"+ns+"/sa/forged-")
	}
	require.Equal(t, float64(0), scrape(t, m.agent.MonitoringAddr(), "meshcert_agent_identities"), "refused tokens made no entry")

	for _, name := range []string{"one", "two"} {
		e := openStream(t, client, withToken(t.Context(), workloadToken(t, ns, name, "istio-ca")), agent.ResourceDefault)
		e.next(10 * time.Second)
	}
	require.Equal(t, float64(2), scrape(t, m.agent.MonitoringAddr(), "meshcert_agent_identities"))
	e := openStream(t, client, withToken(t.Context(), workloadToken(t, ns, "three", "istio-ca")), agent.ResourceDefault)
	st := status.Convert(e.err(10 * time.Second))
	require.Equal(t, codes.ResourceExhausted, st.Code(), st.Message())
	require.Contains(t, st.Message(), "--max-identities")
}

// A renewal presents every live stream's token until the CA accepts one,
// and ends the streams whose token the CA refuses: here the pod that the
// longest-lived token is bound to is deleted, and its stream ends with
// Unauthenticated while the other stream of the identity keeps getting
// renewed certificates.
func TestRenewalTriesEveryStreamsToken(t *testing.T) {
	m := startMesh(t, func(c *agent.Config) { c.WorkloadCertTTL = 4 * time.Second })
	client := dialSDS(t, m.agent.SocketPath())
	ns := localclustertest.UniqueName("renew")
	workloadToken(t, ns, "app", "istio-ca") // creates the service account
	c := boundCluster(t)
	sa, err := c.Client.CoreV1().ServiceAccounts(ns).Get(t.Context(), "app", metav1.GetOptions{})
	require.NoError(t, err)
	pod := localclustertest.Pod(t, c, ns, "doomed", "app", "node-a")
	longest := localclustertest.Token(t, c, ns, "app", "istio-ca", pod) // an hour
	shorter := localclustertest.TokenExpiringAt(t, c, sa, "istio-ca", time.Now().Add(30*time.Minute).Truncate(time.Second))

	doomed := openStream(t, client, withToken(t.Context(), longest), agent.ResourceDefault)
	doomed.ack(doomed.next(10 * time.Second))
	kept := openStream(t, client, withToken(t.Context(), shorter), agent.ResourceDefault)
	kept.ack(kept.next(10 * time.Second))

	require.NoError(t, c.Client.CoreV1().Pods(ns).Delete(t.Context(), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}))
	var ended error
	deadline := time.After(30 * time.Second)
	for ended == nil {
		select {
		case r := <-doomed.resps:
			doomed.ack(r) // renewed with its token while the CA's review cache still held it
		case ended = <-doomed.errs:
		case <-deadline:
			t.Fatal("the stream whose pod was deleted was never ended")
		}
	}
	st := status.Convert(ended)
	require.Equal(t, codes.Unauthenticated, st.Code(), st.Message())
	require.Contains(t, st.Message(), "the CA refused the stream's token when renewing spiffe://cluster.local/ns/"+ns+"/sa/app")
	require.Equal(t, float64(1), scrape(t, m.agent.MonitoringAddr(), "meshcert_agent_sds_refused_streams_total"))

	// Drain what the kept stream got before, then see a renewal after.
	for len(kept.resps) > 0 {
		kept.ack(kept.next(time.Second))
	}
	before := kept.lastSeen()
	after := kept.next(10 * time.Second)
	require.NotEqual(t, decode(t, before).chain[0].SerialNumber, decode(t, after).chain[0].SerialNumber)
}

// The socket's peer credentials tell the workloads apart by UID: past
// --max-streams-per-peer calls, the next is refused with the reason, before
// any token is read; once one ends, the UID may open another.
func TestStreamsPerPeerAreCapped(t *testing.T) {
	m := startMesh(t, func(c *agent.Config) { c.MaxStreamsPerPeer = 2 })
	client := dialSDS(t, m.agent.SocketPath())
	ns := localclustertest.UniqueName("peer")
	tok := workloadToken(t, ns, "app", "istio-ca")
	first := openStream(t, client, withToken(t.Context(), tok), agent.ResourceDefault)
	first.next(10 * time.Second)
	ctx, cancel := context.WithCancel(t.Context())
	second := openStream(t, client, withToken(ctx, tok), agent.ResourceDefault)
	second.next(10 * time.Second)

	third := openStream(t, client, t.Context(), agent.ResourceDefault) // no token: the cap comes first
	st := status.Convert(third.err(10 * time.Second))
	require.Equal(t, codes.ResourceExhausted, st.Code(), st.Message())
	require.Contains(t, st.Message(), fmt.Sprintf("the workloads running as uid %d hold 2 SDS calls", os.Getuid()))
	require.Contains(t, st.Message(), "--max-streams-per-peer")
	require.Equal(t, float64(1), scrape(t, m.agent.MonitoringAddr(), "meshcert_agent_sds_peer_limited_total"))

	cancel()
	require.Equal(t, codes.Canceled, status.Code(second.err(10*time.Second)))
	require.Eventually(t, func() bool {
		e := openStream(t, client, withToken(t.Context(), tok), agent.ResourceDefault)
		select {
		case r := <-e.resps:
			return r != nil
		case err := <-e.errs:
			return err == nil
		case <-time.After(5 * time.Second):
			return false
		}
	}, 20*time.Second, 100*time.Millisecond, "the UID could not open a stream once one of its streams ended")
}

// Bad tokens that name an identity the agent already serves, with its key
// cached, get neither that key nor a certificate: each costs a CSR the CA
// refuses. A pod-bound token goes bad when its pod is deleted.
func TestBadTokensForAServedIdentity(t *testing.T) {
	m := startMesh(t)
	client := dialSDS(t, m.agent.SocketPath())
	ns := localclustertest.UniqueName("served")
	c := boundCluster(t)
	genuine := openStream(t, client, withToken(t.Context(), workloadToken(t, ns, "app", "istio-ca")), agent.ResourceDefault)
	served := decode(t, genuine.next(10*time.Second))
	sa, err := c.Client.CoreV1().ServiceAccounts(ns).Get(t.Context(), "app", metav1.GetOptions{})
	require.NoError(t, err)

	foreignKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	pod := localclustertest.Pod(t, c, ns, "gone", "app", "node-a")
	deletedPods := localclustertest.Token(t, c, ns, "app", "istio-ca", pod)
	require.NoError(t, c.Client.CoreV1().Pods(ns).Delete(t.Context(), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}))
	tests := map[string]string{
		"forged":         localclustertest.SignToken(t, foreignKey, localclustertest.ServiceAccountClaims(c, sa, "istio-ca", time.Now().Add(time.Hour))),
		"wrong audience": localclustertest.Token(t, c, ns, "app", "spire-server", nil),
		"deleted pod's":  deletedPods,
	}
	for name, tok := range tests {
		t.Run(name, func(t *testing.T) {
			e := openStream(t, client, withToken(t.Context(), tok), agent.ResourceDefault)
			st := status.Convert(e.err(10 * time.Second))
			require.Equal(t, codes.Unauthenticated, st.Code(), st.Message())
		})
	}
	// The genuine stream still holds the same certificate: nothing rotated
	// or withdrew it.
	fetched, err := client.FetchSecrets(withToken(t.Context(), workloadToken(t, ns, "app", "istio-ca")),
		&discovery.DiscoveryRequest{Node: &corev3.Node{Id: "sidecar~10.0.0.9~x.ns~ns.svc.cluster.local"}, ResourceNames: []string{agent.ResourceDefault}, TypeUrl: agent.SecretTypeURL})
	require.NoError(t, err)
	require.Equal(t, served.chain[0].SerialNumber, decode(t, fetched).chain[0].SerialNumber)
}
