// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package filemount

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	listerscorev1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/meshcert/kubectl-meshcert/core/identity"
	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/core/pki"
)

// Options configure the controller.
type Options struct {
	// AllNamespaces serves every namespace, not only those labelled
	// meshcert.io/file-mount=enabled.
	AllNamespaces bool
	// Exclude lists namespaces never served.
	Exclude     []string
	TrustDomain string
	// TTL is the certificate lifetime.
	TTL time.Duration
	// RenewRatio renews when this fraction of the lifetime remains, spread
	// by ±RenewJitter so that many Secrets do not renew in the same second.
	RenewRatio  float64
	RenewJitter float64
	// WriteQPS and WriteBurst limit the controller's API writes.
	WriteQPS   float64
	WriteBurst int
	// Resync is how often every service account is looked at again.
	Resync time.Duration
	// Propagation bounds how long kubelets take to bring a changed Secret
	// into the pods that mount it (their sync period, one minute by
	// default, plus jitter). Each write stamps the time by which its
	// content has reached every pod, and root rotation waits for it.
	Propagation time.Duration
	// ForbiddenRetry is how often a namespace that opted in, but where the
	// CA may not keep Secrets, is tried again.
	ForbiddenRetry time.Duration
	// AfterSync, when set, hears of each look at a service account (its
	// namespace/name key), done: tests wait on it rather than on time.
	AfterSync func(key string)
	// Clock drives the controller's time and its queue's delays;
	// clock.RealClock{} when nil.
	Clock  clock.WithTicker
	Logger *slog.Logger
}

// DefaultOptions returns the defaults the flags show.
func DefaultOptions() Options {
	return Options{
		Exclude:     []string{metav1.NamespaceSystem},
		TrustDomain: identity.DefaultTrustDomain,
		TTL:         24 * time.Hour,
		RenewRatio:  0.5,
		RenewJitter: 0.1,
		WriteQPS:    50,
		WriteBurst:  100,
		Resync:      time.Minute,
		Propagation: 90 * time.Second,

		ForbiddenRetry: 10 * time.Second,
	}
}

// AddFlags binds o to flags.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.AllNamespaces, "file-mount-all-namespaces", o.AllNamespaces, "write key/cert Secrets in every namespace, not only those labelled "+LabelNamespaceOptIn+"="+OptInValue)
	fs.StringSliceVar(&o.Exclude, "file-mount-exclude", o.Exclude, "namespaces that never get key/cert Secrets")
	fs.DurationVar(&o.TTL, "file-mount-cert-ttl", o.TTL, "lifetime of the certificates in key/cert Secrets")
	fs.Float64Var(&o.RenewRatio, "file-mount-renew-ratio", o.RenewRatio, "renew a Secret when this fraction of its certificate's life remains")
	fs.Float64Var(&o.RenewJitter, "file-mount-renew-jitter", o.RenewJitter, "random spread of the renew ratio, ±")
	fs.Float64Var(&o.WriteQPS, "file-mount-write-qps", o.WriteQPS, "most Secret writes per second")
	fs.IntVar(&o.WriteBurst, "file-mount-write-burst", o.WriteBurst, "burst of Secret writes")
	fs.DurationVar(&o.Propagation, "file-mount-propagation", o.Propagation, "how long kubelets may take to bring a changed Secret into pods (their --sync-frequency plus margin); root rotation waits this long after each Secret write")
}

// Validate checks o.
func (o *Options) Validate() error {
	var errs []error
	if o.TTL <= 0 {
		errs = append(errs, fmt.Errorf("--file-mount-cert-ttl %s must be positive", o.TTL))
	}
	if err := (pki.Rotation{Ratio: o.RenewRatio, Jitter: o.RenewJitter}).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("--file-mount-renew-ratio/--file-mount-renew-jitter: %w", err))
	}
	if o.Propagation < 0 {
		errs = append(errs, fmt.Errorf("--file-mount-propagation %s must not be negative", o.Propagation))
	}
	if o.WriteQPS <= 0 || o.WriteBurst < 1 {
		errs = append(errs, errors.New("--file-mount-write-qps must be positive and --file-mount-write-burst at least 1"))
	}
	return errors.Join(errs...)
}

