// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package ca

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshcert/kubectl-meshcert/core/fleet"
	"github.com/meshcert/kubectl-meshcert/core/kubeapi"
	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/core/pki"
)

// A root rotation moves the mesh from one self-signed root to a new one in
// three phases, each a single write to the CA Secret, so that a crash
// between phases resumes where it stopped:
//
//   - prepare: a new root is made; the bundle holds old and new. The CA
//     still signs with the old root. Every workload learns to trust both.
//   - activate: the CA signs with the new root; the bundle still holds both.
//   - finish: the old root leaves the bundle.
const (
	AnnotationRotationPhase = "meshcert.io/root-rotation-phase"

	KeyNextCACert     = "next-ca-cert.pem"
	KeyNextCAKey      = "next-ca-key.pem"
	KeyPreviousCACert = "previous-ca-cert.pem"
)

// RotationPhase is where a root rotation stands.
type RotationPhase string

// The phases: none (no rotation under way), prepared and activated.
const (
	PhaseNone      RotationPhase = "none"
	PhasePrepared  RotationPhase = "prepared"
	PhaseActivated RotationPhase = "activated"
)

// RootInfo describes one root. Field names are stable JSON.
type RootInfo struct {
	Subject     string    `json:"subject"`
	Fingerprint string    `json:"sha256Fingerprint"`
	NotBefore   time.Time `json:"notBefore"`
	NotAfter    time.Time `json:"notAfter"`
}

func rootInfo(c *x509.Certificate) RootInfo {
	return RootInfo{Subject: c.Subject.String(), Fingerprint: pki.Fingerprint(c), NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC()}
}

// RotationStatus is the CA's roots and the rotation phase.
type RotationStatus struct {
	Namespace   string        `json:"namespace"`
	Source      Source        `json:"source"`
	Phase       RotationPhase `json:"phase"`
	SigningRoot RootInfo      `json:"signingRoot"`
	Bundle      []RootInfo    `json:"bundle"`
	Next        *RootInfo     `json:"next,omitempty"`
	Previous    *RootInfo     `json:"previous,omitempty"`
}

// ErrNotInstalled means the namespace holds no CA Secret.
var ErrNotInstalled = errors.New("no mesh CA found")

// ReadRotationStatus reads the CA Secret of namespace.
func ReadRotationStatus(ctx context.Context, client kubernetes.Interface, namespace string) (*RotationStatus, *corev1.Secret, error) {
	secrets := client.CoreV1().Secrets(namespace)
	if _, err := secrets.Get(ctx, PluggedInSecretName, metav1.GetOptions{}); err == nil {
		a, _, err := LoadAuthorityReadOnly(ctx, client, namespace)
		if err != nil {
			return nil, nil, err
		}
		st := &RotationStatus{Namespace: namespace, Source: SourcePluggedIn, Phase: PhaseNone, SigningRoot: rootInfo(a.SigningRoot())}
		for _, r := range a.Roots() {
			st.Bundle = append(st.Bundle, rootInfo(r))
		}
		return st, nil, nil
	}
	s, err := secrets.Get(ctx, RootSecretName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil, fmt.Errorf("%w in namespace %s (no Secret %s): install it with `kubectl meshcert install`, or pass the CA's namespace with -n", ErrNotInstalled, namespace, RootSecretName)
	}
	if err != nil {
		return nil, nil, err
	}
	a, err := authorityFromRootSecret(s, time.Now)
	if err != nil {
		return nil, nil, fmt.Errorf("CA Secret %s/%s: %w", namespace, RootSecretName, err)
	}
	st := &RotationStatus{Namespace: namespace, Source: SourceSelfSigned, Phase: phaseOf(s), SigningRoot: rootInfo(a.SigningRoot())}
	for _, r := range a.Roots() {
		st.Bundle = append(st.Bundle, rootInfo(r))
	}
	if certs, err := decodeCerts(s, KeyNextCACert); err == nil {
		info := rootInfo(certs[0])
		st.Next = &info
	}
	if certs, err := decodeCerts(s, KeyPreviousCACert); err == nil {
		info := rootInfo(certs[0])
		st.Previous = &info
	}
	return st, s, nil
}

func phaseOf(s *corev1.Secret) RotationPhase {
	switch p := RotationPhase(s.Annotations[AnnotationRotationPhase]); p {
	case PhasePrepared, PhaseActivated:
		return p
	}
	return PhaseNone
}

// ErrPluggedIn means the CA signs with a plugged-in cacerts Secret, which
// its owner rotates by replacing it.
var ErrPluggedIn = errors.New("the CA uses the plugged-in Secret cacerts: rotate its root by replacing that Secret")

