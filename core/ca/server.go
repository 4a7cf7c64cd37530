// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package ca

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	pb "istio.io/api/security/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/utils/clock"

	"github.com/meshcert/kubectl-meshcert/core/filemount"
	"github.com/meshcert/kubectl-meshcert/core/identity"
	"github.com/meshcert/kubectl-meshcert/core/lifecycle"
	"github.com/meshcert/kubectl-meshcert/core/limit"
	"github.com/meshcert/kubectl-meshcert/core/localreview"
	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/core/monitoring"
	"github.com/meshcert/kubectl-meshcert/core/pki"
	"github.com/meshcert/kubectl-meshcert/core/token"
)

// Config is everything the CA is started with. AddFlags binds it to
// command-line flags; the zero value is not usable, start from
// DefaultConfig.
type Config struct {
	Namespace             string
	Listen                string
	MonitoringListen      string
	TrustDomain           string
	Audiences             []string
	WorkloadCertTTL       time.Duration
	MaxWorkloadCertTTL    time.Duration
	MaxConcurrentSignings int
	// MaxConcurrentAuthentications bounds the calls whose token is being
	// reviewed; signings have their own bound.
	MaxConcurrentAuthentications int
	// MaxConcurrentAuthenticationsPerPeer bounds the token reviews the
	// calls of one source address hold at once, so that one hostile pod
	// cannot take every review slot.
	MaxConcurrentAuthenticationsPerPeer int
	ReviewCacheTTL                      time.Duration
	// TokenVerification is how tokens are authenticated:
	// TokenVerificationReview (a TokenReview per token not cached) or
	// TokenVerificationLocal.
	TokenVerification string
	// TokenReviewTimeout bounds each TokenReview.
	TokenReviewTimeout time.Duration
	// RefusalCacheTTL is how long a token the API server refused is
	// refused again without a TokenReview.
	RefusalCacheTTL time.Duration
	KubeAPIQPS      float32
	KubeAPIBurst    int
	// ServiceName is the CA's Service; its DNS names go into the serving
	// certificate.
	ServiceName string

	LeaseName     string
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
	// Identity names this replica in the leader lease.
	Identity string
	// ReleaseLeaseOnStop hands leadership over at once on a clean stop.
	// Tests turn it off to behave like a crashed replica.
	ReleaseLeaseOnStop bool

	// FileMount runs the file-mount controller on the leader.
	FileMount        bool
	FileMountOptions filemount.Options

	Logger *slog.Logger
	// Clock is what the CA reads the time from; clock.RealClock{} when nil.
	Clock clock.WithTicker
}

// The ways the CA authenticates workload tokens.
const (
	TokenVerificationReview = "tokenreview"
	TokenVerificationLocal  = "local"
)

// DefaultConfig returns the defaults the flags show.
func DefaultConfig() Config {
	return Config{
		Namespace:             mesh.DefaultNamespace,
		Listen:                ":" + strconv.Itoa(mesh.CAPort),
		MonitoringListen:      ":" + strconv.Itoa(mesh.CAMonitoringPort),
		TrustDomain:           identity.DefaultTrustDomain,
		Audiences:             []string{token.DefaultAudience},
		WorkloadCertTTL:       24 * time.Hour,
		MaxWorkloadCertTTL:    90 * 24 * time.Hour,
		MaxConcurrentSignings: 256,
		ReviewCacheTTL:        5 * time.Second,
		TokenVerification:     TokenVerificationReview,

		MaxConcurrentAuthentications:        256,
		MaxConcurrentAuthenticationsPerPeer: 32,
		TokenReviewTimeout:                  5 * time.Second,
		RefusalCacheTTL:                     10 * time.Second,
		KubeAPIQPS:                          0,
		KubeAPIBurst:                        0,
		ServiceName:                         mesh.CAName,
		LeaseName:                           DefaultLeaseName,
		LeaseDuration:                       10 * time.Second,
		RenewDeadline:                       7 * time.Second,
		RetryPeriod:                         2 * time.Second,
		ReleaseLeaseOnStop:                  true,
		FileMountOptions:                    filemount.DefaultOptions(),
	}
}