// Refresh reasons, the label of meshcert_filemount_refreshes_total.
const (
	ReasonCreated     = "created"
	ReasonExpiring    = "expiring"
	ReasonRootChanged = "root-changed"
	ReasonCorrupt     = "corrupt"
	ReasonRequested   = "requested"
)

// Controller keeps one key/cert Secret per service account in the served
// namespaces.
type Controller struct {
	opts      Options
	client    kubernetes.Interface
	authority atomic.Pointer[authorityBox]
	limiter   *rate.Limiter
	log       *slog.Logger
	metrics   *metrics

	// current is the leadership term at work, once its caches have synced.
	current atomic.Pointer[term]
}

// term is the state of one run of the controller, one leadership term:
// made when Run starts and dropped when it ends, so that nothing a running
// goroutine reads is ever reassigned.
type term struct {
	*Controller
	ctx        context.Context
	recorder   record.EventRecorder
	namespaces listerscorev1.NamespaceLister
	accounts   listerscorev1.ServiceAccountLister
	watches    secretWatches
	queue      workqueue.TypedRateLimitingInterface[string]
}

type authorityBox struct{ Authority }

// New returns a controller that signs with authority. Its metrics register
// with reg.
func New(client kubernetes.Interface, authority Authority, opts Options, reg prometheus.Registerer) (*Controller, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Resync == 0 {
		opts.Resync = time.Minute
	}
	if opts.ForbiddenRetry == 0 {
		opts.ForbiddenRetry = 10 * time.Second
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	c := &Controller{opts: opts, client: client, limiter: rate.NewLimiter(rate.Limit(opts.WriteQPS), opts.WriteBurst), log: opts.Logger, metrics: m}
	c.authority.Store(&authorityBox{authority})
	if err := reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "meshcert_filemount_secrets_managed",
		Help: "Key/cert Secrets the file-mount controller manages.",
	}, func() float64 { return float64(c.Managed()) })); err != nil {
		return nil, err
	}
	if err := reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "meshcert_filemount_namespaces_forbidden",
		Help: "Namespaces that opted in to the file-mount path where the CA may not keep Secrets: run kubectl meshcert file-mount enable NAMESPACE.",
	}, func() float64 { return float64(c.Forbidden()) })); err != nil {
		return nil, err
	}
	return c, nil
}

// SetAuthority switches to another authority, such as after a root
// rotation. Secrets whose root bundle differs are reissued.
func (c *Controller) SetAuthority(a Authority) {
	c.authority.Store(&authorityBox{a})
	if t := c.current.Load(); t != nil {
		t.enqueueAll()
	}
}

// Run serves until ctx ends. Run it on the elected leader only.
func (c *Controller) Run(ctx context.Context) error {
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	t := &term{Controller: c, ctx: ctx, recorder: broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: mesh.CAName}),
		watches: secretWatches{byNamespace: map[string]*secretWatch{}}}
	defer t.stopWatches()

	factory := informers.NewSharedInformerFactory(c.client, c.opts.Resync)
	nsInformer := factory.Core().V1().Namespaces()
	saInformer := factory.Core().V1().ServiceAccounts()
	t.namespaces, t.accounts = nsInformer.Lister(), saInformer.Lister()
	t.queue = workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "filemount", Clock: c.opts.Clock})
	defer t.queue.ShutDown()

	if _, err := saInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    t.enqueueObject,
		UpdateFunc: func(_, obj any) { t.enqueueObject(obj) },
	}); err != nil {
		return err
	}
	if _, err := nsInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		// A ServiceAccount event can arrive before its new namespace's.
		AddFunc: func(obj any) {
			if ns, ok := obj.(*corev1.Namespace); ok && c.served(ns) {
				t.enqueueNamespace(ns.Name)
			}
		},
		UpdateFunc: func(old, obj any) {
			ns := obj.(*corev1.Namespace)
			if was, is := c.served(old.(*corev1.Namespace)), c.served(ns); was && !is {
				t.forget(ns.Name)
			} else if is && !was {
				t.enqueueNamespace(ns.Name)
			}
		},
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if ns, ok := obj.(*corev1.Namespace); ok {
				t.forget(ns.Name)
			}
		},
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), nsInformer.Informer().HasSynced, saInformer.Informer().HasSynced) {
		return ctx.Err()
	}
	c.current.Store(t)
	defer c.current.CompareAndSwap(t, nil)
	c.log.Info("file-mount controller running", "allNamespaces", c.opts.AllNamespaces, "exclude", c.opts.Exclude)
	var workers sync.WaitGroup
	for range 2 {
		workers.Go(func() {
			for t.processNext(ctx) {
			}
		})
	}
	<-ctx.Done()
	t.queue.ShutDown()
	workers.Wait()
	return nil
}

