// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package filemount_test

import (
	"context"
	"crypto/x509"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/meshcert/kubectl-meshcert/core/ca"
	"github.com/meshcert/kubectl-meshcert/core/filemount"
	"github.com/meshcert/kubectl-meshcert/core/identity"
	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/core/pki"
	"github.com/meshcert/kubectl-meshcert/core/pki/pkitest"
	"github.com/meshcert/kubectl-meshcert/harness/localcluster"
	"github.com/meshcert/kubectl-meshcert/harness/localcluster/localclustertest"
)

func clusterFor(t testing.TB, p localcluster.Profile) *localcluster.Cluster {
	return localclustertest.Cluster(t, p)
}

func TestMain(m *testing.M) { localclustertest.Main(m) }

func newAuthority(t testing.TB) *ca.Authority {
	t.Helper()
	root := pkitest.NewRoot(t)
	a, err := ca.NewAuthority(root.Key, root.Chain(), root.Chain(), nil)
	require.NoError(t, err)
	return a
}

type running struct {
	*filemount.Controller
	registry *prometheus.Registry
	stop     func()

	mu     sync.Mutex
	synced map[string]int // looks at each service account, by key
}

func (r *running) syncs(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.synced[key]
}

// waitSyncs waits until the controller has looked at the service account
// ns/name at least n times: the positive signal that it had its chance to
// act, before a test asserts that it did not.
func (r *running) waitSyncs(t testing.TB, ns, name string, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return r.syncs(ns+"/"+name) >= n }, 30*time.Second, 10*time.Millisecond,
		"the controller looked at %s/%s fewer than %d times", ns, name, n)
}

func (r *running) writes() float64 {
	return counterSum(r.registry, "meshcert_filemount_api_writes_total", "")
}

// waitCounter waits until a counter reaches at least want. The controller
// counts a write once the API server has answered it, so a test can read the
// new Secret a moment before the count goes up.
func (r *running) waitCounter(t testing.TB, name, label string, want float64) {
	t.Helper()
	require.Eventually(t, func() bool { return counterSum(r.registry, name, label) >= want }, 5*time.Second, 10*time.Millisecond,
		"%s{%s} stayed below %v", name, label, want)
}

// counterSum adds up a counter's samples, or only those with a label of
// value label when label is set.
func counterSum(reg *prometheus.Registry, name, label string) float64 {
	families, _ := reg.Gather()
	total := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			match := label == ""
			for _, l := range m.GetLabel() {
				match = match || l.GetValue() == label
			}
			if match {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

func startController(t testing.TB, client kubernetes.Interface, authority filemount.Authority, mutate ...func(*filemount.Options)) *running {
	t.Helper()
	opts := filemount.DefaultOptions()
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, m := range mutate {
		m(&opts)
	}
	r := &running{synced: map[string]int{}}
	opts.AfterSync = func(key string) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.synced[key]++
	}
	reg := prometheus.NewRegistry()
	c, err := filemount.New(client, authority, opts, reg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Run(ctx)
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	require.NoError(t, wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return c.HasSynced(), nil
	}), "the controller's caches did not sync")
	r.Controller, r.registry, r.stop = c, reg, stop
	return r
}

// servingOnlyNewNamespaces keeps a controller off every namespace that exists
// now: earlier tests leave opted-in namespaces whose Secrets another test's
// authority signed, and a controller rewriting those would move the counters
// a test reads.
func servingOnlyNewNamespaces(t testing.TB, client kubernetes.Interface) func(*filemount.Options) {
	t.Helper()
	existing, err := client.CoreV1().Namespaces().List(t.Context(), metav1.ListOptions{})
	require.NoError(t, err)
	return func(o *filemount.Options) {
		for _, ns := range existing.Items {
			o.Exclude = append(o.Exclude, ns.Name)
		}
	}
}

func namespace(t testing.TB, client kubernetes.Interface, optIn bool) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: localclustertest.UniqueName("fm")}}
	if optIn {
		ns.Labels = map[string]string{filemount.LabelNamespaceOptIn: filemount.OptInValue}
	}
	_, err := client.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{})
	require.NoError(t, err)
	return ns.Name
}

