// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/meshcert/kubectl-meshcert/core/fleet"
	"github.com/meshcert/kubectl-meshcert/core/identity"
	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/core/monitoring"
	"github.com/meshcert/kubectl-meshcert/core/pki"
)

// reporter tells the Kubernetes API what the agent serves each pod, in the
// pod's meshcert.io/sds annotation, and honours rotate requests made in its
// meshcert.io/rotate annotation. The plugin reads both, so it sees SDS
// workloads the same way on every cluster, without exec.
type reporter struct {
	agent  *Agent
	client kubernetes.Interface
	node   string
	log    *slog.Logger
	queue  workqueue.TypedRateLimitingInterface[podRef]

	mu    sync.Mutex
	pods  map[podRef]string // pod -> SPIFFE ID it is served
	envoy map[podRef]envoyState
}

// envoyReportDelay coalesces the Envoy states a pod's report carries.
const envoyReportDelay = time.Second

// envoyState is what a pod's Envoy made of the last push.
type envoyState struct {
	state, detail string
	since         time.Time
}

type podRef struct{ namespace, name string }

func newReporter(a *Agent, client kubernetes.Interface) *reporter {
	return &reporter{
		agent: a, client: client, node: a.cfg.NodeName, log: a.log,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[podRef](),
			workqueue.TypedRateLimitingQueueConfig[podRef]{Name: "pod-reports"}),
		pods: map[podRef]string{}, envoy: map[podRef]envoyState{},
	}
}

// envoySaid records what the Envoy of pod made of the last push (one of
// fleet.EnvoyActive, EnvoyWarming, EnvoyNacked) and queues its report when
// that changed.
func (r *reporter) envoySaid(ref podRef, state, detail string) {
	if r == nil || ref.name == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if old := r.envoy[ref]; old.state == state && old.detail == detail {
		return
	}
	r.envoy[ref] = envoyState{state: state, detail: monitoring.BoundedField(detail), since: r.agent.cfg.Clock.Now().UTC()}
	if _, served := r.pods[ref]; served {
		// A workload decides when its Envoy answers: however fast it
		// flips between ACK and NACK, its pod is written at most once per
		// envoyReportDelay.
		r.queue.AddAfter(ref, envoyReportDelay)
	}
}

// served notes that pod is served identity id and queues its report.
func (r *reporter) served(namespace, pod, id string) {
	if r == nil || pod == "" {
		return
	}
	ref := podRef{namespace, pod}
	r.mu.Lock()
	r.pods[ref] = id
	r.mu.Unlock()
	r.queue.Add(ref)
}

// changed queues the reports of every pod of identity id ("" for all).
func (r *reporter) changed(id string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for ref, podID := range r.pods {
		if id == "" || podID == id {
			r.queue.Add(ref)
		}
	}
}

func (r *reporter) run(ctx context.Context) {
	defer r.queue.ShutDown()
	if r.node != "" {
		go r.watchRotateRequests(ctx)
	}
	go func() {
		<-ctx.Done()
		r.queue.ShutDown()
	}()
	for {
		ref, quit := r.queue.Get()
		if quit {
			return
		}
		if err := r.report(ctx, ref); err != nil {
			r.log.Warn("reporting to the pod failed; will retry", "pod", ref.namespace+"/"+ref.name, "error", err)
			r.queue.AddRateLimited(ref)
		} else {
			r.queue.Forget(ref)
		}
		r.queue.Done(ref)
	}
}

func (r *reporter) report(ctx context.Context, ref podRef) error {
	r.mu.Lock()
	id, envoy := r.pods[ref], r.envoy[ref]
	r.mu.Unlock()
	e := r.agent.cache.lookup(id)
	if e == nil || e.cert.Load() == nil {
		return nil
	}
	cert := e.cert.Load()
	roots := r.agent.roots.current.Load()
	report := fleet.SDSReport{
		SPIFFEID: id, Serial: pki.Serial(cert.leaf()), NotBefore: cert.leaf().NotBefore.UTC(), NotAfter: cert.leaf().NotAfter.UTC(),
		RotationDue: cert.rotateAt.UTC(), KeyType: pki.KeyType(cert.leaf().PublicKey),
		ChainsToRoot: pki.Fingerprint(cert.chain[len(cert.chain)-1]), Node: r.node, Updated: r.agent.cfg.Clock.Now().UTC(),
		Envoy: envoy.state, EnvoyDetail: envoy.detail, EnvoySince: envoy.since,
	}
	if roots != nil {
		for _, c := range roots.certs {
			report.RootFingerprints = append(report.RootFingerprints, pki.Fingerprint(c))
		}
	}
	patch, err := fleet.ServedPatch(report)
	if err != nil {
		return err
	}
	_, err = r.client.CoreV1().Pods(ref.namespace).Patch(ctx, ref.name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: mesh.AgentFieldManager})
	if apierrors.IsNotFound(err) {
		r.mu.Lock()
		delete(r.pods, ref)
		delete(r.envoy, ref)
		r.mu.Unlock()
		return nil
	}
	return err
}

// watchRotateRequests follows the pods on this node and re-keys a pod's
// identity when its meshcert.io/rotate annotation gets a new value.
func (r *reporter) watchRotateRequests(ctx context.Context) {
	factory := informers.NewSharedInformerFactoryWithOptions(r.client, 10*time.Minute,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", r.node).String()
		}))
	pods := factory.Core().V1().Pods().Informer()
	handle := func(obj any) {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		want := pod.Annotations[fleet.AnnotationRotate]
		if want == "" || want == pod.Annotations[fleet.AnnotationRotated] {
			return
		}
		sa := pod.Spec.ServiceAccountName
		if sa == "" {
			sa = "default"
		}
		id, err := identity.New(r.agent.cfg.TrustDomain, pod.Namespace, sa)
		if err != nil {
			return
		}
		if !r.agent.RotateIdentity(id.String()) {
			r.log.Warn("rotate request for an identity this agent does not serve", "pod", pod.Namespace+"/"+pod.Name, "identity", id)
			return
		}
		r.log.Info("rotate requested", "pod", pod.Namespace+"/"+pod.Name, "identity", id, "request", want)
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{fleet.AnnotationRotated: want}}})
		if _, err := r.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: mesh.AgentFieldManager}); err != nil {
			r.log.Warn("recording the rotate request failed", "pod", pod.Namespace+"/"+pod.Name, "error", err)
		}
	}
	_, _ = pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    handle,
		UpdateFunc: func(_, obj any) { handle(obj) },
	})
	factory.Start(ctx.Done())
	<-ctx.Done()
	factory.Shutdown()
}