// PhaseOptions say how a rotation phase runs.
type PhaseOptions struct {
	// DryRun computes the phase and its blockers and writes nothing.
	DryRun bool
	// Force runs activate or finish despite blockers.
	Force bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (o PhaseOptions) now() time.Time {
	if o.Now == nil {
		return time.Now()
	}
	return o.Now()
}

// PhaseResult is what a phase did.
type PhaseResult struct {
	// Secret is the CA Secret as written (or, with DryRun, as it would be).
	Secret *corev1.Secret
	// Blockers stood in the way of the phase; it ran only because of Force.
	Blockers []string
	// Rekeyed counts the SDS pods asked to re-key (activate only).
	Rekeyed int
}

// BlockedError refuses a phase that has blockers. Fix them or wait, or run
// the phase with Force.
type BlockedError struct {
	Phase    string
	Blockers []string
}

func (e *BlockedError) Error() string {
	return fmt.Sprintf("refusing to %s: %d blocker(s):\n  - %s\n(wait and retry, fix them, or pass --force)",
		e.Phase, len(e.Blockers), strings.Join(e.Blockers, "\n  - "))
}

// PrepareRootRotation makes a new root and puts it in the bundle beside the
// old one.
func PrepareRootRotation(ctx context.Context, client kubernetes.Interface, namespace string, opts PhaseOptions) (*PhaseResult, error) {
	st, s, err := ReadRotationStatus(ctx, client, namespace)
	if err != nil {
		return nil, err
	}
	if st.Source == SourcePluggedIn {
		return nil, ErrPluggedIn
	}
	if st.Phase != PhaseNone {
		return nil, fmt.Errorf("a root rotation is already %s: continue with --phase %s", st.Phase, nextPhase(st.Phase))
	}
	key, root, err := NewSelfSignedRoot("meshcert", opts.now())
	if err != nil {
		return nil, err
	}
	keyPEM, err := pki.EncodePrivateKey(key)
	if err != nil {
		return nil, err
	}
	updated := s.DeepCopy()
	updated.Data[KeyNextCAKey] = keyPEM
	updated.Data[KeyNextCACert] = pki.EncodeCertificates(root)
	updated.Data[mesh.FileRootCert] = append(append([]byte{}, s.Data[mesh.FileRootCert]...), pki.EncodeCertificates(root)...)
	delete(updated.Data, KeyPreviousCACert)
	setPhase(updated, PhasePrepared)
	written, err := write(ctx, client, updated, opts.DryRun)
	if err != nil {
		return nil, err
	}
	return &PhaseResult{Secret: written, Blockers: []string{}}, nil
}

// ActivateRootRotation makes the CA sign with the prepared root, then asks
// every SDS workload to re-key so that it moves to the new root without a
// restart. It is refused with a *BlockedError while a workload does not
// trust the new root yet, or a changed file-mount Secret may not have
// reached its pods, unless opts.Force.
func ActivateRootRotation(ctx context.Context, c fleet.Cluster, namespace string, opts PhaseOptions) (*PhaseResult, error) {
	client := c.Client
	st, s, err := ReadRotationStatus(ctx, client, namespace)
	if err != nil {
		return nil, err
	}
	if st.Source == SourcePluggedIn {
		return nil, ErrPluggedIn
	}
	if st.Phase != PhasePrepared {
		return nil, wrongPhase(st.Phase, PhasePrepared)
	}
	blockers, err := RotationBlockers(ctx, c, st, opts.now())
	if err != nil {
		return nil, err
	}
	if len(blockers) > 0 && !opts.Force {
		return nil, &BlockedError{Phase: "activate", Blockers: blockers}
	}
	updated := s.DeepCopy()
	updated.Data[KeyPreviousCACert] = s.Data[KeyCACert]
	updated.Data[KeyCACert] = s.Data[KeyNextCACert]
	updated.Data[KeyCAKey] = s.Data[KeyNextCAKey]
	delete(updated.Data, KeyNextCACert)
	delete(updated.Data, KeyNextCAKey)
	setPhase(updated, PhaseActivated)
	written, err := write(ctx, client, updated, opts.DryRun)
	if err != nil {
		return nil, err
	}
	result := &PhaseResult{Secret: written, Blockers: blockers}
	if !opts.DryRun {
		if result.Rekeyed, err = rekeySDSWorkloads(ctx, c, opts.now()); err != nil {
			return result, err
		}
	}
	return result, nil
}

// FinishRootRotation drops the previous root from the bundle. It is refused
// with a *BlockedError while a known workload certificate still chains to
// the old root, or a re-issued file-mount Secret may not have reached its
// pods, unless opts.Force.
func FinishRootRotation(ctx context.Context, c fleet.Cluster, namespace string, opts PhaseOptions) (*PhaseResult, error) {
	client := c.Client
	st, s, err := ReadRotationStatus(ctx, client, namespace)
	if err != nil {
		return nil, err
	}
	if st.Source == SourcePluggedIn {
		return nil, ErrPluggedIn
	}
	if st.Phase != PhaseActivated {
		return nil, wrongPhase(st.Phase, PhaseActivated)
	}
	blockers, err := RotationBlockers(ctx, c, st, opts.now())
	if err != nil {
		return nil, err
	}
	if len(blockers) > 0 && !opts.Force {
		return nil, &BlockedError{Phase: "finish", Blockers: blockers}
	}
	updated := s.DeepCopy()
	updated.Data[mesh.FileRootCert] = updated.Data[KeyCACert]
	setPhase(updated, PhaseNone)
	written, err := write(ctx, client, updated, opts.DryRun)
	if err != nil {
		return nil, err
	}
	return &PhaseResult{Secret: written, Blockers: blockers}, nil
}

// RotationBlockers lists what stops the next phase of the rotation st
// describes: for activate, root ConfigMaps and workloads that do not trust
// the new root yet; for finish, workload certificates that still chain to
// the old root. For both, file-mount Secrets whose new content may not have
// reached their pods by now.
func RotationBlockers(ctx context.Context, c fleet.Cluster, st *RotationStatus, now time.Time) ([]string, error) {
	blockers := []string{}
	switch st.Phase {
	case PhasePrepared:
		next := st.Next.Fingerprint
		cms, err := c.Client.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + RootConfigMapName})
		if err != nil {
			return nil, kubeapi.Explain(err, "list root ConfigMaps")
		}
		for _, cm := range cms.Items {
			if !bundleHas(cm.Data[mesh.FileRootCert], next) {
				blockers = append(blockers, fmt.Sprintf("ConfigMap %s/%s does not hold the new root yet", cm.Namespace, cm.Name))
			}
		}
		ws, err := fleet.Collect(ctx, c, "", nil, now)
		if err != nil {
			return nil, kubeapi.Explain(err, "collect workloads")
		}
		for _, w := range ws {
			switch {
			case !w.Trusts(next):
				blockers = append(blockers, fmt.Sprintf("%s %s/%s (%s) does not trust the new root yet", strings.ToLower(w.Kind), w.Namespace, w.Name, w.Path))
			case !w.Delivered(now):
				blockers = append(blockers, undelivered(w))
			}
		}
	case PhaseActivated:
		if st.Previous == nil {
			return blockers, nil
		}
		ws, err := fleet.Collect(ctx, c, "", nil, now)
		if err != nil {
			return nil, kubeapi.Explain(err, "collect workloads")
		}
		for _, w := range ws {
			switch {
			case w.ChainsTo == st.Previous.Fingerprint:
				blockers = append(blockers, fmt.Sprintf("%s %s/%s (%s) still chains to the old root (serial %s)", strings.ToLower(w.Kind), w.Namespace, w.Name, w.Path, w.Serial))
			case !w.Delivered(now):
				blockers = append(blockers, undelivered(w))
			}
		}
	}
	slices.Sort(blockers)
	return blockers, nil
}

