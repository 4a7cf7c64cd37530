// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package agent is the mesh's node agent. It obtains a certificate for each
// workload from the CA, presenting the workload's own projected
// service-account token, serves key, chain and root bundle to Envoy over SDS
// on a Unix socket, and renews them before they expire. Where the cluster
// cannot issue trustworthy tokens it serves mounted key/cert files instead.
//
// The agent never imports the CA: the two meet only over Istio's CSR API.
package agent

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	secretv3 "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"github.com/meshcert/kubectl-meshcert/core/caclient"
	"github.com/meshcert/kubectl-meshcert/core/identity"
	"github.com/meshcert/kubectl-meshcert/core/lifecycle"
	"github.com/meshcert/kubectl-meshcert/core/limit"
	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/core/monitoring"
	"github.com/meshcert/kubectl-meshcert/core/pki"
	"github.com/meshcert/kubectl-meshcert/core/token"
)

// Config is everything the agent is started with.
type Config struct {
	// SocketPath is the SDS Unix socket.
	SocketPath string
	SocketMode os.FileMode
	// CAAddress and CARootFile reach and verify the CA. CAServerName is the
	// name its serving certificate must carry.
	CAAddress    string
	CAServerName string
	CARootFile   string
	// TokenFile switches to sidecar mode: one identity, from this projected
	// token, re-read for every CSR.
	TokenFile string
	// CertDir switches to file-mount mode: serve key.pem, cert-chain.pem and
	// root-cert.pem from a mounted Secret.
	CertDir string

	TrustDomain     string
	WorkloadCertTTL time.Duration
	KeyAlgorithm    pki.KeyAlgorithm
	Rotation        pki.Rotation
	RetryBase       time.Duration
	RetryMax        time.Duration
	IdleEviction    time.Duration
	// MaxIdentities caps the identities the agent holds; a stream for a new
	// identity beyond it gets ResourceExhausted. 0: no cap.
	MaxIdentities int
	// MaxStreamsPerPeer caps the SDS calls the processes of one UID hold at
	// once (the socket's peer credentials tell them); 0: no cap.
	MaxStreamsPerPeer int
	FilePollInterval  time.Duration
	MonitoringListen  string
	// Kube, when set, lets the agent report what it serves each pod in the
	// pod's meshcert.io/sds annotation, and, with NodeName, honour rotate
	// requests on the pods of its node.
	Kube     *rest.Config
	NodeName string

	Logger *slog.Logger
	// Clock drives every time the agent reads, waits for or ticks on;
	// clock.RealClock{} when nil. Tests inject a fake one.
	Clock clock.WithTickerAndDelayedExecution
}

// DefaultConfig returns the defaults the flags show.
func DefaultConfig() Config {
	return Config{
		SocketPath:      mesh.SocketPath,
		SocketMode:      0o600,
		CAAddress:       mesh.CAAddress(mesh.DefaultNamespace),
		CARootFile:      "/var/run/meshcert/root/root-cert.pem",
		TrustDomain:     identity.DefaultTrustDomain,
		WorkloadCertTTL: 24 * time.Hour,
		KeyAlgorithm:    pki.DefaultKeyAlgorithm,
		Rotation:        pki.DefaultRotation,
		RetryBase:       time.Second,
		RetryMax:        time.Minute,
		IdleEviction:    10 * time.Minute,
		MaxIdentities:   1024,
		// Envoy holds one or two streams per pod, and a node runs 110 pods
		// by default: this leaves room for all of them under one UID.
		MaxStreamsPerPeer: 1024,
		FilePollInterval:  500 * time.Millisecond,
		MonitoringListen:  ":" + strconv.Itoa(mesh.AgentMonitoringPort),
	}
}