func (c *term) enqueueObject(obj any) {
	if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
		c.queue.Add(key)
	}
}

func (c *term) enqueueSecret(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return
	}
	if sa, ok := ServiceAccountOf(s.Name); ok {
		c.queue.Add(s.Namespace + "/" + sa)
	}
}

func (c *term) enqueueNamespace(ns string) {
	accounts, _ := c.accounts.ServiceAccounts(ns).List(labels.Everything())
	for _, sa := range accounts {
		c.queue.Add(sa.Namespace + "/" + sa.Name)
	}
}

func (c *term) enqueueAll() {
	accounts, _ := c.accounts.List(labels.Everything())
	for _, sa := range accounts {
		c.queue.Add(sa.Namespace + "/" + sa.Name)
	}
}

func (c *Controller) served(ns *corev1.Namespace) bool {
	if slices.Contains(c.opts.Exclude, ns.Name) || ns.Status.Phase == corev1.NamespaceTerminating {
		return false
	}
	return c.opts.AllNamespaces || ns.Labels[LabelNamespaceOptIn] == OptInValue
}

func (c *term) processNext(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	requeueAfter, err := c.sync(ctx, key)
	if errors.Is(err, errWatchSyncing) {
		c.queue.Forget(key)
		return true // looked at again once the watch has synced
	}
	if c.opts.AfterSync != nil {
		c.opts.AfterSync(key)
	}
	switch {
	case err != nil:
		c.log.Warn("file-mount sync failed; will retry", "serviceAccount", key, "error", err)
		c.queue.AddRateLimited(key)
	default:
		c.queue.Forget(key)
		if requeueAfter > 0 {
			c.queue.AddAfter(key, requeueAfter)
		}
	}
	return true
}

// errWatchSyncing defers a sync until its namespace's Secret watch has
// synced, which then looks at every service account of the namespace.
var errWatchSyncing = errors.New("the namespace's Secret watch has not synced yet")