// undelivered says that pods may still read a Secret's previous content.
func undelivered(w fleet.Workload) string {
	return fmt.Sprintf("%s %s/%s (%s) changed; the kubelets may bring it into its pods as late as %s (the CA's --file-mount-propagation)",
		strings.ToLower(w.Kind), w.Namespace, w.Name, w.Path, w.DeliveredBy.Format(time.RFC3339))
}

func bundleHas(bundlePEM, fingerprint string) bool {
	roots, err := pki.DecodeCertificates([]byte(bundlePEM))
	if err != nil {
		return false
	}
	return slices.ContainsFunc(roots, func(r *x509.Certificate) bool { return pki.Fingerprint(r) == fingerprint })
}

// rekeySDSWorkloads asks the node agents to re-key every pod they serve.
func rekeySDSWorkloads(ctx context.Context, c fleet.Cluster, now time.Time) (int, error) {
	value := fleet.RotationRequestValue(now)
	n := 0
	err := fleet.EachServedPod(ctx, c.Metadata, metav1.NamespaceAll, fleet.Selection{}, func(p *metav1.PartialObjectMetadata) error {
		if err := fleet.RequestPodRotation(ctx, c.Client, p.Namespace, p.Name, value); err != nil && !apierrors.IsNotFound(err) {
			return kubeapi.Explain(err, "request rotation of pod "+p.Name)
		}
		n++
		return nil
	})
	return n, err
}

func setPhase(s *corev1.Secret, p RotationPhase) {
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	if p == PhaseNone {
		delete(s.Annotations, AnnotationRotationPhase)
		return
	}
	s.Annotations[AnnotationRotationPhase] = string(p)
}

func write(ctx context.Context, client kubernetes.Interface, s *corev1.Secret, dryRun bool) (*corev1.Secret, error) {
	if dryRun {
		return s, nil
	}
	// The update carries the resourceVersion read: a concurrent phase change
	// makes it fail instead of being overwritten.
	return client.CoreV1().Secrets(s.Namespace).Update(ctx, s, metav1.UpdateOptions{})
}

func nextPhase(p RotationPhase) string {
	switch p {
	case PhasePrepared:
		return "activate"
	case PhaseActivated:
		return "finish"
	}
	return "prepare"
}

func wrongPhase(have, want RotationPhase) error {
	if have == PhaseNone {
		return fmt.Errorf("no root rotation is under way: start one with --phase prepare")
	}
	return fmt.Errorf("the root rotation is %s, not %s: continue with --phase %s", have, want, nextPhase(have))
}
