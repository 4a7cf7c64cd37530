// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package fleet gathers every workload certificate the cluster knows of, on
// both delivery paths: the file-mount Secrets, and what node agents report
// serving over SDS in an annotation on each pod. It never reads a private
// key.
package fleet

import (
	"cmp"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/pager"

	"github.com/meshcert/kubectl-meshcert/core/filemount"
	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/core/pki"
)

// Pod annotations the node agent writes and reads.
const (
	// AnnotationSDS holds the agent's SDSReport as JSON.
	AnnotationSDS = "meshcert.io/sds"
	// AnnotationRotate on a pod, set to a new value, asks its node agent to
	// re-key the pod's identity; the agent records it in AnnotationRotated.
	AnnotationRotate  = "meshcert.io/rotate"
	AnnotationRotated = "meshcert.io/rotated"
)

// LabelServed, set to LabelServedValue by a node agent on every pod it
// serves over SDS, lets the API server select those pods: a fleet of a
// few served pods among many others lists only them.
const (
	LabelServed      = "meshcert.io/sds-served"
	LabelServedValue = "true"
)

// SDSReport is what a node agent serves a pod. Field names are stable.
type SDSReport struct {
	SPIFFEID         string    `json:"spiffeID"`
	Serial           string    `json:"serial"`
	NotBefore        time.Time `json:"notBefore"`
	NotAfter         time.Time `json:"notAfter"`
	RotationDue      time.Time `json:"rotationDue"`
	KeyType          string    `json:"keyType"`
	ChainsToRoot     string    `json:"chainsToRoot"`
	RootFingerprints []string  `json:"rootFingerprints"`
	Node             string    `json:"node,omitempty"`
	Updated          time.Time `json:"updated"`
	// Envoy is what the pod's Envoy made of the agent's last push: one of
	// EnvoyActive, EnvoyWarming or EnvoyNacked, with EnvoyDetail its error
	// for a NACK and EnvoySince when it became so.
	Envoy       string    `json:"envoy,omitempty"`
	EnvoyDetail string    `json:"envoyDetail,omitempty"`
	EnvoySince  time.Time `json:"envoySince,omitzero"`
}

// What a pod's Envoy made of the agent's last push.
const (
	// EnvoyActive: it ACKed the last push and uses what it was sent.
	EnvoyActive = "ACTIVE"
	// EnvoyWarming: the last push has been sent and not yet answered.
	EnvoyWarming = "WARMING"
	// EnvoyNacked: it rejected the last push and keeps what it had.
	EnvoyNacked = "NACKED"
)

// ParseSDSReport reads a pod's report, from the pod or its metadata; ok is
// false when it has none.
func ParseSDSReport(pod metav1.Object) (SDSReport, bool, error) {
	raw, ok := pod.GetAnnotations()[AnnotationSDS]
	if !ok {
		return SDSReport{}, false, nil
	}
	var r SDSReport
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		return SDSReport{}, true, fmt.Errorf("pod %s/%s: annotation %s is not a report: %w", pod.GetNamespace(), pod.GetName(), AnnotationSDS, err)
	}
	return r, true, nil
}

// ServedPatch is the merge patch with which a node agent labels a pod as
// served and records r as its report.
func ServedPatch(r SDSReport) ([]byte, error) {
	value, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{"metadata": map[string]any{
		"labels":      map[string]string{LabelServed: LabelServedValue},
		"annotations": map[string]string{AnnotationSDS: string(value)},
	}})
}

// MarkServed labels pod as served and records r as its report, as
// ServedPatch does on the API server.
func MarkServed(pod metav1.Object, r SDSReport) error {
	value, err := json.Marshal(r)
	if err != nil {
		return err
	}
	labels, annotations := pod.GetLabels(), pod.GetAnnotations()
	if labels == nil {
		labels = map[string]string{}
	}
	if annotations == nil {
		annotations = map[string]string{}
	}
	labels[LabelServed], annotations[AnnotationSDS] = LabelServedValue, string(value)
	pod.SetLabels(labels)
	pod.SetAnnotations(annotations)
	return nil
}

