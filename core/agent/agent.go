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
	"strings"
	"sync"
	"sync/atomic"
	"time"

	secretv3 "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshcert/kubectl-meshcert/core/identity"
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

	TrustDomain      string
	WorkloadCertTTL  time.Duration
	KeyAlgorithm     pki.KeyAlgorithm
	Rotation         pki.Rotation
	RetryBase        time.Duration
	RetryMax         time.Duration
	IdleEviction     time.Duration
	FilePollInterval time.Duration
	MonitoringListen string
	// Kube, when set, lets the agent report what it serves each pod in the
	// pod's meshcert.io/sds annotation, and, with NodeName, honour rotate
	// requests on the pods of its node.
	Kube     *rest.Config
	NodeName string

	Logger *slog.Logger
	Now    func() time.Time
}

// DefaultConfig returns the defaults the flags show.
func DefaultConfig() Config {
	return Config{
		SocketPath:       "/var/run/meshcert/sds.sock",
		SocketMode:       0o600,
		CAAddress:        "meshcert-ca.meshcert-system.svc:15012",
		CARootFile:       "/var/run/meshcert/root/root-cert.pem",
		TrustDomain:      identity.DefaultTrustDomain,
		WorkloadCertTTL:  24 * time.Hour,
		KeyAlgorithm:     pki.DefaultKeyAlgorithm,
		Rotation:         pki.DefaultRotation,
		RetryBase:        time.Second,
		RetryMax:         time.Minute,
		IdleEviction:     10 * time.Minute,
		FilePollInterval: 500 * time.Millisecond,
		MonitoringListen: ":15020",
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
	fs.DurationVar(&c.RetryMax, "ca-retry-max", c.RetryMax, "longest delay between CA retries")
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
	if c.Now == nil {
		c.Now = time.Now
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
	ca      CAClient
	rootSrc *rootFile

	grpcServer *grpc.Server
	socket     net.Listener
	httpServer *http.Server
	httpLn     net.Listener

	ready  atomic.Bool
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start checks the configuration, opens the SDS socket and starts serving.
// In sidecar mode a legacy or unusable token file is an error here, so that
// the process exits with the reason.
func Start(ctx context.Context, cfg Config) (*Agent, error) {
	if err := cfg.Complete(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, log: cfg.Logger, metrics: newMetrics(), roots: newRootBundle(cfg.Now)}
	runCtx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	ok := false
	defer func() {
		if !ok {
			a.Stop()
		}
	}()

	switch cfg.Mode() {
	case ModeFileMount:
		a.files = newFileSource(&a.cfg, a.roots, a.metrics, a.log)
		if err := a.files.load(); err != nil {
			a.log.Warn("the mounted certificate is not usable yet; waiting for it", "dir", cfg.CertDir, "error", err)
		}
		a.goRun(func() { a.files.watch(runCtx) })
	default:
		if cfg.Mode() == ModeSidecar {
			if _, _, err := readTokenFile(cfg.TokenFile, cfg.Now()); err != nil {
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
		if a.ca, err = DialCA(cfg.CAAddress, cfg.CAServerName, func() ([]*x509.Certificate, error) {
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
			a.goRun(func() { a.report.run(runCtx) })
		}
		a.goRun(func() { a.watchRootFile(runCtx) })
		a.goRun(func() { a.evictLoop(runCtx) })
	}

	if err := a.listen(); err != nil {
		return nil, err
	}
	a.ready.Store(true)
	ok = true
	a.log.Info("SDS serving", "socket", cfg.SocketPath, "mode", cfg.Mode(), "ca", cfg.CAAddress)
	return a, nil
}

func (a *Agent) goRun(f func()) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		f()
	}()
}

func (a *Agent) listen() error {
	if err := removeStaleSocket(a.cfg.SocketPath); err != nil {
		return err
	}
	ln, err := net.Listen("unix", a.cfg.SocketPath)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.SocketPath, err)
	}
	a.socket = ln
	if err := os.Chmod(a.cfg.SocketPath, a.cfg.SocketMode); err != nil {
		return err
	}
	// SDS requests are tiny and idle connections the common case: small read
	// buffers (write buffers are shared by default).
	a.grpcServer = grpc.NewServer(grpc.ReadBufferSize(4 << 10))
	secretv3.RegisterSecretDiscoveryServiceServer(a.grpcServer, &sdsServer{agent: a, log: a.log})
	a.goRun(func() {
		if err := a.grpcServer.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			a.log.Error("SDS server stopped", "error", err)
		}
	})

	if a.cfg.MonitoringListen == "" {
		return nil
	}
	if a.httpLn, err = net.Listen("tcp", a.cfg.MonitoringListen); err != nil {
		return fmt.Errorf("--monitoring-listen %s: %w", a.cfg.MonitoringListen, err)
	}
	a.httpServer = monitoring.NewServer(a.metrics.registry, a.ready.Load)
	a.goRun(func() {
		if err := a.httpServer.Serve(a.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("monitoring server stopped", "error", err)
		}
	})
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

// Stop stops serving and all renewals. The socket file is removed.
func (a *Agent) Stop() {
	a.ready.Store(false)
	if a.cancel != nil {
		a.cancel()
	}
	if a.grpcServer != nil {
		a.grpcServer.Stop()
	}
	if a.httpServer != nil {
		_ = a.httpServer.Close()
	}
	if a.cache != nil {
		a.cache.close()
	}
	a.wg.Wait()
	if a.ca != nil {
		_ = a.ca.Close()
	}
	if a.socket != nil {
		_ = os.Remove(a.cfg.SocketPath)
	}
}

// Run serves until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	a, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	<-ctx.Done()
	a.Stop()
	return nil
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
		raw, claims, err := readTokenFile(a.cfg.TokenFile, a.cfg.Now())
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
	e := a.cache.entry(id.String())
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
	claims, err := checkToken(raw, a.cfg.Now())
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
	ticker := time.NewTicker(a.cfg.FilePollInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if roots, changed, err := a.rootSrc.load(); err == nil && changed {
				a.log.Info("root bundle file changed", "roots", len(roots))
				a.roots.setFileRoots(roots)
			}
		}
	}
}

func (a *Agent) evictLoop(ctx context.Context) {
	period := min(a.cfg.IdleEviction, time.Minute)
	if period <= 0 {
		return
	}
	ticker := time.NewTicker(period)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if n := a.cache.evictIdle(a.cfg.IdleEviction); n > 0 {
				a.log.Info("evicted idle identities with expired certificates", "count", n)
			}
		}
	}
}

func spiffeURL(id string) *url.URL {
	u, _ := url.Parse(id)
	return u
}