// AddFlags binds c to flags.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.SocketPath, "sds-socket", c.SocketPath, "Unix socket Envoy reaches SDS on")
	fs.Var((*octalMode)(&c.SocketMode), "socket-mode", "file mode of the SDS socket, in octal")
	fs.StringVar(&c.CAAddress, "ca-address", c.CAAddress, "host:port of the mesh CA")
	fs.StringVar(&c.CAServerName, "ca-server-name", c.CAServerName, "name the CA's serving certificate must carry (default: the host of --ca-address)")
	fs.StringVar(&c.CARootFile, "ca-root-file", c.CARootFile, "root bundle to verify the CA with, such as the mounted meshcert-root-cert ConfigMap")
	fs.StringVar(&c.TokenFile, "token-file", c.TokenFile, "sidecar mode: serve one identity, from this projected service-account token")
	fs.StringVar(&c.CertDir, "cert-dir", c.CertDir, "file-mount mode: serve key.pem, cert-chain.pem and root-cert.pem from this mounted Secret")
	fs.StringVar(&c.TrustDomain, "trust-domain", c.TrustDomain, "SPIFFE trust domain")
	fs.DurationVar(&c.WorkloadCertTTL, "workload-cert-ttl", c.WorkloadCertTTL, "certificate lifetime to ask the CA for")
	fs.Var((*keyAlgorithmValue)(&c.KeyAlgorithm), "key-algorithm", "workload key algorithm: ECDSA-P256, RSA-2048 or RSA-3072")
	fs.Float64Var(&c.Rotation.Ratio, "rotation-ratio", c.Rotation.Ratio, "renew when this fraction of the lifetime remains")
	fs.Float64Var(&c.Rotation.Jitter, "rotation-jitter", c.Rotation.Jitter, "random spread of the rotation ratio, ±")
	fs.DurationVar(&c.RetryBase, "ca-retry-base", c.RetryBase, "first delay before retrying a failed CA request; doubles up to --ca-retry-max")
	fs.DurationVar(&c.RetryMax, "ca-retry-max", c.RetryMax, "longest delay between CA retries, a delay the CA asks for included")
	fs.IntVar(&c.MaxStreamsPerPeer, "max-streams-per-peer", c.MaxStreamsPerPeer, "SDS calls the workloads of one UID may hold at once (told by the socket's peer credentials); 0: no cap")
	fs.IntVar(&c.MaxIdentities, "max-identities", c.MaxIdentities, "identities the agent holds at most (one per service account with a pod on the node); 0: no cap")
	fs.DurationVar(&c.IdleEviction, "idle-eviction", c.IdleEviction, "forget an identity no stream used for this long once its certificate has expired")
	fs.StringVar(&c.MonitoringListen, "monitoring-listen", c.MonitoringListen, "address of /metrics, /healthz and /readyz")
	fs.StringVar(&c.NodeName, "node-name", c.NodeName, "this node's name (from the downward API), to watch its pods for rotate requests")
}

// Complete fills in what follows from other settings.
func (c *Config) Complete() error {
	if c.CAServerName == "" {
		host, _, err := net.SplitHostPort(c.CAAddress)
		if err != nil {
			host = c.CAAddress
		}
		c.CAServerName = host
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return nil
}

// Validate checks the configuration and says how to fix it.
func (c *Config) Validate() error {
	var errs []error
	if c.SocketPath == "" {
		errs = append(errs, errors.New("--sds-socket is required"))
	}
	if c.SocketMode&^0o777 != 0 || c.SocketMode == 0 {
		errs = append(errs, fmt.Errorf("--socket-mode %04o is not a permission mode such as 0600", c.SocketMode))
	}
	if c.MaxStreamsPerPeer < 0 {
		errs = append(errs, fmt.Errorf("--max-streams-per-peer %d must be 0 (no cap) or more", c.MaxStreamsPerPeer))
	}
	if c.TokenFile != "" && c.CertDir != "" {
		errs = append(errs, errors.New("--token-file (sidecar mode) and --cert-dir (file-mount mode) exclude each other: pick one"))
	}
	if c.CertDir == "" {
		if c.CAAddress == "" {
			errs = append(errs, errors.New("--ca-address is required outside file-mount mode"))
		}
		if c.CARootFile == "" {
			errs = append(errs, errors.New("--ca-root-file is required to verify the CA"))
		}
	}
	if err := identity.ValidateTrustDomain(c.TrustDomain); err != nil {
		errs = append(errs, fmt.Errorf("--trust-domain: %w", err))
	}
	if c.WorkloadCertTTL <= 0 {
		errs = append(errs, fmt.Errorf("--workload-cert-ttl %s must be positive", c.WorkloadCertTTL))
	}
	if err := c.Rotation.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("--rotation-ratio/--rotation-jitter: %w", err))
	}
	if c.RetryBase <= 0 || c.RetryMax < c.RetryBase {
		errs = append(errs, fmt.Errorf("--ca-retry-base %s must be positive and no longer than --ca-retry-max %s", c.RetryBase, c.RetryMax))
	}
	return errors.Join(errs...)
}