// AddFlags binds c to flags.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Namespace, "namespace", c.Namespace, "namespace of the CA's Secrets, Service and leader lease")
	fs.StringVar(&c.Listen, "listen", c.Listen, "address of the CSR gRPC server (TLS)")
	fs.StringVar(&c.MonitoringListen, "monitoring-listen", c.MonitoringListen, "address of /metrics, /healthz and /readyz")
	fs.StringVar(&c.TrustDomain, "trust-domain", c.TrustDomain, "SPIFFE trust domain of workload identities")
	fs.StringSliceVar(&c.Audiences, "audience", c.Audiences, "audience the workload tokens must carry; repeat for several")
	fs.DurationVar(&c.WorkloadCertTTL, "workload-cert-ttl", c.WorkloadCertTTL, "lifetime of a workload certificate when the request does not ask for one")
	fs.DurationVar(&c.MaxWorkloadCertTTL, "max-workload-cert-ttl", c.MaxWorkloadCertTTL, "longest workload certificate lifetime; longer requests are clamped to it")
	fs.IntVar(&c.MaxConcurrentSignings, "max-concurrent-signings", c.MaxConcurrentSignings, "CreateCertificate calls served at once; more get ResourceExhausted so that clients back off")
	fs.DurationVar(&c.ReviewCacheTTL, "token-review-cache-ttl", c.ReviewCacheTTL, "how long a successful TokenReview is reused (never past the token's exp); 0 turns the cache off; local verification caches nothing")
	fs.IntVar(&c.MaxConcurrentAuthenticationsPerPeer, "max-concurrent-authentications-per-peer", c.MaxConcurrentAuthenticationsPerPeer, "token reviews the calls of one source address hold at once; more get ResourceExhausted")
	fs.IntVar(&c.MaxConcurrentAuthentications, "max-concurrent-authentications", c.MaxConcurrentAuthentications, "calls whose token is being reviewed at once; more get ResourceExhausted (signings have --max-concurrent-signings)")
	fs.StringVar(&c.TokenVerification, "token-verification", c.TokenVerification, "how workload tokens are authenticated: tokenreview (the API server reviews each) or local (the issuer's keys by OIDC discovery, and the bound service account, pod and node from watches; no TokenReview)")
	fs.DurationVar(&c.TokenReviewTimeout, "token-review-timeout", c.TokenReviewTimeout, "longest wait for one TokenReview; the caller then gets Unavailable and retries")
	fs.DurationVar(&c.RefusalCacheTTL, "token-refusal-cache-ttl", c.RefusalCacheTTL, "how long a token the API server refused is refused again without a TokenReview; 0 turns it off")
	fs.Float32Var(&c.KubeAPIQPS, "kube-api-qps", c.KubeAPIQPS, "client-side rate limit on Kubernetes API calls, TokenReviews included (0: no limit; the API server's priority and fairness still applies)")
	fs.IntVar(&c.KubeAPIBurst, "kube-api-burst", c.KubeAPIBurst, "burst for --kube-api-qps (0: twice the QPS)")
	fs.StringVar(&c.ServiceName, "service-name", c.ServiceName, "the CA's Service name, for the DNS names of its serving certificate")
	fs.StringVar(&c.Identity, "identity", c.Identity, "this replica's name in the leader lease (default: the host name and a random suffix)")
	fs.StringVar(&c.LeaseName, "leader-lease", c.LeaseName, "name of the coordination.k8s.io Lease replicas elect a leader on")
	fs.BoolVar(&c.FileMount, "file-mount", c.FileMount, "write a key/cert Secret meshcert.<sa> per service account, for clusters without trustworthy tokens (leader only)")
	c.FileMountOptions.AddFlags(fs)
}