func serviceAccount(t testing.TB, client kubernetes.Interface, ns, name string) *corev1.ServiceAccount {
	t.Helper()
	sa, err := client.CoreV1().ServiceAccounts(ns).Create(context.Background(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	require.NoError(t, err)
	return sa
}

// waitSecret waits until the Secret exists and satisfies ok.
func waitSecret(t testing.TB, client kubernetes.Interface, ns, name string, within time.Duration, ok func(*corev1.Secret) bool) (*corev1.Secret, time.Duration) {
	t.Helper()
	start := time.Now()
	var got *corev1.Secret
	err := wait.PollUntilContextTimeout(context.Background(), 25*time.Millisecond, within, true, func(ctx context.Context) (bool, error) {
		s, err := client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		got = s
		return ok == nil || ok(s), nil
	})
	require.NoError(t, err, "Secret %s/%s not as expected within %s", ns, name, within)
	return got, time.Since(start)
}

func serial(t testing.TB, s *corev1.Secret) string {
	t.Helper()
	chain, err := pki.DecodeCertificates(s.Data[mesh.FileCertChain])
	require.NoError(t, err)
	return pki.Serial(chain[0])
}

func TestSecretLifecycle(t *testing.T) {
	for _, profile := range localcluster.Profiles {
		t.Run(string(profile), func(t *testing.T) {
			client := clusterFor(t, profile).Client
			authority := newAuthority(t)
			r := startController(t, client, authority)
			ns := namespace(t, client, true)
			name := filemount.SecretName("cart")

			sa := serviceAccount(t, client, ns, "cart")
			secret, took := waitSecret(t, client, ns, name, 2*time.Second, nil)
			t.Logf("Secret created %s after its ServiceAccount", took.Round(time.Millisecond))
			require.Equal(t, filemount.SecretType, secret.Type)
			require.True(t, filemount.Owned(secret))
			want := identity.ID{TrustDomain: "cluster.local", Namespace: ns, ServiceAccount: "cart"}
			contents, err := filemount.Parse(secret, want, time.Now())
			require.NoError(t, err)
			root, err := pki.Verify(contents.Chain, []*x509.Certificate{authority.SigningRoot()}, time.Now())
			require.NoError(t, err)
			require.True(t, root.Equal(authority.SigningRoot()))
			require.Equal(t, want.String(), secret.Annotations[filemount.AnnotationSPIFFEID])
			require.Equal(t, filemount.RootFingerprints(authority.Roots()), secret.Annotations[filemount.AnnotationRootFingerprints])
			require.Equal(t, contents.Chain[0].NotAfter.UTC().Format(time.RFC3339), secret.Annotations[filemount.AnnotationNotAfter])
			require.Equal(t, []metav1.OwnerReference{{APIVersion: "v1", Kind: "ServiceAccount", Name: "cart", UID: sa.UID}}, secret.OwnerReferences)

			first := serial(t, secret)
			require.NoError(t, client.CoreV1().Secrets(ns).Delete(t.Context(), name, metav1.DeleteOptions{}))
			recreated, took := waitSecret(t, client, ns, name, 2*time.Second, nil)
			t.Logf("deleted Secret recreated after %s", took.Round(time.Millisecond))
			require.NotEqual(t, first, serial(t, recreated))

			beforeCorruption := serial(t, recreated)
			recreated.Data[mesh.FileCertChain] = []byte("-----BEGIN CERTIFICATE-----\ngarbage")
			_, err = client.CoreV1().Secrets(ns).Update(t.Context(), recreated, metav1.UpdateOptions{})
			require.NoError(t, err)
			repaired, _ := waitSecret(t, client, ns, name, 2*time.Second, func(s *corev1.Secret) bool {
				_, err := filemount.Parse(s, want, time.Now())
				return err == nil
			})
			require.NotEqual(t, beforeCorruption, serial(t, repaired))
			r.waitCounter(t, "meshcert_filemount_refreshes_total", filemount.ReasonCorrupt, 1)
			require.Equal(t, float64(1), counterSum(r.registry, "meshcert_filemount_refreshes_total", filemount.ReasonCorrupt))

			require.NoError(t, client.CoreV1().ServiceAccounts(ns).Delete(t.Context(), "cart", metav1.DeleteOptions{}))
			require.NoError(t, wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
				_, err := client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
				return apierrors.IsNotFound(err), nil
			}), "the Secret must go with its ServiceAccount")
		})
	}
}

