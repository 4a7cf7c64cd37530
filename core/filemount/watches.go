// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package filemount

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	listerscorev1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// secretWatch watches the key/cert Secrets of one served namespace. The CA
// may read Secrets only in the namespaces that opted in (`kubectl meshcert
// file-mount enable` binds its file-mount role there), so each served
// namespace has a watch of its own and none spans the cluster.
type secretWatch struct {
	lister  listerscorev1.SecretNamespaceLister
	synced  cache.InformerSynced
	stop    func()
	started time.Time
	// forbidden holds the API server's refusal of the watch, if any.
	forbidden atomic.Pointer[error]
}

// secretWatches are a term's watches, by namespace.
type secretWatches struct {
	mu          sync.Mutex
	byNamespace map[string]*secretWatch
	running     sync.WaitGroup
}

// secretsIn returns the watch of namespace, starting it if need be. Once
// it has synced, every service account of the namespace is looked at.
func (c *term) secretsIn(namespace *corev1.Namespace) *secretWatch {
	c.watches.mu.Lock()
	defer c.watches.mu.Unlock()
	if w, ok := c.watches.byNamespace[namespace.Name]; ok {
		return w
	}
	return c.startWatch(namespace, nil)
}

// retryRefused restarts w, a watch the API server refused, at most once per
// ForbiddenRetry: the informer's own retries back off to half a minute and
// more, and the fix (binding the role) should take effect sooner.
func (c *term) retryRefused(namespace *corev1.Namespace, w *secretWatch) {
	c.watches.mu.Lock()
	if c.watches.byNamespace[namespace.Name] != w || c.opts.Clock.Since(w.started) < c.opts.ForbiddenRetry {
		c.watches.mu.Unlock()
		return
	}
	c.startWatch(namespace, w.forbidden.Load())
	c.watches.mu.Unlock()
	w.stop()
}

// startWatch starts the watch of namespace, which was refused before when
// refused is set; the caller holds c.watches.mu.
func (c *term) startWatch(namespace *corev1.Namespace, refused *error) *secretWatch {
	ns := namespace.Name
	ctx, cancel := context.WithCancel(c.ctx)
	factory := informers.NewSharedInformerFactoryWithOptions(c.client, c.opts.Resync, informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("type", string(SecretType)).String()
		}))
	secrets := factory.Core().V1().Secrets()
	informer := secrets.Informer()
	w := &secretWatch{lister: secrets.Lister().Secrets(ns), synced: informer.HasSynced, started: c.opts.Clock.Now()}
	w.forbidden.Store(refused)
	_ = informer.SetWatchErrorHandlerWithContext(func(ctx context.Context, r *cache.Reflector, err error) {
		if apierrors.IsForbidden(err) && w.forbidden.Swap(&err) == nil {
			c.recorder.Eventf(namespace, corev1.EventTypeWarning, "FileMountForbidden", "%v", notPermitted(ns, err))
		}
		cache.DefaultWatchErrorHandler(ctx, r, err)
	})
	_, _ = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj any) { c.enqueueSecret(obj) },
		DeleteFunc: c.enqueueSecret,
	})
	factory.Start(ctx.Done())
	c.watches.running.Go(func() {
		if cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
			w.forbidden.Store(nil)
			c.enqueueNamespace(ns)
		}
	})
	w.stop = func() {
		cancel()
		factory.Shutdown()
	}
	c.watches.byNamespace[ns] = w
	return w
}

// forget stops the watch of a namespace that is no longer served.
func (c *term) forget(ns string) {
	c.watches.mu.Lock()
	w, ok := c.watches.byNamespace[ns]
	delete(c.watches.byNamespace, ns)
	c.watches.mu.Unlock()
	if ok {
		w.stop()
	}
}

// stopWatches stops every watch, at the end of a term.
func (c *term) stopWatches() {
	c.watches.mu.Lock()
	watches := c.watches.byNamespace
	c.watches.byNamespace = map[string]*secretWatch{}
	c.watches.mu.Unlock()
	for _, w := range watches {
		w.stop()
	}
	c.watches.running.Wait()
}

// managed counts the Secrets the term's watches hold.
func (c *term) managed() (managed, forbidden int) {
	c.watches.mu.Lock()
	defer c.watches.mu.Unlock()
	for _, w := range c.watches.byNamespace {
		if !w.synced() {
			if w.forbidden.Load() != nil {
				forbidden++
			}
			continue
		}
		secrets, _ := w.lister.List(labels.SelectorFromSet(labels.Set{LabelManagedBy: ManagedByValue}))
		managed += len(secrets)
	}
	return managed, forbidden
}

// notPermitted explains a refusal of the API server in namespace ns.
func notPermitted(ns string, err error) error {
	return fmt.Errorf("namespace %s opted in to the file-mount path, but the CA may not keep Secrets there (%v): run `kubectl meshcert file-mount enable %s`, which binds the CA's file-mount role in it", ns, err, ns)
}