// Mode says how the agent gets the certificates it serves.
type Mode string

// The agent's modes: node serves every workload of a node from its
// projected token; sidecar serves one identity from a token file;
// file-mount serves a mounted key/cert Secret.
const (
	ModeNode      Mode = "node"
	ModeSidecar   Mode = "sidecar"
	ModeFileMount Mode = "file-mount"
)

// Mode reports the mode c selects.
func (c *Config) Mode() Mode {
	switch {
	case c.CertDir != "":
		return ModeFileMount
	case c.TokenFile != "":
		return ModeSidecar
	}
	return ModeNode
}

// Agent is a running node agent.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	roots   *rootBundle
	cache   *secretCache
	files   *fileSource
	report  *reporter
	ca      caclient.Client
	rootSrc *rootFile

	grpcServer *grpc.Server
	socket     net.Listener
	httpServer *http.Server
	httpLn     net.Listener

	ready   atomic.Bool
	running chan struct{}
	// Background is set by Start: Stop, Done and Err.
	*lifecycle.Background
}

// New checks the configuration, loads what the agent serves from, dials the
// CA and opens the SDS socket and the monitoring listener. Nothing runs
// until Run. In sidecar mode a legacy or unusable token file is an error
// here, so that the process exits with the reason.
func New(cfg Config) (*Agent, error) {
	if err := cfg.Complete(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, log: cfg.Logger, metrics: newMetrics(), roots: newRootBundle(cfg.Clock.Now),
		running: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			a.release()
		}
	}()

	switch cfg.Mode() {
	case ModeFileMount:
		a.files = newFileSource(&a.cfg, a.roots, a.metrics, a.log)
		if err := a.files.load(); err != nil {
			a.log.Warn("the mounted certificate is not usable yet; waiting for it", "dir", cfg.CertDir, "error", err)
		}
	default:
		if cfg.Mode() == ModeSidecar {
			if _, _, err := readTokenFile(cfg.TokenFile, cfg.Clock.Now()); err != nil {
				return nil, err
			}
		}
		a.rootSrc = &rootFile{path: cfg.CARootFile}
		roots, _, err := a.rootSrc.load()
		if err != nil {
			return nil, fmt.Errorf("%w: mount the meshcert-root-cert ConfigMap there, or pass --ca-root-file", err)
		}
		a.roots.setFileRoots(roots)
		rootSrc := a.rootSrc
		if a.ca, err = caclient.Dial(cfg.CAAddress, cfg.CAServerName, func() ([]*x509.Certificate, error) {
			roots, _, err := rootSrc.load()
			return roots, err
		}); err != nil {
			return nil, err
		}
		a.cache = newSecretCache(&a.cfg, a.ca, a.roots, a.metrics, a.log)
		if cfg.Kube != nil {
			client, err := kubernetes.NewForConfig(cfg.Kube)
			if err != nil {
				return nil, err
			}
			a.report = newReporter(a, client)
			a.cache.onInstall = a.report.changed
			a.roots.subscribe(rootsChanged{a.report})
		}
	}
	if err := a.listen(); err != nil {
		return nil, err
	}
	ok = true
	return a, nil
}