// A Secret of the managed name that meshcert does not own is never
// written, whatever its type: an Opaque one, and one of meshcert's own type
// without the managed-by label.
func TestForeignSecretLeftAlone(t *testing.T) {
	client := clusterFor(t, localcluster.ProfileLegacy).Client
	startController(t, client, newAuthority(t))
	for name, kind := range map[string]corev1.SecretType{"opaque": corev1.SecretTypeOpaque, "of meshcert's type": filemount.SecretType} {
		t.Run(name, func(t *testing.T) {
			ns := namespace(t, client, true)
			foreign := &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: filemount.SecretName("billing"), Namespace: ns},
				Type:       kind,
				Data:       map[string][]byte{"password": []byte("hunter2")},
			}
			_, err := client.CoreV1().Secrets(ns).Create(t.Context(), foreign, metav1.CreateOptions{})
			require.NoError(t, err)
			serviceAccount(t, client, ns, "billing")

			var event corev1.Event
			require.NoError(t, wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
				events, err := client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("reason", "ForeignSecret").String()})
				if err != nil || len(events.Items) == 0 {
					return false, err
				}
				event = events.Items[0]
				return true, nil
			}), "a Warning Event must say why the Secret is not written")
			require.Equal(t, corev1.EventTypeWarning, event.Type)
			require.Equal(t, "ServiceAccount", event.InvolvedObject.Kind)
			require.Equal(t, "billing", event.InvolvedObject.Name)
			require.Contains(t, event.Message, "is not managed by meshcert")

			got, err := client.CoreV1().Secrets(ns).Get(t.Context(), foreign.Name, metav1.GetOptions{})
			require.NoError(t, err)
			require.Equal(t, kind, got.Type)
			require.Equal(t, foreign.Data, got.Data)
		})
	}
}

func TestNamespaceOptIn(t *testing.T) {
	client := clusterFor(t, localcluster.ProfileLegacy).Client
	r := startController(t, client, newAuthority(t))
	ns := namespace(t, client, false)
	serviceAccount(t, client, ns, "ignored")
	r.waitSyncs(t, ns, "ignored", 1)
	_, err := client.CoreV1().Secrets(ns).Get(t.Context(), filemount.SecretName("ignored"), metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err), "a namespace that is not opted in gets no Secret")

	nsObj, err := client.CoreV1().Namespaces().Get(t.Context(), ns, metav1.GetOptions{})
	require.NoError(t, err)
	nsObj.Labels = map[string]string{filemount.LabelNamespaceOptIn: filemount.OptInValue}
	_, err = client.CoreV1().Namespaces().Update(t.Context(), nsObj, metav1.UpdateOptions{})
	require.NoError(t, err)
	waitSecret(t, client, ns, filemount.SecretName("ignored"), 2*time.Second, nil)

	all := startController(t, client, newAuthority(t), func(o *filemount.Options) {
		o.AllNamespaces = true
		o.Exclude = []string{"default", metav1.NamespaceSystem}
	})
	all.waitSyncs(t, "default", "default", 1)
	_, err = client.CoreV1().Secrets("default").Get(t.Context(), filemount.SecretName("default"), metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err), "an excluded namespace gets no Secret")
}

func TestShortTTLRefreshedOnTime(t *testing.T) {
	client := clusterFor(t, localcluster.ProfileLegacy).Client
	startController(t, client, newAuthority(t), func(o *filemount.Options) { o.TTL = 6 * time.Second })
	ns := namespace(t, client, true)
	serviceAccount(t, client, ns, "short")
	first, _ := waitSecret(t, client, ns, filemount.SecretName("short"), 2*time.Second, nil)
	renewAt, err := time.Parse(time.RFC3339, first.Annotations[filemount.AnnotationRenewAt])
	require.NoError(t, err)
	notAfter, err := time.Parse(time.RFC3339, first.Annotations[filemount.AnnotationNotAfter])
	require.NoError(t, err)
	require.True(t, renewAt.Before(notAfter))
	deliveredBy, err := time.Parse(time.RFC3339, first.Annotations[filemount.AnnotationDeliveredBy])
	require.NoError(t, err)
	written := time.Now()
	require.WithinRange(t, deliveredBy, written.Add(filemount.DefaultOptions().Propagation-3*time.Second), written.Add(filemount.DefaultOptions().Propagation+2*time.Second),
		"the kubelets' delivery deadline is the write time plus --file-mount-propagation")

	second, _ := waitSecret(t, client, ns, filemount.SecretName("short"), 8*time.Second, func(s *corev1.Secret) bool {
		return serial(t, s) != serial(t, first)
	})
	refreshed := time.Now()
	require.True(t, refreshed.Before(notAfter), "refreshed at %s, after the old certificate expired at %s", refreshed, notAfter)
	t.Logf("refreshed %s before the old certificate expired (renew-at %s)", notAfter.Sub(refreshed).Round(time.Millisecond), renewAt.Format(time.TimeOnly))
	require.NotEqual(t, first.Annotations[filemount.AnnotationRenewAt], second.Annotations[filemount.AnnotationRenewAt])
}