// Validate checks the configuration and says how to fix it.
func (c *Config) Validate() error {
	var errs []error
	if err := identity.ValidateTrustDomain(c.TrustDomain); err != nil {
		errs = append(errs, fmt.Errorf("--trust-domain: %w", err))
	}
	if err := identity.ValidateNamespace(c.Namespace); err != nil {
		errs = append(errs, fmt.Errorf("--namespace: %w", err))
	}
	if len(c.Audiences) == 0 {
		errs = append(errs, errors.New("--audience: at least one audience is required (the mesh's default is istio-ca)"))
	}
	if c.WorkloadCertTTL <= 0 {
		errs = append(errs, fmt.Errorf("--workload-cert-ttl %s must be positive", c.WorkloadCertTTL))
	}
	if c.MaxWorkloadCertTTL < c.WorkloadCertTTL {
		errs = append(errs, fmt.Errorf("--max-workload-cert-ttl %s is shorter than --workload-cert-ttl %s", c.MaxWorkloadCertTTL, c.WorkloadCertTTL))
	}
	if c.MaxConcurrentSignings < 1 {
		errs = append(errs, fmt.Errorf("--max-concurrent-signings %d must be at least 1", c.MaxConcurrentSignings))
	}
	if c.MaxConcurrentAuthenticationsPerPeer < 1 {
		errs = append(errs, fmt.Errorf("--max-concurrent-authentications-per-peer %d must be at least 1", c.MaxConcurrentAuthenticationsPerPeer))
	}
	if c.MaxConcurrentAuthentications < 1 {
		errs = append(errs, fmt.Errorf("--max-concurrent-authentications %d must be at least 1", c.MaxConcurrentAuthentications))
	}
	if c.TokenVerification != TokenVerificationReview && c.TokenVerification != TokenVerificationLocal {
		errs = append(errs, fmt.Errorf("--token-verification %q: want %s or %s", c.TokenVerification, TokenVerificationReview, TokenVerificationLocal))
	}
	if c.TokenReviewTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--token-review-timeout %s must be positive", c.TokenReviewTimeout))
	}
	if c.RefusalCacheTTL < 0 {
		errs = append(errs, fmt.Errorf("--token-refusal-cache-ttl %s is negative: use 0 to turn it off", c.RefusalCacheTTL))
	}
	if c.ReviewCacheTTL < 0 {
		errs = append(errs, fmt.Errorf("--token-review-cache-ttl %s is negative: use 0 to turn the cache off", c.ReviewCacheTTL))
	}
	if c.FileMount {
		if err := c.FileMountOptions.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.KubeAPIQPS < 0 || c.KubeAPIBurst < 0 {
		errs = append(errs, errors.New("--kube-api-qps and --kube-api-burst must not be negative: use 0 for no limit"))
	}
	return errors.Join(errs...)
}

// Limits on one client connection: its calls at once, and the size of its
// headers (a projected token is 1 to 2 KiB).
const (
	maxStreamsPerConnection = 256
	maxHeaderBytes          = 16 << 10
)

// streamWorkers are goroutines kept to run calls, so that a call reuses a
// stack that a TokenReview and a signature have already grown, rather than
// growing a fresh goroutine's stack again (8 % of the server's CPU in
// BenchmarkCreateCertificate, 3 % with workers). Calls beyond them get
// goroutines of their own, as without workers.
const streamWorkers = 64

// maxRetryDelay is the longest a call refused for want of capacity is told
// to wait: a mass start's backlog is served in turn, and a caller is never
// sent away for long when capacity returns.
const maxRetryDelay = 30 * time.Second

// Server is one CA replica.
type Server struct {
	cfg       Config
	client    kubernetes.Interface
	metrics   *metrics
	log       *slog.Logger
	service   *certificateService
	publisher *rootPublisher
	fileMount *filemount.Controller
	source    Source
	lock      resourcelock.Interface

	grpcServer *grpc.Server
	grpcLn     net.Listener
	httpServer *http.Server
	httpLn     net.Listener

	servingMu   sync.Mutex
	serving     *tls.Certificate
	servingRoot *x509.Certificate

	leader atomic.Bool
	ready  atomic.Bool
	// leadFailed carries the reason a leadership term failed to Run.
	leadFailed chan error

	// localReview verifies tokens with --token-verification=local.
	localReview *localreview.Verifier

	running chan struct{}
	// Background is set by Start: Stop, Done and Err.
	*lifecycle.Background
}