// Run serves until ctx ends or a part of the agent fails, and returns the
// reason of the failure (nil when ctx ended it). Every goroutine runs under
// one errgroup: when one fails, the others stop, and Run returns only once
// all of them have, with the socket file removed.
func (a *Agent) Run(ctx context.Context) error {
	defer a.release()
	g, ctx := errgroup.WithContext(ctx)
	loop := func(f func(context.Context)) { g.Go(func() error { f(ctx); return nil }) }
	if a.files != nil {
		loop(a.files.watch)
	}
	if a.cache != nil {
		loop(a.watchRootFile)
		loop(a.evictLoop)
	}
	if a.report != nil {
		loop(a.report.run)
	}
	g.Go(func() error {
		if err := a.grpcServer.Serve(a.socket); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("SDS server on %s: %w", a.cfg.SocketPath, err)
		}
		return nil
	})
	if a.httpServer != nil {
		g.Go(func() error {
			if err := a.httpServer.Serve(a.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("monitoring server on %s: %w", a.cfg.MonitoringListen, err)
			}
			return nil
		})
	}
	g.Go(func() error {
		<-ctx.Done()
		a.ready.Store(false)
		a.grpcServer.Stop()
		if a.httpServer != nil {
			_ = a.httpServer.Close()
		}
		if a.cache != nil {
			a.cache.close()
		}
		return nil
	})
	a.ready.Store(true)
	close(a.running)
	a.log.Info("SDS serving", "socket", a.cfg.SocketPath, "mode", a.cfg.Mode(), "ca", a.cfg.CAAddress)
	err := g.Wait()
	if err != nil {
		a.log.Error("agent stopped", "error", err)
	}
	return err
}

// release closes what New opened; Run calls it when it ends.
func (a *Agent) release() {
	if a.ca != nil {
		_ = a.ca.Close()
	}
	if a.httpLn != nil {
		_ = a.httpLn.Close()
	}
	if a.socket != nil {
		_ = a.socket.Close()
		_ = os.Remove(a.cfg.SocketPath)
	}
}

// Start is New, then Run in the background until ctx ends or Stop is
// called. It returns once the agent serves.
func Start(ctx context.Context, cfg Config) (*Agent, error) {
	a, err := New(cfg)
	if err != nil {
		return nil, err
	}
	a.Background = lifecycle.Start(ctx, a.Run, a.running)
	return a, nil
}

func (a *Agent) listen() error {
	if err := checkSocketDir(a.cfg.SocketPath); err != nil {
		return err
	}
	if err := removeStaleSocket(a.cfg.SocketPath); err != nil {
		return err
	}
	ln, err := net.Listen("unix", a.cfg.SocketPath)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.SocketPath, err)
	}
	a.socket = peerListener{ln}
	if err := os.Chmod(a.cfg.SocketPath, a.cfg.SocketMode); err != nil {
		return err
	}
	limits := &peerLimits{byUID: limit.PerKey[int]{Max: a.cfg.MaxStreamsPerPeer}, refused: a.metrics.peerLimited}
	// SDS requests are tiny and idle connections the common case: small read
	// buffers (write buffers are shared by default).
	a.grpcServer = grpc.NewServer(grpc.ReadBufferSize(4<<10),
		grpc.ChainStreamInterceptor(limits.streamInterceptor), grpc.ChainUnaryInterceptor(limits.unaryInterceptor))
	secretv3.RegisterSecretDiscoveryServiceServer(a.grpcServer, &sdsServer{agent: a, log: a.log})
	if a.cfg.MonitoringListen == "" {
		return nil
	}
	if a.httpLn, err = net.Listen("tcp", a.cfg.MonitoringListen); err != nil {
		return fmt.Errorf("--monitoring-listen %s: %w", a.cfg.MonitoringListen, err)
	}
	a.httpServer = monitoring.NewServer(a.metrics.registry, a.ready.Load)
	return nil
}