func TestRootChangeReissuesEverySecret(t *testing.T) {
	client := clusterFor(t, localcluster.ProfileBound).Client
	r := startController(t, client, newAuthority(t), servingOnlyNewNamespaces(t, client))
	ns := namespace(t, client, true)
	const n = 5
	for i := range n {
		serviceAccount(t, client, ns, "app-"+string(rune('a'+i)))
	}
	for i := range n {
		waitSecret(t, client, ns, filemount.SecretName("app-"+string(rune('a'+i))), 3*time.Second, nil)
	}

	next := newAuthority(t)
	r.SetAuthority(next)
	for i := range n {
		s, _ := waitSecret(t, client, ns, filemount.SecretName("app-"+string(rune('a'+i))), 5*time.Second, func(s *corev1.Secret) bool {
			return s.Annotations[filemount.AnnotationRootFingerprints] == filemount.RootFingerprints(next.Roots())
		})
		chain, err := pki.DecodeCertificates(s.Data[mesh.FileCertChain])
		require.NoError(t, err)
		_, err = pki.Verify(chain, next.Roots(), time.Now())
		require.NoError(t, err)
	}
	r.waitCounter(t, "meshcert_filemount_refreshes_total", filemount.ReasonRootChanged, n)
}

func TestRotateAnnotation(t *testing.T) {
	client := clusterFor(t, localcluster.ProfileLegacy).Client
	r := startController(t, client, newAuthority(t), func(o *filemount.Options) { o.Resync = time.Second })
	ns := namespace(t, client, true)
	serviceAccount(t, client, ns, "rot")
	name := filemount.SecretName("rot")
	first, _ := waitSecret(t, client, ns, name, 2*time.Second, nil)
	first.Annotations[filemount.AnnotationRotate] = "2026-11-26T12:00:00Z"
	_, err := client.CoreV1().Secrets(ns).Update(t.Context(), first, metav1.UpdateOptions{})
	require.NoError(t, err)
	rotated, _ := waitSecret(t, client, ns, name, 2*time.Second, func(s *corev1.Secret) bool {
		return s.Annotations[filemount.AnnotationRotated] == "2026-11-26T12:00:00Z"
	})
	require.NotEqual(t, serial(t, first), serial(t, rotated))
	// Two more looks, resyncs among them, after the rotated Secret was seen.
	r.waitSyncs(t, ns, "rot", r.syncs(ns+"/rot")+2)
	again, err := client.CoreV1().Secrets(ns).Get(t.Context(), name, metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, rotated.ResourceVersion, again.ResourceVersion, "a request is honoured once")
}

func TestRestartAndResyncMakeNoWrites(t *testing.T) {
	client := clusterFor(t, localcluster.ProfileBound).Client
	authority := newAuthority(t)
	isolated := servingOnlyNewNamespaces(t, client)
	everySecond := func(o *filemount.Options) { o.Resync = time.Second }
	first := startController(t, client, authority, isolated, everySecond)
	ns := namespace(t, client, true)
	for _, sa := range []string{"a", "b", "c"} {
		serviceAccount(t, client, ns, sa)
	}
	versions := map[string]string{}
	for _, sa := range []string{"a", "b", "c", "default"} {
		s, _ := waitSecret(t, client, ns, filemount.SecretName(sa), 3*time.Second, nil)
		versions[s.Name] = s.ResourceVersion
	}
	first.waitCounter(t, "meshcert_filemount_api_writes_total", "", float64(len(versions)))
	writes := first.writes()
	for _, sa := range []string{"a", "b", "c", "default"} {
		first.waitSyncs(t, ns, sa, first.syncs(ns+"/"+sa)+3) // three resyncs
	}
	require.Equal(t, writes, first.writes(), "resyncs must not write when nothing changed")
	first.stop()

	second := startController(t, client, authority, isolated, everySecond)
	for _, sa := range []string{"a", "b", "c", "default"} {
		second.waitSyncs(t, ns, sa, 3) // its first look, then two resyncs
	}
	require.Equal(t, float64(0), second.writes(), "a restarted controller must not rewrite fresh Secrets")
	for name, rv := range versions {
		s, err := client.CoreV1().Secrets(ns).Get(t.Context(), name, metav1.GetOptions{})
		require.NoError(t, err)
		require.Equal(t, rv, s.ResourceVersion, name)
	}
}