// New loads the authority (creating the root on first start), checks the
// leader election, and opens the gRPC and monitoring listeners. Nothing is
// served until Run.
func New(ctx context.Context, cfg Config, kube *rest.Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if cfg.Identity == "" {
		host, _ := os.Hostname()
		cfg.Identity = host + "-" + rand.String(6)
	}
	s := &Server{cfg: cfg, metrics: newMetrics(), log: cfg.Logger.With("replica", cfg.Identity),
		leadFailed: make(chan error, 1), running: make(chan struct{})}

	kube = rest.CopyConfig(kube)
	s.metrics.kubeQPSLimit.Set(float64(cfg.KubeAPIQPS))
	if cfg.KubeAPIQPS > 0 {
		burst := cfg.KubeAPIBurst
		if burst == 0 {
			burst = int(2 * cfg.KubeAPIQPS)
		}
		kube.RateLimiter = observedRateLimiter{flowcontrol.NewTokenBucketRateLimiter(cfg.KubeAPIQPS, burst), s.metrics}
	} else {
		kube.QPS, kube.Burst = -1, 0
	}
	// A TokenReview per CSR is the CA's most frequent call: protobuf costs
	// both sides less CPU than JSON. OIDC discovery and the metadata
	// informers of local verification keep JSON.
	protobuf := rest.CopyConfig(kube)
	protobuf.ContentType = runtime.ContentTypeProtobuf
	protobuf.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	client, err := kubernetes.NewForConfig(protobuf)
	if err != nil {
		return nil, err
	}
	s.client = client

	authority, source, err := LoadAuthority(ctx, client, cfg.Namespace, cfg.Clock.Now)
	if err != nil {
		return nil, fmt.Errorf("load the CA: %w", err)
	}
	s.source = source
	authn := &authenticator{
		reviews: client.AuthenticationV1().TokenReviews(), audiences: cfg.Audiences, trustDomain: cfg.TrustDomain,
		cacheTTL: cfg.ReviewCacheTTL, reviewTimeout: cfg.TokenReviewTimeout, refusalTTL: cfg.RefusalCacheTTL,
		reviewSlots: make(chan struct{}, cfg.MaxConcurrentAuthentications), perPeer: limit.PerKey[string]{Max: cfg.MaxConcurrentAuthenticationsPerPeer},
		retries: limit.Pacer{MaxDelay: maxRetryDelay, MinRate: cfg.MaxConcurrentAuthentications, Now: cfg.Clock.Now},
		now:     cfg.Clock.Now, metrics: s.metrics,
	}
	if cfg.TokenVerification == TokenVerificationLocal {
		md, err := metadata.NewForConfig(kube)
		if err != nil {
			return nil, err
		}
		discovery, err := kubernetes.NewForConfig(kube)
		if err != nil {
			return nil, err
		}
		s.localReview = localreview.New(discovery.CoreV1().RESTClient(), md, localreview.Options{
			Secrets: client.AuthenticationV1().TokenReviews(), Now: cfg.Clock.Now})
		authn.local = s.localReview
		// Verifying again costs less than a cache hit could save, and sees
		// a deleted pod as soon as the watch does.
		authn.cacheTTL = 0
	}
	s.service = &certificateService{
		authn:       authn,
		defaultTTL:  cfg.WorkloadCertTTL,
		maxTTL:      cfg.MaxWorkloadCertTTL,
		slots:       make(chan struct{}, cfg.MaxConcurrentSignings),
		refusalLogs: rate.Sometimes{First: 10, Interval: 100 * time.Millisecond},
		metrics:     s.metrics,
		log:         s.log,
	}
	s.service.authority.Store(authority)
	s.metrics.inflightLimit.Set(float64(cfg.MaxConcurrentSignings))
	s.observeRoots(authority)
	s.publisher = newRootPublisher(client, pki.EncodeCertificates(authority.Roots()...), s.metrics, s.log)
	if cfg.FileMount {
		opts := cfg.FileMountOptions
		opts.TrustDomain, opts.Clock, opts.Logger = cfg.TrustDomain, cfg.Clock, s.log.With("controller", "file-mount")
		if s.fileMount, err = filemount.New(client, authority, opts, s.metrics.registry); err != nil {
			return nil, err
		}
	}
	s.lock = &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: cfg.LeaseName, Namespace: cfg.Namespace},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: cfg.Identity},
	}
	// A replica whose election cannot be built would serve but never lead:
	// refuse to start instead.
	if _, err := s.newElector(); err != nil {
		return nil, fmt.Errorf("leader election: %w", err)
	}
	if err := s.listen(); err != nil {
		s.release()
		return nil, err
	}
	return s, nil
}

// Run serves until ctx ends or a part of the CA fails, and returns the
// reason of the failure (nil when ctx ended it). The gRPC and monitoring
// servers, the leader election and the root Secret watch run under one
// errgroup: when one fails the others stop, and Run returns once all have.
func (s *Server) Run(ctx context.Context) error {
	defer s.release()
	if s.localReview != nil {
		if err := s.localReview.Start(ctx); err != nil {
			return fmt.Errorf("--token-verification=local: %w", err)
		}
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := s.grpcServer.Serve(s.grpcLn); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("gRPC server on %s: %w", s.cfg.Listen, err)
		}
		return nil
	})
	g.Go(func() error {
		if err := s.httpServer.Serve(s.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("monitoring server on %s: %w", s.cfg.MonitoringListen, err)
		}
		return nil
	})
	g.Go(func() error { return s.elect(ctx) })
	g.Go(func() error { s.followRootSecret(ctx); return nil })
	g.Go(func() error {
		select {
		case err := <-s.leadFailed:
			return err
		case <-ctx.Done():
			return nil
		}
	})
	g.Go(func() error {
		<-ctx.Done()
		s.ready.Store(false)
		s.grpcServer.Stop()
		_ = s.httpServer.Close()
		return nil
	})
	s.ready.Store(true)
	close(s.running)
	s.log.Info("CA serving", "listen", s.Addr(), "monitoring", s.MonitoringAddr(), "source", s.source,
		"root", pki.Fingerprint(s.Authority().SigningRoot()), "audiences", s.cfg.Audiences, "trustDomain", s.cfg.TrustDomain)
	err := g.Wait()
	if err != nil {
		s.log.Error("CA stopped", "error", err)
	}
	return err
}