// removeStaleSocket removes a socket file left by a dead agent, and refuses
// to touch one another agent still answers on.
func removeStaleSocket(path string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket: remove it or choose another --sds-socket", path)
	}
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		conn.Close()
		return fmt.Errorf("another process is serving on %s: stop it, or choose another --sds-socket", path)
	}
	return os.Remove(path)
}

// Run serves until ctx ends; see (*Agent).Run.
func Run(ctx context.Context, cfg Config) error {
	a, err := New(cfg)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// MonitoringAddr is the monitoring listener's address.
func (a *Agent) MonitoringAddr() string { return a.httpLn.Addr().String() }

// SocketPath is the SDS socket.
func (a *Agent) SocketPath() string { return a.cfg.SocketPath }

// RotateIdentity makes the agent renew the certificate of a SPIFFE ID now,
// without disturbing the streams that serve it. It reports whether the
// agent holds that identity.
func (a *Agent) RotateIdentity(spiffeID string) bool {
	if a.cache == nil {
		return false
	}
	e := a.cache.lookup(spiffeID)
	if e == nil {
		return false
	}
	e.requestRotation()
	return true
}

// resolve finds where the calling stream's certificate comes from. In node
// mode that is the identity the caller's token names, after the CA has
// accepted the token.
func (a *Agent) resolve(ctx context.Context) (certSource, error) {
	switch a.cfg.Mode() {
	case ModeFileMount:
		return a.files, nil
	case ModeSidecar:
		raw, claims, err := readTokenFile(a.cfg.TokenFile, a.cfg.Clock.Now())
		if err != nil {
			return nil, status.Error(codes.Unauthenticated, err.Error())
		}
		return a.admit(ctx, raw, claims)
	}
	raw, claims, err := a.callerToken(ctx)
	if err != nil {
		return nil, err
	}
	return a.admit(ctx, raw, claims)
}

func (a *Agent) admit(ctx context.Context, raw string, claims *token.Claims) (certSource, error) {
	id, err := identity.New(a.cfg.TrustDomain, claims.Namespace, claims.ServiceAccount)
	if err != nil {
		return nil, status.Errorf(codes.Unauthenticated, "the token names no valid service account: %v", err)
	}
	e, created, err := a.cache.lookupOrCreate(ctx, id.String())
	if err != nil {
		return nil, err
	}
	if e == nil {
		defer created()
		if a.cache.full() {
			return nil, status.Errorf(codes.ResourceExhausted,
				"the agent serves its limit of %d identities (--max-identities): retry later, or raise the limit", a.cfg.MaxIdentities)
		}
		fresh := a.cache.newEntry(id.String())
		if err := fresh.admit(ctx, raw, claims.Expiry); err != nil {
			a.cache.discard(fresh)
			st := status.Convert(err)
			return nil, status.Errorf(st.Code(), "the CA refused a certificate for %s: %s", id, st.Message())
		}
		var adopted bool
		if e, adopted = a.cache.adopt(fresh); adopted {
			a.report.served(claims.Namespace, claims.Pod, id.String())
			return e, nil
		}
		a.cache.discard(fresh) // adopted outside lookupOrCreate meanwhile (only tests do so)
	}
	if err := e.admit(ctx, raw, claims.Expiry); err != nil {
		st := status.Convert(err)
		return nil, status.Errorf(st.Code(), "the CA refused a certificate for %s: %s", id, st.Message())
	}
	a.report.served(claims.Namespace, claims.Pod, id.String())
	return e, nil
}

// checkCaller refuses a node-mode stream whose token is missing or
// untrustworthy, even when it asks only for the root bundle.
func (a *Agent) checkCaller(ctx context.Context) error {
	if a.cfg.Mode() != ModeNode {
		return nil
	}
	_, _, err := a.callerToken(ctx)
	return err
}

// callerToken reads and checks the token a node-mode stream presents.
func (a *Agent) callerToken(ctx context.Context) (string, *token.Claims, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	var raw string
	for _, v := range md.Get("authorization") {
		if after, ok := strings.CutPrefix(v, "Bearer "); ok {
			raw = strings.TrimSpace(after)
		}
	}
	if raw == "" {
		// Istio 1.3's Envoy sent the token in a binary header.
		if v := md.Get(IstioCredentialsHeader); len(v) > 0 {
			raw = strings.TrimSpace(v[0])
		}
	}
	if raw == "" {
		return "", nil, status.Errorf(codes.Unauthenticated,
			"no workload token on the stream: send the projected service-account token as \"authorization: Bearer <jwt>\" (or %s), or use the file-mount path", IstioCredentialsHeader)
	}
	claims, err := checkToken(raw, a.cfg.Clock.Now())
	if err != nil {
		return "", nil, status.Error(codes.Unauthenticated, err.Error())
	}
	return raw, claims, nil
}

// rootsChanged re-reports every pod when the root bundle changes.
type rootsChanged struct{ r *reporter }

func (w rootsChanged) wake() { w.r.changed("") }

// IstioCredentialsHeader is the binary metadata key Istio 1.3's Envoy sent
// the workload token in.
const IstioCredentialsHeader = "istio_sds_credentials_header-bin"

// checkToken accepts only trustworthy, unexpired tokens, and explains a
// refusal: the missing claims, and what to use instead.
func checkToken(raw string, now time.Time) (*token.Claims, error) {
	claims, err := token.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("the workload token is not a service-account JWT: %v", err)
	}
	if err := token.Classify(claims, token.Options{Now: now}).Err(); err != nil {
		return nil, fmt.Errorf("refusing the workload token: %w", err)
	}
	return claims, nil
}