// sync brings one service account's Secret up to date, and returns when to
// look again.
func (c *term) sync(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	namespace, err := c.namespaces.Get(ns)
	if apierrors.IsNotFound(err) || (err == nil && !c.served(namespace)) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	sa, err := c.accounts.ServiceAccounts(ns).Get(name)
	if apierrors.IsNotFound(err) {
		// The garbage collector deletes the Secret with its owner.
		c.metrics.notAfter.DeleteLabelValues(ns, SecretName(name))
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	id, err := identity.New(c.opts.TrustDomain, ns, name)
	if err != nil {
		return 0, nil // a name the SPIFFE rules refuse cannot get a certificate
	}

	watch := c.secretsIn(namespace)
	if !watch.synced() {
		if refusal := watch.forbidden.Load(); refusal != nil {
			c.log.Warn("file-mount Secrets refused", "namespace", ns, "error", notPermitted(ns, *refusal))
			c.retryRefused(namespace, watch)
			return c.opts.ForbiddenRetry, nil
		}
		return 0, errWatchSyncing
	}
	existing, err := watch.lister.Get(SecretName(name))
	if apierrors.IsNotFound(err) {
		// The informer sees only our type; a foreign Secret of that name
		// shows up as a conflict on create.
		return c.write(ctx, sa, id, nil, ReasonCreated)
	}
	if err != nil {
		return 0, err
	}
	if !Owned(existing) {
		c.foreign(sa, existing)
		return 0, nil
	}

	now := c.opts.Clock.Now()
	box := c.authority.Load()
	reason := ""
	contents, parseErr := Parse(existing, id, now)
	switch {
	case parseErr != nil:
		reason = ReasonCorrupt
		c.log.Info("repairing a key/cert Secret", "namespace", ns, "secret", existing.Name, "problem", parseErr)
	case existing.Annotations[AnnotationRootFingerprints] != RootFingerprints(box.Roots()):
		reason = ReasonRootChanged
	case !chainsTo(contents.Chain, box.Roots()[0], now):
		// The CA signs with another root now (a root rotation's activate).
		reason = ReasonRootChanged
	case existing.Annotations[AnnotationRotate] != "" && existing.Annotations[AnnotationRotate] != existing.Annotations[AnnotationRotated]:
		reason = ReasonRequested
	default:
		renewAt, err := time.Parse(time.RFC3339, existing.Annotations[AnnotationRenewAt])
		if err != nil {
			reason = ReasonCorrupt
		} else if !now.Before(renewAt) {
			reason = ReasonExpiring
		} else {
			if notAfter, err := time.Parse(time.RFC3339, existing.Annotations[AnnotationNotAfter]); err == nil {
				c.metrics.notAfter.WithLabelValues(ns, existing.Name).Set(float64(notAfter.Unix()))
			}
			return renewAt.Sub(now) + time.Second, nil
		}
	}
	return c.write(ctx, sa, id, existing, reason)
}

// write issues a new key and certificate and creates or updates the Secret.
func (c *term) write(ctx context.Context, sa *corev1.ServiceAccount, id identity.ID, existing *corev1.Secret, reason string) (time.Duration, error) {
	if err := c.limiter.Wait(ctx); err != nil {
		return 0, err
	}
	secret, renewAt, err := c.issue(sa, id, existing)
	if err != nil {
		c.recorder.Eventf(sa, corev1.EventTypeWarning, "CertificateIssueFailed", "issuing the key/cert Secret %s failed: %v", SecretName(sa.Name), err)
		return 0, err
	}
	secrets := c.client.CoreV1().Secrets(sa.Namespace)
	if existing == nil {
		_, err = secrets.Create(ctx, secret, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			current, getErr := secrets.Get(ctx, secret.Name, metav1.GetOptions{})
			if getErr == nil && !Owned(current) {
				c.foreign(sa, current)
				return 0, nil
			}
			return 0, fmt.Errorf("secret %s/%s appeared concurrently; will look again", sa.Namespace, secret.Name)
		}
		c.metrics.writes.WithLabelValues("create").Inc()
	} else {
		_, err = secrets.Update(ctx, secret, metav1.UpdateOptions{})
		c.metrics.writes.WithLabelValues("update").Inc()
	}
	if apierrors.IsForbidden(err) {
		return 0, notPermitted(sa.Namespace, err)
	}
	if err != nil {
		return 0, err
	}
	c.metrics.refreshes.WithLabelValues(reason).Inc()
	c.metrics.notAfter.WithLabelValues(sa.Namespace, secret.Name).Set(float64(mustTime(secret.Annotations[AnnotationNotAfter]).Unix()))
	c.recorder.Eventf(sa, corev1.EventTypeNormal, "CertificateIssued", "wrote key/cert Secret %s for %s (%s), valid until %s",
		secret.Name, id, reason, secret.Annotations[AnnotationNotAfter])
	return renewAt.Sub(c.opts.Clock.Now()) + time.Second, nil
}

func (c *Controller) issue(sa *corev1.ServiceAccount, id identity.ID, existing *corev1.Secret) (*corev1.Secret, time.Time, error) {
	box := c.authority.Load()
	key, err := pki.GenerateKey(pki.DefaultKeyAlgorithm)
	if err != nil {
		return nil, time.Time{}, err
	}
	chain, err := box.SignWorkload(key.Public(), id, c.opts.TTL)
	if err != nil {
		return nil, time.Time{}, err
	}
	keyPEM, err := pki.EncodePrivateKey(key)
	if err != nil {
		return nil, time.Time{}, err
	}
	leaf := chain[0]
	issued := c.opts.Clock.Now()
	// The lifetime counts from issue: the CA backdates notBefore.
	renewAt := pki.Rotation{Ratio: c.opts.RenewRatio, Jitter: c.opts.RenewJitter}.Time(later(leaf.NotBefore, issued), leaf.NotAfter).Truncate(time.Second)

	secret := &corev1.Secret{}
	if existing != nil {
		secret = existing.DeepCopy()
	}
	secret.Name, secret.Namespace, secret.Type = SecretName(sa.Name), sa.Namespace, SecretType
	if secret.Labels == nil {
		secret.Labels = map[string]string{}
	}
	secret.Labels[LabelManagedBy] = ManagedByValue
	secret.Labels[LabelServiceAccount] = sa.Name
	if secret.Annotations == nil {
		secret.Annotations = map[string]string{}
	}
	secret.Annotations[AnnotationSPIFFEID] = id.String()
	secret.Annotations[AnnotationNotAfter] = leaf.NotAfter.UTC().Format(time.RFC3339)
	secret.Annotations[AnnotationRenewAt] = renewAt.UTC().Format(time.RFC3339)
	secret.Annotations[AnnotationRootFingerprints] = RootFingerprints(box.Roots())
	// Rounded up to the second, as the annotation holds no fraction.
	secret.Annotations[AnnotationDeliveredBy] = issued.Add(c.opts.Propagation + time.Second).Truncate(time.Second).UTC().Format(time.RFC3339)
	if v := secret.Annotations[AnnotationRotate]; v != "" {
		secret.Annotations[AnnotationRotated] = v
	}
	secret.OwnerReferences = []metav1.OwnerReference{ownerReference(sa)}
	secret.Data = map[string][]byte{
		mesh.FilePrivateKey: keyPEM,
		mesh.FileCertChain:  pki.EncodeCertificates(chain[:len(chain)-1]...),
		mesh.FileRootCert:   pki.EncodeCertificates(box.Roots()...),
	}
	return secret, renewAt, nil
}

// foreign reports a Secret of our name that we do not own. It is never
// touched.
func (c *term) foreign(sa *corev1.ServiceAccount, s *corev1.Secret) {
	c.metrics.foreign.Inc()
	c.recorder.Eventf(sa, corev1.EventTypeWarning, "ForeignSecret",
		"Secret %s exists but is not managed by meshcert (type %q, label %s=%q): it is left alone; rename or delete it so that the file-mount path can write its key and certificate",
		s.Name, s.Type, LabelManagedBy, s.Labels[LabelManagedBy])
}

func chainsTo(chain []*x509.Certificate, root *x509.Certificate, now time.Time) bool {
	_, err := pki.Verify(chain, []*x509.Certificate{root}, now)
	return err == nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func mustTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339, s)
	return t
}

// HasSynced reports whether the controller's caches have synced and it is
// at work.
func (c *Controller) HasSynced() bool { return c.current.Load() != nil }

// Managed reports how many Secrets the controller manages now.
func (c *Controller) Managed() int {
	t := c.current.Load()
	if t == nil {
		return 0
	}
	managed, _ := t.managed()
	return managed
}

// Forbidden reports how many served namespaces the CA may not keep
// Secrets in, because none bound its file-mount role there.
func (c *Controller) Forbidden() int {
	t := c.current.Load()
	if t == nil {
		return 0
	}
	_, forbidden := t.managed()
	return forbidden
}