// release closes the listeners New opened.
func (s *Server) release() {
	for _, ln := range []net.Listener{s.grpcLn, s.httpLn} {
		if ln != nil {
			_ = ln.Close()
		}
	}
}

// Start is New, then Run in the background until ctx ends or Stop is
// called. It returns once the CA serves requests.
func Start(ctx context.Context, cfg Config, kube *rest.Config) (*Server, error) {
	s, err := New(ctx, cfg, kube)
	if err != nil {
		return nil, err
	}
	s.Background = lifecycle.Start(ctx, s.Run, s.running)
	return s, nil
}

func (s *Server) listen() error {
	var err error
	if s.grpcLn, err = net.Listen("tcp", s.cfg.Listen); err != nil {
		return fmt.Errorf("--listen %s: %w", s.cfg.Listen, err)
	}
	if s.httpLn, err = net.Listen("tcp", s.cfg.MonitoringListen); err != nil {
		return fmt.Errorf("--monitoring-listen %s: %w", s.cfg.MonitoringListen, err)
	}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.servingCertificate}
	s.grpcServer = grpc.NewServer(grpc.Creds(credentials.NewTLS(tlsConfig)), grpc.MaxRecvMsgSize(4*MaxCSRSize),
		// One client's connection cannot hold more calls than a node
		// agent needs, nor send headers larger than a token needs.
		grpc.MaxConcurrentStreams(maxStreamsPerConnection), grpc.MaxHeaderListSize(maxHeaderBytes),
		grpc.NumStreamWorkers(streamWorkers))
	pb.RegisterIstioCertificateServiceServer(s.grpcServer, s.service)
	s.httpServer = monitoring.NewServer(s.metrics.registry, s.ready.Load)
	return nil
}

// servingCertificate issues the CA's TLS certificate from its own
// authority, and reissues it past half its life or after a root change.
func (s *Server) servingCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	s.servingMu.Lock()
	defer s.servingMu.Unlock()
	authority := s.service.authority.Load()
	now := s.cfg.Clock.Now()
	if s.serving != nil && s.servingRoot.Equal(authority.SigningRoot()) {
		leaf := s.serving.Leaf
		if now.Before(leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)) {
			return s.serving, nil
		}
	}
	key, err := pki.GenerateKey(pki.ECDSAP256)
	if err != nil {
		return nil, err
	}
	svc, ns := s.cfg.ServiceName, s.cfg.Namespace
	names := []string{svc + "." + ns + ".svc", svc, svc + "." + ns, svc + "." + ns + ".svc.cluster.local", "localhost"}
	chain, err := authority.SignServing(key.Public(), names, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, 30*24*time.Hour)
	if err != nil {
		return nil, err
	}
	cert := &tls.Certificate{PrivateKey: key, Leaf: chain[0]}
	for _, c := range chain[:len(chain)-1] {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	s.serving, s.servingRoot = cert, authority.SigningRoot()
	return cert, nil
}

func (s *Server) observeRoots(a *Authority) {
	s.metrics.rootExpiry.Reset()
	for _, r := range a.Roots() {
		s.metrics.rootExpiry.WithLabelValues(pki.Fingerprint(r)).Set(float64(r.NotAfter.Unix()))
	}
}

func (s *Server) newElector() (*leaderelection.LeaderElector, error) {
	return leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            s.lock,
		LeaseDuration:   s.cfg.LeaseDuration,
		RenewDeadline:   s.cfg.RenewDeadline,
		RetryPeriod:     s.cfg.RetryPeriod,
		ReleaseOnCancel: s.cfg.ReleaseLeaseOnStop,
		Name:            s.cfg.LeaseName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: s.lead,
			OnStoppedLeading: func() {
				s.leader.Store(false)
				s.metrics.leader.Set(0)
			},
		},
	})
}

