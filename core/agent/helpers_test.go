// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package agent_test

import (
	"bufio"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	secretv3 "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshcert/kubectl-meshcert/core/agent"
	"github.com/meshcert/kubectl-meshcert/core/ca"
	"github.com/meshcert/kubectl-meshcert/core/pki"
	"github.com/meshcert/kubectl-meshcert/harness/localcluster"
	"github.com/meshcert/kubectl-meshcert/harness/localcluster/localclustertest"
)

func boundCluster(t testing.TB) *localcluster.Cluster { return localclustertest.Bound(t) }

func TestMain(m *testing.M) { localclustertest.Main(m) }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func ensureNamespace(t testing.TB, name string) {
	localclustertest.EnsureNamespace(t, boundCluster(t), name)
}

// startCA runs a CA against the shared cluster; listen may pin its address.
func startCA(t testing.TB, namespace, listen string) *ca.Server {
	t.Helper()
	ensureNamespace(t, namespace)
	cfg := ca.DefaultConfig()
	cfg.Namespace, cfg.Listen, cfg.MonitoringListen = namespace, listen, "127.0.0.1:0"
	cfg.Logger = quiet()
	cfg.MaxConcurrentSignings = 100000
	srv, err := ca.Start(context.Background(), cfg, boundCluster(t).Config)
	require.NoError(t, err)
	t.Cleanup(srv.Stop)
	return srv
}

type testMesh struct {
	ca       *ca.Server
	caNS     string
	rootFile string
	agent    *agent.Agent
}

// startMesh runs a CA and a node agent wired to it.
func startMesh(t testing.TB, mutate ...func(*agent.Config)) *testMesh {
	t.Helper()
	m := &testMesh{caNS: localclustertest.UniqueName("ca")}
	m.ca = startCA(t, m.caNS, "127.0.0.1:0")
	dir := shortTempDir(t)
	m.rootFile = filepath.Join(dir, "root-cert.pem")
	require.NoError(t, os.WriteFile(m.rootFile, m.ca.RootBundlePEM(), 0o644))
	m.agent = startAgent(t, func(c *agent.Config) {
		c.SocketPath = filepath.Join(dir, "sds.sock")
		c.CAAddress = m.ca.Addr()
		c.CAServerName = "localhost"
		c.CARootFile = m.rootFile
	}, mutate...)
	return m
}