// readTokenFile reads a projected token. The kubelet rewrites the file as it
// refreshes the token, so it is read afresh every time.
func readTokenFile(path string, now time.Time) (string, *token.Claims, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", nil, fmt.Errorf("read --token-file: %w", err)
	}
	raw := strings.TrimSpace(string(data))
	claims, err := checkToken(raw, now)
	if err != nil {
		return "", nil, fmt.Errorf("--token-file %s: %w", path, err)
	}
	return raw, claims, nil
}

// waitRoots waits for the first root bundle.
func (a *Agent) waitRoots(ctx context.Context) error {
	select {
	case <-a.roots.ready:
		return nil
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}

// watchRootFile follows the mounted root bundle, so that a root rotation's
// new bundle reaches ROOTCA streams without a restart.
func (a *Agent) watchRootFile(ctx context.Context) {
	every(ctx, a.cfg.Clock, a.cfg.FilePollInterval, func() {
		if roots, changed, err := a.rootSrc.load(); err == nil && changed {
			a.log.Info("root bundle file changed", "roots", len(roots))
			a.roots.setFileRoots(roots)
		}
	})
}

func (a *Agent) evictLoop(ctx context.Context) {
	period := min(a.cfg.IdleEviction, time.Minute)
	if period <= 0 {
		return
	}
	every(ctx, a.cfg.Clock, period, func() {
		if n := a.cache.evictIdle(a.cfg.IdleEviction); n > 0 {
			a.log.Info("evicted idle identities with expired certificates", "count", n)
		}
	})
}

// every calls f every period of clk until ctx ends.
func every(ctx context.Context, clk clock.WithTicker, period time.Duration, f func()) {
	ticker := clk.NewTicker(period)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C():
			f()
		}
	}
}

func spiffeURL(id string) *url.URL {
	u, _ := url.Parse(id)
	return u
}
