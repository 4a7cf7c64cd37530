// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package ca

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listerscorev1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/meshcert/kubectl-meshcert/core/mesh"
)

// RootConfigMapName is the ConfigMap, in every namespace, that holds the
// root bundle under mesh.FileRootCert.
const RootConfigMapName = "meshcert-root-cert"

// rootPublisher keeps ConfigMap meshcert-root-cert in every active namespace
// equal to the root bundle: it creates it in new namespaces, repairs edits
// and recreates it when deleted. It is driven by informers, not polling.
type rootPublisher struct {
	client  kubernetes.Interface
	bundle  atomic.Pointer[[]byte]
	metrics *metrics
	log     *slog.Logger

	namespaces listerscorev1.NamespaceLister
	configMaps listerscorev1.ConfigMapLister
	queue      workqueue.TypedRateLimitingInterface[string]
	synced     []cache.InformerSynced
	// running is set once the fields above are, and read before using them
	// from another goroutine.
	running atomic.Bool
}

func newRootPublisher(client kubernetes.Interface, bundle []byte, m *metrics, log *slog.Logger) *rootPublisher {
	p := &rootPublisher{client: client, metrics: m, log: log}
	p.bundle.Store(&bundle)
	return p
}

// SetBundle replaces the published bundle and republishes everywhere.
func (p *rootPublisher) SetBundle(bundle []byte) {
	p.bundle.Store(&bundle)
	if !p.running.Load() {
		return
	}
	nss, _ := p.namespaces.List(labels.Everything())
	for _, ns := range nss {
		p.queue.Add(ns.Name)
	}
}

// run publishes until ctx ends. It is called on the leader only.
func (p *rootPublisher) run(ctx context.Context) error {
	nsFactory := informers.NewSharedInformerFactory(p.client, 10*time.Minute)
	cmFactory := informers.NewSharedInformerFactoryWithOptions(p.client, 10*time.Minute,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", RootConfigMapName).String()
		}))
	nsInformer := nsFactory.Core().V1().Namespaces()
	cmInformer := cmFactory.Core().V1().ConfigMaps()
	p.namespaces, p.configMaps = nsInformer.Lister(), cmInformer.Lister()
	p.queue = workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "root-configmaps"})
	defer p.queue.ShutDown()

	enqueueNamespace := func(obj any) {
		if ns, ok := obj.(*corev1.Namespace); ok {
			p.queue.Add(ns.Name)
		}
	}
	enqueueConfigMap := func(obj any) {
		if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = tomb.Obj
		}
		if cm, ok := obj.(*corev1.ConfigMap); ok {
			p.queue.Add(cm.Namespace)
		}
	}
	if _, err := nsInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueueNamespace,
		UpdateFunc: func(_, obj any) { enqueueNamespace(obj) },
	}); err != nil {
		return err
	}
	if _, err := cmInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj any) { enqueueConfigMap(obj) },
		DeleteFunc: enqueueConfigMap,
	}); err != nil {
		return err
	}
	p.synced = []cache.InformerSynced{nsInformer.Informer().HasSynced, cmInformer.Informer().HasSynced}
	nsFactory.Start(ctx.Done())
	cmFactory.Start(ctx.Done())
	defer nsFactory.Shutdown()
	defer cmFactory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), p.synced...) {
		return ctx.Err()
	}
	p.running.Store(true)
	defer p.running.Store(false)
	// A bundle set while the caches synced must reach every namespace.
	p.SetBundle(*p.bundle.Load())
	for range 2 {
		go wait.UntilWithContext(ctx, p.work, time.Second)
	}
	<-ctx.Done()
	return nil
}

func (p *rootPublisher) work(ctx context.Context) {
	for {
		ns, quit := p.queue.Get()
		if quit {
			return
		}
		if err := p.sync(ctx, ns); err != nil {
			p.log.Warn("publishing the root bundle failed; will retry", "namespace", ns, "error", err)
			p.queue.AddRateLimited(ns)
		} else {
			p.queue.Forget(ns)
		}
		p.queue.Done(ns)
	}
}

func (p *rootPublisher) sync(ctx context.Context, namespace string) error {
	ns, err := p.namespaces.Get(namespace)
	if apierrors.IsNotFound(err) || (err == nil && ns.Status.Phase == corev1.NamespaceTerminating) {
		return nil
	}
	if err != nil {
		return err
	}
	bundle := *p.bundle.Load()
	existing, err := p.configMaps.ConfigMaps(namespace).Get(RootConfigMapName)
	if apierrors.IsNotFound(err) {
		_, err = p.client.CoreV1().ConfigMaps(namespace).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: RootConfigMapName, Namespace: namespace, Labels: map[string]string{LabelManagedBy: ManagedByValue}},
			Data:       map[string]string{mesh.FileRootCert: string(bundle)},
		}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("ConfigMap created concurrently; recheck")
		}
		if err == nil {
			p.metrics.rootConfigMaps.WithLabelValues("create").Inc()
		}
		return err
	}
	if err != nil {
		return err
	}
	if existing.Data[mesh.FileRootCert] == string(bundle) && len(existing.Data) == 1 && len(existing.BinaryData) == 0 {
		return nil
	}
	repaired := existing.DeepCopy()
	repaired.Data = map[string]string{mesh.FileRootCert: string(bundle)}
	repaired.BinaryData = nil
	if repaired.Labels == nil {
		repaired.Labels = map[string]string{}
	}
	repaired.Labels[LabelManagedBy] = ManagedByValue
	if _, err := p.client.CoreV1().ConfigMaps(namespace).Update(ctx, repaired, metav1.UpdateOptions{}); err != nil {
		return err
	}
	p.metrics.rootConfigMaps.WithLabelValues("update").Inc()
	if !bytes.Equal([]byte(existing.Data[mesh.FileRootCert]), bundle) {
		p.log.Info("repaired root ConfigMap", "namespace", namespace)
	}
	return nil
}