// Workload is one workload certificate. Field names are stable JSON.
type Workload struct {
	Namespace string `json:"namespace"`
	// Kind and Name say where the certificate was found: a Secret or a Pod.
	Kind        string    `json:"objectKind"`
	Name        string    `json:"name"`
	Path        string    `json:"path"`
	SPIFFEID    string    `json:"spiffeID"`
	Serial      string    `json:"serial"`
	NotBefore   time.Time `json:"notBefore"`
	NotAfter    time.Time `json:"notAfter"`
	Remaining   string    `json:"remaining"`
	RotationDue time.Time `json:"rotationDue,omitzero"`
	KeyType     string    `json:"keyType"`
	// ChainsTo is the fingerprint of the root the certificate chains to;
	// ChainsToCurrentRoot says whether that is the CA's signing root.
	ChainsTo            string   `json:"chainsTo"`
	ChainsToCurrentRoot bool     `json:"chainsToCurrentRoot"`
	TrustedRoots        []string `json:"trustedRoots"`
	// DeliveredBy, for a Secret, is when its current content has reached
	// the pods that mount it; before then they may hold the previous one.
	DeliveredBy time.Time `json:"deliveredBy,omitzero"`
	// Envoy, for a pod served over SDS, is what its Envoy made of the
	// agent's last push (ACTIVE, WARMING or NACKED).
	Envoy   string `json:"envoy,omitempty"`
	Problem string `json:"problem,omitempty"`
}

// Delivered reports whether the pods hold what the workload's Secret holds
// at now. Certificates served over SDS are always delivered.
func (w Workload) Delivered(now time.Time) bool { return !now.Before(w.DeliveredBy) }

// Trusts reports whether the workload trusts the root with fingerprint fp.
func (w Workload) Trusts(fp string) bool { return slices.Contains(w.TrustedRoots, fp) }

// Cluster is what Collect reads through.
type Cluster struct {
	// Client reads the file-mount Secrets.
	Client kubernetes.Interface
	// Metadata lists the pods that node agents serve. Their names, labels
	// and annotations (where the reports are) are all Collect needs, so
	// their specs and statuses are never sent.
	Metadata metadata.Interface
}

// NewCluster reads through client, and through a metadata client of
// config.
func NewCluster(client kubernetes.Interface, config *rest.Config) (Cluster, error) {
	md, err := metadata.NewForConfig(config)
	if err != nil {
		return Cluster{}, fmt.Errorf("metadata client: %w", err)
	}
	return Cluster{Client: client, Metadata: md}, nil
}

// Collect lists the workload certificates in namespace ("" for all),
// soonest expiry first. signingRoot is the CA's current signing root; nil
// leaves ChainsToCurrentRoot false.
func Collect(ctx context.Context, c Cluster, namespace string, signingRoot *x509.Certificate, now time.Time) ([]Workload, error) {
	return CollectSelected(ctx, c, namespace, Selection{}, signingRoot, now)
}

// DefaultPodPageSize is how many pods one list request of Collect asks
// for.
const DefaultPodPageSize = 500

// Selection narrows Collect on the API server: Labels select the pods and
// Secrets by their labels, Fields by their fields. A field only pods have
// (spec.nodeName, status.phase) selects among pods and leaves the Secrets
// out.
type Selection struct {
	Labels, Fields string
	// PodPageSize is how many pods one list request asks for;
	// DefaultPodPageSize when zero.
	PodPageSize int64
}