func startAgent(t testing.TB, base func(*agent.Config), mutate ...func(*agent.Config)) *agent.Agent {
	t.Helper()
	cfg := agent.DefaultConfig()
	cfg.MonitoringListen = "127.0.0.1:0"
	cfg.RetryBase, cfg.RetryMax = 100*time.Millisecond, time.Second
	cfg.FilePollInterval = 100 * time.Millisecond
	cfg.Logger = quiet()
	base(&cfg)
	for _, m := range mutate {
		m(&cfg)
	}
	a, err := agent.Start(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(a.Stop)
	return a
}

// shortTempDir keeps Unix socket paths under the 108-byte limit.
func shortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sds")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// workloadToken creates a ServiceAccount and returns a projected token for
// it with the mesh audience.
func workloadToken(t testing.TB, ns, sa, audience string) string {
	t.Helper()
	ensureNamespace(t, ns)
	client := boundCluster(t).Client
	_, err := client.CoreV1().ServiceAccounts(ns).Create(context.Background(),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
	return localclustertest.Token(t, boundCluster(t), ns, sa, audience, nil)
}

func dialSDS(t testing.TB, socket string) secretv3.SecretDiscoveryServiceClient {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return secretv3.NewSecretDiscoveryServiceClient(conn)
}

// envoy is an SDS stream that speaks as Envoy does: node and resource names
// on the first request, then ACK or NACK by version and nonce.
type envoy struct {
	t      testing.TB
	stream grpc.BidiStreamingClient[discovery.DiscoveryRequest, discovery.DiscoveryResponse]
	names  []string
	node   *corev3.Node
	resps  chan *discovery.DiscoveryResponse
	errs   chan error
	last   *discovery.DiscoveryResponse
}

// lastSeen is the response next returned last.
func (e *envoy) lastSeen() *discovery.DiscoveryResponse { return e.last }

func withToken(ctx context.Context, tok string) context.Context {
	if tok == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
}

func openStream(t testing.TB, client secretv3.SecretDiscoveryServiceClient, ctx context.Context, names ...string) *envoy {
	t.Helper()
	stream, err := client.StreamSecrets(ctx)
	require.NoError(t, err)
	e := &envoy{t: t, stream: stream, names: names, node: &corev3.Node{Id: "sidecar~10.0.0.1~" + localclustertest.UniqueName("pod") + ".ns~ns.svc.cluster.local", Cluster: "app"},
		resps: make(chan *discovery.DiscoveryResponse, 16), errs: make(chan error, 1)}
	// A stream the agent refuses at once (a peer past its cap) may end
	// before the first request is sent: Send then says io.EOF, and Recv
	// below carries the agent's status.
	if err := stream.Send(&discovery.DiscoveryRequest{Node: e.node, ResourceNames: names, TypeUrl: agent.SecretTypeURL}); !errors.Is(err, io.EOF) {
		require.NoError(t, err)
	}
	go func() {
		for {
			r, err := stream.Recv()
			if err != nil {
				e.errs <- err
				return
			}
			e.resps <- r
		}
	}()
	return e
}

func (e *envoy) next(within time.Duration) *discovery.DiscoveryResponse {
	e.t.Helper()
	select {
	case r := <-e.resps:
		e.last = r
		return r
	case err := <-e.errs:
		e.t.Fatalf("stream ended: %v", err)
	case <-time.After(within):
		e.t.Fatalf("no SDS push within %s", within)
	}
	return nil
}

// err waits for the stream to fail.
func (e *envoy) err(within time.Duration) error {
	e.t.Helper()
	select {
	case r := <-e.resps:
		e.t.Fatalf("expected the stream to fail, got a response with %d resources", len(r.Resources))
	case err := <-e.errs:
		return err
	case <-time.After(within):
		e.t.Fatalf("the stream neither failed nor answered within %s", within)
	}
	return nil
}

// quietUntil asserts that nothing arrives on the stream, and that it does
// not end, until done reports true: the positive signal that whatever could
// have pushed has run (a counter the agent moves as it handles it).
func (e *envoy) quietUntil(what string, done func() bool) {
	e.t.Helper()
	deadline := time.After(20 * time.Second)
	for !done() {
		select {
		case r := <-e.resps:
			e.t.Fatalf("unexpected push version %s while waiting until %s", r.VersionInfo, what)
		case err := <-e.errs:
			e.t.Fatalf("stream ended while waiting until %s: %v", what, err)
		case <-deadline:
			e.t.Fatalf("not %s within 20s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
	select {
	case r := <-e.resps:
		e.t.Fatalf("unexpected push version %s once %s", r.VersionInfo, what)
	case err := <-e.errs:
		e.t.Fatalf("stream ended once %s: %v", what, err)
	default:
	}
}

// counterAtLeast is a quietUntil signal: series on addr reached want.
func counterAtLeast(t testing.TB, addr, series string, want float64) func() bool {
	return func() bool { return scrape(t, addr, series) >= want }
}

func (e *envoy) ack(r *discovery.DiscoveryResponse) {
	e.t.Helper()
	require.NoError(e.t, e.stream.Send(&discovery.DiscoveryRequest{
		Node: e.node, ResourceNames: e.names, TypeUrl: agent.SecretTypeURL, VersionInfo: r.VersionInfo, ResponseNonce: r.Nonce,
	}))
}

func (e *envoy) nack(r *discovery.DiscoveryResponse, previousVersion, detail string) {
	e.t.Helper()
	require.NoError(e.t, e.stream.Send(&discovery.DiscoveryRequest{
		Node: e.node, ResourceNames: e.names, TypeUrl: agent.SecretTypeURL, VersionInfo: previousVersion, ResponseNonce: r.Nonce,
		ErrorDetail: &status.Status{Code: 3, Message: detail},
	}))
}

// served is a decoded SDS response.
type served struct {
	chain    []*x509.Certificate
	keyPEM   []byte
	roots    []*x509.Certificate
	rootsPEM []byte
}

func decode(t testing.TB, r *discovery.DiscoveryResponse) served {
	t.Helper()
	var s served
	for _, a := range r.Resources {
		require.Equal(t, agent.SecretTypeURL, a.TypeUrl)
		var secret tlsv3.Secret
		require.NoError(t, a.UnmarshalTo(&secret))
		switch secret.Name {
		case agent.ResourceDefault:
			var err error
			s.chain, err = pki.DecodeCertificates(secret.GetTlsCertificate().GetCertificateChain().GetInlineBytes())
			require.NoError(t, err)
			s.keyPEM = secret.GetTlsCertificate().GetPrivateKey().GetInlineBytes()
		case agent.ResourceRootCA:
			s.rootsPEM = secret.GetValidationContext().GetTrustedCa().GetInlineBytes()
			var err error
			s.roots, err = pki.DecodeCertificates(s.rootsPEM)
			require.NoError(t, err)
		default:
			t.Fatalf("unexpected resource %q", secret.Name)
		}
	}
	return s
}

func (s served) id() string { return s.chain[0].URIs[0].String() }

// scrape reads one sample from a /metrics endpoint; missing is 0.
func scrape(t testing.TB, addr, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	scanner := bufio.NewScanner(resp.Body)
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		if value, ok := strings.CutPrefix(scanner.Text(), series+" "); ok {
			v, err := strconv.ParseFloat(value, 64)
			require.NoError(t, err)
			return v
		}
	}
	return 0
}

func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}
