// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package ca

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

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

// PrepareRootRotation makes a new root and puts it in the bundle beside the
// old one. It returns the Secret as it would be written; with dryRun it
// writes nothing.
func PrepareRootRotation(ctx context.Context, client kubernetes.Interface, namespace string, now time.Time, dryRun bool) (*corev1.Secret, error) {
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
	key, root, err := NewSelfSignedRoot("meshcert", now)
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
	updated.Data[KeyRootCert] = append(append([]byte{}, s.Data[KeyRootCert]...), pki.EncodeCertificates(root)...)
	delete(updated.Data, KeyPreviousCACert)
	setPhase(updated, PhasePrepared)
	return write(ctx, client, updated, dryRun)
}

// ActivateRootRotation makes the CA sign with the prepared root. The caller
// checks first that every workload trusts it.
func ActivateRootRotation(ctx context.Context, client kubernetes.Interface, namespace string, dryRun bool) (*corev1.Secret, error) {
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
	updated := s.DeepCopy()
	updated.Data[KeyPreviousCACert] = s.Data[KeyCACert]
	updated.Data[KeyCACert] = s.Data[KeyNextCACert]
	updated.Data[KeyCAKey] = s.Data[KeyNextCAKey]
	delete(updated.Data, KeyNextCACert)
	delete(updated.Data, KeyNextCAKey)
	setPhase(updated, PhaseActivated)
	return write(ctx, client, updated, dryRun)
}

// FinishRootRotation drops the previous root from the bundle. The caller
// checks first that no workload certificate still chains to it.
func FinishRootRotation(ctx context.Context, client kubernetes.Interface, namespace string, dryRun bool) (*corev1.Secret, error) {
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
	updated := s.DeepCopy()
	updated.Data[KeyRootCert] = updated.Data[KeyCACert]
	setPhase(updated, PhaseNone)
	return write(ctx, client, updated, dryRun)
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