// CollectSelected is Collect of the pods and Secrets that sel selects.
func CollectSelected(ctx context.Context, c Cluster, namespace string, sel Selection, signingRoot *x509.Certificate, now time.Time) ([]Workload, error) {
	current := ""
	if signingRoot != nil {
		current = pki.Fingerprint(signingRoot)
	}
	var out []Workload
	secretLabels := labels.SelectorFromSet(labels.Set{filemount.LabelManagedBy: filemount.ManagedByValue}).String()
	if sel.Labels != "" {
		secretLabels += "," + sel.Labels
	}
	secrets, err := c.Client.CoreV1().Secrets(namespace).List(ctx, metav1.ListOptions{LabelSelector: secretLabels, FieldSelector: sel.Fields})
	switch {
	case apierrors.IsBadRequest(err) && sel.Fields != "":
		secrets = &corev1.SecretList{} // a field Secrets do not have: pods only
	case err != nil:
		return nil, fmt.Errorf("list file-mount Secrets: %w", err)
	}
	for i := range secrets.Items {
		s := &secrets.Items[i]
		if !filemount.Owned(s) {
			continue
		}
		out = append(out, FromSecret(s, current, now))
	}
	err = EachServedPod(ctx, c.Metadata, namespace, sel, func(p *metav1.PartialObjectMetadata) error {
		r, _, err := ParseSDSReport(p)
		w := FromSDSReport(p, r, current, now)
		if err != nil {
			w.Problem = err.Error()
		}
		out = append(out, w)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(a, b Workload) int { return a.NotAfter.Compare(b.NotAfter) })
	return out, nil
}

// PodsResource is the resource the metadata client lists pods as.
var PodsResource = corev1.SchemeGroupVersion.WithResource("pods")

// EachServedPod calls fn with the metadata of every running pod in
// namespace ("" for all) that sel selects, a node agent labels as served
// and that carries a report. The API server selects the pods, by the
// label and by phase (finished pods' reports are stale), and sends them in
// pages, so that a large cluster's pods are never held at once by it or
// here.
func EachServedPod(ctx context.Context, md metadata.Interface, namespace string, sel Selection, fn func(*metav1.PartialObjectMetadata) error) error {
	listPods := pager.New(pager.SimplePageFunc(func(opts metav1.ListOptions) (runtime.Object, error) {
		return md.Resource(PodsResource).Namespace(namespace).List(ctx, opts)
	}))
	listPods.PageSize = cmp.Or(sel.PodPageSize, DefaultPodPageSize)
	var fnErr error
	err := listPods.EachListItem(ctx, ServedPodsListOptions(sel), func(obj runtime.Object) error {
		p, ok := obj.(*metav1.PartialObjectMetadata)
		if !ok {
			return fmt.Errorf("the API server sent a %T for a pod's metadata", obj)
		}
		if _, found := p.Annotations[AnnotationSDS]; !found {
			return nil
		}
		fnErr = fn(p)
		return fnErr
	})
	switch {
	case fnErr != nil:
		return fnErr // fn's own, as it said it
	case err != nil:
		return fmt.Errorf("list served pods: %w", err)
	}
	return nil
}

// ServedPodsListOptions select the running pods that sel selects and a
// node agent labels as served.
func ServedPodsListOptions(sel Selection) metav1.ListOptions {
	podLabels := labels.SelectorFromSet(labels.Set{LabelServed: LabelServedValue}).String()
	if sel.Labels != "" {
		podLabels += "," + sel.Labels
	}
	podFields := "status.phase!=" + string(corev1.PodSucceeded) + ",status.phase!=" + string(corev1.PodFailed)
	if sel.Fields != "" {
		podFields += "," + sel.Fields
	}
	return metav1.ListOptions{LabelSelector: podLabels, FieldSelector: podFields}
}

// SecretCertificate reads the certificate chain and the root bundle of a
// Secret that holds a certificate: a file-mount Secret, or one of type
// kubernetes.io/tls (whose bundle, if any, is ca.crt). An error names the
// key; when only the bundle is bad, the chain is returned with it.
func SecretCertificate(s *corev1.Secret) (chain, roots []*x509.Certificate, err error) {
	chainKey, rootKey := mesh.FileCertChain, mesh.FileRootCert
	switch s.Type {
	case filemount.SecretType:
	case corev1.SecretTypeTLS:
		chainKey, rootKey = corev1.TLSCertKey, "ca.crt"
	default:
		return nil, nil, fmt.Errorf("it holds no certificate: its type is %q, want %q or %q", s.Type, filemount.SecretType, corev1.SecretTypeTLS)
	}
	if chain, err = pki.DecodeCertificates(s.Data[chainKey]); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", chainKey, err)
	}
	if data := s.Data[rootKey]; len(data) > 0 {
		if roots, err = pki.DecodeCertificates(data); err != nil {
			return chain, nil, fmt.Errorf("%s: %w", rootKey, err)
		}
	}
	return chain, roots, nil
}