// elect contends for the leader lease until ctx ends, and runs the
// leader-only work while it holds it. A lost lease is contended for again.
func (s *Server) elect(ctx context.Context) error {
	for ctx.Err() == nil {
		elector, err := s.newElector()
		if err != nil {
			return fmt.Errorf("leader election: %w", err)
		}
		elector.Run(ctx)
	}
	return nil
}

// lead runs one leadership term: root publication and, when configured,
// the file-mount controller, each with state made for this term. A part
// that fails ends the CA with the reason.
func (s *Server) lead(ctx context.Context) {
	s.leader.Store(true)
	s.metrics.leader.Set(1)
	s.log.Info("leading: publishing the root bundle", "fileMount", s.fileMount != nil)
	g, ctx := errgroup.WithContext(ctx)
	if s.fileMount != nil {
		g.Go(func() error { return s.fileMount.Run(ctx) })
	}
	g.Go(func() error { return s.publisher.run(ctx) })
	if err := g.Wait(); err != nil && ctx.Err() == nil {
		select {
		case s.leadFailed <- fmt.Errorf("leader work: %w", err):
		default:
		}
	}
}

// Run serves until ctx ends or a part fails; see (*Server).Run.
func Run(ctx context.Context, cfg Config, kube *rest.Config) error {
	s, err := New(ctx, cfg, kube)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}

// Addr is the gRPC listener's address.
func (s *Server) Addr() string { return s.grpcLn.Addr().String() }

// MonitoringAddr is the monitoring listener's address.
func (s *Server) MonitoringAddr() string { return s.httpLn.Addr().String() }

// IsLeader reports whether this replica holds the lease.
func (s *Server) IsLeader() bool { return s.leader.Load() }

// Source says whether the CA signs with a plugged-in or a self-signed root.
func (s *Server) Source() Source { return s.source }

// Authority is the authority the CA signs with.
func (s *Server) Authority() *Authority { return s.service.authority.Load() }

// RootBundlePEM is the trusted root bundle clients verify the CA with.
func (s *Server) RootBundlePEM() []byte { return pki.EncodeCertificates(s.Authority().Roots()...) }

// followRootSecret reloads the authority when the CA Secret changes, as a
// root rotation's phases do. Every replica follows it.
func (s *Server) followRootSecret(ctx context.Context) {
	if s.source != SourceSelfSigned {
		return
	}
	factory := informers.NewSharedInformerFactoryWithOptions(s.client, 10*time.Minute, informers.WithNamespace(s.cfg.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", RootSecretName).String()
		}))
	informer := factory.Core().V1().Secrets().Informer()
	_, _ = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj any) {
			if secret, ok := obj.(*corev1.Secret); ok {
				s.reload(secret)
			}
		},
	})
	factory.Start(ctx.Done())
	<-ctx.Done()
	factory.Shutdown()
}

func (s *Server) reload(secret *corev1.Secret) {
	next, err := authorityFromRootSecret(secret, s.cfg.Clock.Now)
	if err != nil {
		s.log.Error("the CA Secret changed but cannot be used; still signing with the previous root", "error", err)
		return
	}
	current := s.Authority()
	if next.SigningCertificate().Equal(current.SigningCertificate()) && RootFingerprintsEqual(next.Roots(), current.Roots()) {
		return
	}
	s.service.authority.Store(next)
	s.observeRoots(next)
	s.publisher.SetBundle(pki.EncodeCertificates(next.Roots()...))
	if s.fileMount != nil {
		s.fileMount.SetAuthority(next)
	}
	s.log.Info("CA roots reloaded", "phase", phaseOf(secret), "signingRoot", pki.Fingerprint(next.SigningRoot()), "bundle", len(next.Roots()))
}

// RootFingerprintsEqual reports whether two bundles hold the same roots in
// the same order.
func RootFingerprintsEqual(a, b []*x509.Certificate) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

// observedRateLimiter records how long Kubernetes API calls wait for the
// client-side rate limiter, so that a cap on TokenReviews is never silent.
type observedRateLimiter struct {
	flowcontrol.RateLimiter
	metrics *metrics
}

func (r observedRateLimiter) Wait(ctx context.Context) error {
	start := time.Now()
	err := r.RateLimiter.Wait(ctx)
	r.metrics.kubeThrottleWait.Observe(time.Since(start).Seconds())
	return err
}
