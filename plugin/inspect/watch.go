// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package inspect

import (
	"context"
	"crypto/x509"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"

	"github.com/meshcert/kubectl-meshcert/core/filemount"
	"github.com/meshcert/kubectl-meshcert/core/fleet"
	"github.com/meshcert/kubectl-meshcert/core/pki"
	"github.com/meshcert/kubectl-meshcert/plugin/output"
)

// watchFleet prints every workload certificate, then each one again when
// it changes (a pod's agent report, a file-mount Secret rewritten), from
// watches on the API server, until ctx ends.
func (o *FleetOptions) watchFleet(ctx context.Context, namespace string, root *x509.Certificate) error {
	client := o.clients.Client
	current := ""
	if root != nil {
		current = pki.Fingerprint(root)
	}
	var mu sync.Mutex
	printed := map[string]fleet.Workload{}
	headers := !o.Output.NoHeaders
	show := func(w fleet.Workload) {
		mu.Lock()
		defer mu.Unlock()
		key := w.Kind + "/" + w.Namespace + "/" + w.Name
		if last, ok := printed[key]; ok && last.Serial == w.Serial && last.Problem == w.Problem && last.Envoy == w.Envoy && last.ChainsTo == w.ChainsTo {
			return // an update that changed nothing shown
		}
		printed[key] = w
		if o.Output.Machine() {
			_ = o.Output.Print(o.Out, output.Item{Name: w.Name, Namespace: w.Namespace, Value: w}, nil, nil)
			return
		}
		_ = printers.NewTablePrinter(printers.PrintOptions{Wide: o.Output.Format == "wide", NoHeaders: !headers}).PrintObj(workloadTable([]fleet.Workload{w}), o.Out)
		headers = false
	}

	sel := fleet.Selection{Labels: o.Selector, Fields: o.FieldSelector}
	pods := metadatainformer.NewFilteredSharedInformerFactory(o.clients.Fleet.Metadata, 0, namespace, func(lo *metav1.ListOptions) {
		served := fleet.ServedPodsListOptions(sel)
		lo.LabelSelector, lo.FieldSelector = served.LabelSelector, served.FieldSelector
	})
	onPod := func(obj any) {
		p, ok := obj.(*metav1.PartialObjectMetadata)
		if !ok {
			return
		}
		if r, found, err := fleet.ParseSDSReport(p); found && err == nil {
			show(fleet.FromSDSReport(p, r, current, time.Now()))
		}
	}
	if _, err := pods.ForResource(fleet.PodsResource).Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onPod, UpdateFunc: func(_, obj any) { onPod(obj) },
	}); err != nil {
		return err
	}
	pods.Start(ctx.Done())
	defer pods.Shutdown()

	secretSelector := filemount.LabelManagedBy + "=" + filemount.ManagedByValue
	if o.Selector != "" {
		secretSelector += "," + o.Selector
	}
	// A field only pods have leaves the Secrets out, as without -w.
	_, err := client.CoreV1().Secrets(namespace).List(ctx, metav1.ListOptions{LabelSelector: secretSelector, FieldSelector: o.FieldSelector, Limit: 1})
	if err == nil {
		secrets := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace),
			informers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.LabelSelector, lo.FieldSelector = secretSelector, o.FieldSelector }))
		onSecret := func(obj any) {
			if s, ok := obj.(*corev1.Secret); ok && filemount.Owned(s) {
				show(fleet.FromSecret(s, current, time.Now()))
			}
		}
		if _, err := secrets.Core().V1().Secrets().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: onSecret, UpdateFunc: func(_, obj any) { onSecret(obj) },
		}); err != nil {
			return err
		}
		secrets.Start(ctx.Done())
		defer secrets.Shutdown()
	} else if !apierrors.IsBadRequest(err) {
		return err
	}
	<-ctx.Done()
	return ctx.Err()
}