// FromSecret describes a file-mount Secret.
func FromSecret(s *corev1.Secret, currentRoot string, now time.Time) Workload {
	w := Workload{Namespace: s.Namespace, Kind: "Secret", Name: s.Name, Path: mesh.ModeFileMount}
	chain, roots, err := SecretCertificate(s)
	if err != nil {
		w.Problem = err.Error()
		if chain == nil {
			return w
		}
	}
	report, _ := pki.Describe(chain, roots, now)
	w.SPIFFEID, w.Serial, w.NotBefore, w.NotAfter, w.KeyType = report.SPIFFEID, report.Serial, report.NotBefore, report.NotAfter, report.KeyType
	w.Remaining = report.Remaining
	if renewAt, err := time.Parse(time.RFC3339, s.Annotations[filemount.AnnotationRenewAt]); err == nil {
		w.RotationDue = renewAt
	}
	if deliveredBy, err := time.Parse(time.RFC3339, s.Annotations[filemount.AnnotationDeliveredBy]); err == nil {
		w.DeliveredBy = deliveredBy
	}
	for _, r := range roots {
		w.TrustedRoots = append(w.TrustedRoots, pki.Fingerprint(r))
	}
	if report.VerifiedRoot != nil {
		w.ChainsTo = report.VerifiedRoot.Fingerprint
	} else if w.Problem == "" {
		w.Problem = report.VerifyError
	}
	w.ChainsToCurrentRoot = currentRoot != "" && w.ChainsTo == currentRoot
	return w
}

// FromSDSReport describes what an agent reports serving a pod.
func FromSDSReport(p metav1.Object, r SDSReport, currentRoot string, now time.Time) Workload {
	w := Workload{
		Namespace: p.GetNamespace(), Kind: "Pod", Name: p.GetName(), Path: mesh.ModeSDS,
		SPIFFEID: r.SPIFFEID, Serial: r.Serial, NotBefore: r.NotBefore, NotAfter: r.NotAfter,
		Remaining: pki.Remaining(r.NotAfter, now), RotationDue: r.RotationDue, KeyType: r.KeyType,
		ChainsTo: r.ChainsToRoot, ChainsToCurrentRoot: currentRoot != "" && r.ChainsToRoot == currentRoot,
		TrustedRoots: r.RootFingerprints, Envoy: r.Envoy,
	}
	if r.Envoy == EnvoyNacked {
		w.Problem = "Envoy rejected the last push (NACK): " + r.EnvoyDetail
	}
	return w
}

// Short abbreviates a fingerprint for tables.
func Short(fp string) string {
	if len(fp) > 12 {
		return fp[:12]
	}
	return fp
}

// ShortList abbreviates fingerprints for tables.
func ShortList(fps []string) string {
	out := make([]string, len(fps))
	for i, fp := range fps {
		out[i] = Short(fp)
	}
	return strings.Join(out, ",")
}

// RotationRequestValue is the value a rotation request sets in
// AnnotationRotate (and filemount.AnnotationRotate): the time of the
// request, so that every request differs from the last.
func RotationRequestValue(now time.Time) string { return now.UTC().Format(time.RFC3339Nano) }

// AnnotationPatch is a merge patch that sets one annotation.
func AnnotationPatch(key, value string) []byte {
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{key: value}}})
	return patch
}

// RequestPodRotation asks the node agent serving a pod to re-key it, by
// setting AnnotationRotate to value.
func RequestPodRotation(ctx context.Context, client kubernetes.Interface, namespace, name, value string) error {
	_, err := client.CoreV1().Pods(namespace).Patch(ctx, name, types.MergePatchType, AnnotationPatch(AnnotationRotate, value),
		metav1.PatchOptions{FieldManager: mesh.FieldManager})
	return err
}