func TestThroughTheCA(t *testing.T) {
	c := clusterFor(t, localcluster.ProfileLegacy)
	ns := namespace(t, c.Client, true)
	cfg := ca.DefaultConfig()
	cfg.Namespace, cfg.Listen, cfg.MonitoringListen = localclustertest.UniqueName("ca"), "127.0.0.1:0", "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.FileMount = true
	_, err := c.Client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: cfg.Namespace}}, metav1.CreateOptions{})
	require.NoError(t, err)
	srv, err := ca.Start(t.Context(), cfg, c.Config)
	require.NoError(t, err)
	defer srv.Stop()

	serviceAccount(t, c.Client, ns, "web")
	secret, took := waitSecret(t, c.Client, ns, filemount.SecretName("web"), 15*time.Second, nil)
	t.Logf("Secret written %s after the ServiceAccount (leader election included)", took.Round(time.Millisecond))
	chain, err := pki.DecodeCertificates(secret.Data[mesh.FileCertChain])
	require.NoError(t, err)
	root, err := pki.Verify(chain, srv.Authority().Roots(), time.Now())
	require.NoError(t, err)
	require.True(t, root.Equal(srv.Authority().SigningRoot()))
}

func TestMountSecret(t *testing.T) {
	spec := corev1.PodSpec{
		ServiceAccountName: "cart",
		Containers:         []corev1.Container{{Name: "app"}, {Name: "istio-proxy"}},
	}
	filemount.MountSecret(&spec, "istio-proxy")
	require.Len(t, spec.Volumes, 1)
	require.Equal(t, "meshcert.cart", spec.Volumes[0].Secret.SecretName)
	require.Empty(t, spec.Containers[0].VolumeMounts)
	require.Equal(t, []corev1.VolumeMount{{Name: filemount.MountName, MountPath: "/etc/certs", ReadOnly: true}}, spec.Containers[1].VolumeMounts)
}

// Each Run is one leadership term with state of its own: a controller that
// lost leadership and won it back works again, and a root change during
// the second term reaches its Secrets (SetAuthority reads that term's
// queue, never a field reassigned under it).
func TestTermAfterTerm(t *testing.T) {
	client := clusterFor(t, localcluster.ProfileBound).Client
	opts := filemount.DefaultOptions()
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := filemount.New(client, newAuthority(t), opts, prometheus.NewRegistry())
	require.NoError(t, err)
	ns := namespace(t, client, true)
	runTerm := func() (stop func()) {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		require.NoError(t, wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
			return c.HasSynced(), nil
		}), "the term's caches did not sync")
		return func() {
			cancel()
			require.NoError(t, <-done)
			require.False(t, c.HasSynced(), "an ended term leaves no state behind")
		}
	}

	stop := runTerm()
	serviceAccount(t, client, ns, "first")
	waitSecret(t, client, ns, filemount.SecretName("first"), 5*time.Second, nil)
	stop()

	stop = runTerm()
	defer stop()
	serviceAccount(t, client, ns, "second")
	waitSecret(t, client, ns, filemount.SecretName("second"), 5*time.Second, nil)
	next := newAuthority(t)
	c.SetAuthority(next)
	waitSecret(t, client, ns, filemount.SecretName("first"), 5*time.Second, func(s *corev1.Secret) bool {
		return s.Annotations[filemount.AnnotationRootFingerprints] == filemount.RootFingerprints(next.Roots())
	})
}
