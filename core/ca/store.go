// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package ca

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/core/pki"
)

// Names of the Secrets the CA reads, and of their keys. The plugged-in
// Secret follows Istio's cacerts layout, so that an Istio CA bundle can be
// reused as it is.
const (
	RootSecretName      = "meshcert-ca"
	PluggedInSecretName = "cacerts"
	// DefaultLeaseName is the Lease the CA's replicas elect a leader on.
	DefaultLeaseName = "meshcert-ca-leader"

	SecretTypeCA corev1.SecretType = "meshcert.io/ca"

	KeyCACert = "ca-cert.pem"
	KeyCAKey  = "ca-key.pem"

	// LabelManagedBy marks objects this project writes.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedByValue = "meshcert"
)

// Source says where the authority's key came from.
type Source string

// Where the key came from: a plugged-in cacerts Secret, or a root the CA
// made itself.
const (
	SourcePluggedIn  Source = "plugged-in"
	SourceSelfSigned Source = "self-signed"
)

// LoadAuthority returns the authority for namespace: the plugged-in CA from
// Secret cacerts when it exists, else the self-signed root from Secret
// meshcert-ca, created on first start. Concurrent first starts end with one
// root: the Secret is only ever created, never overwritten, and a replica
// that loses the race reads the winner's.
func LoadAuthority(ctx context.Context, client kubernetes.Interface, namespace string, now func() time.Time) (*Authority, Source, error) {
	if now == nil {
		now = time.Now
	}
	secrets := client.CoreV1().Secrets(namespace)
	plugged, err := secrets.Get(ctx, PluggedInSecretName, metav1.GetOptions{})
	switch {
	case err == nil:
		a, err := authorityFromPluggedIn(plugged, now)
		if err != nil {
			return nil, "", fmt.Errorf("plugged-in CA Secret %s/%s: %w: fix or delete the Secret", namespace, PluggedInSecretName, err)
		}
		return a, SourcePluggedIn, nil
	case !apierrors.IsNotFound(err):
		return nil, "", fmt.Errorf("read Secret %s/%s: %w", namespace, PluggedInSecretName, err)
	}

	existing, err := secrets.Get(ctx, RootSecretName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		existing, err = createRootSecret(ctx, client, namespace, now())
	}
	if err != nil {
		return nil, "", err
	}
	a, err := authorityFromRootSecret(existing, now)
	if err != nil {
		return nil, "", fmt.Errorf("CA Secret %s/%s: %w: restore it from a backup, or delete it to start over with a new root (every workload must then be re-issued)", namespace, RootSecretName, err)
	}
	return a, SourceSelfSigned, nil
}

// LoadAuthorityReadOnly reads the authority of namespace without creating
// anything, for clients such as the plugin.
func LoadAuthorityReadOnly(ctx context.Context, client kubernetes.Interface, namespace string) (*Authority, Source, error) {
	secrets := client.CoreV1().Secrets(namespace)
	if plugged, err := secrets.Get(ctx, PluggedInSecretName, metav1.GetOptions{}); err == nil {
		a, err := authorityFromPluggedIn(plugged, time.Now)
		return a, SourcePluggedIn, err
	}
	s, err := secrets.Get(ctx, RootSecretName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, "", fmt.Errorf("%w in namespace %s (no Secret %s)", ErrNotInstalled, namespace, RootSecretName)
	}
	if err != nil {
		return nil, "", err
	}
	a, err := authorityFromRootSecret(s, time.Now)
	return a, SourceSelfSigned, err
}

func createRootSecret(ctx context.Context, client kubernetes.Interface, namespace string, now time.Time) (*corev1.Secret, error) {
	key, root, err := NewSelfSignedRoot("meshcert", now)
	if err != nil {
		return nil, err
	}
	keyPEM, err := pki.EncodePrivateKey(key)
	if err != nil {
		return nil, err
	}
	rootPEM := pki.EncodeCertificates(root)
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: RootSecretName, Namespace: namespace, Labels: map[string]string{LabelManagedBy: ManagedByValue}},
		Type:       SecretTypeCA,
		Data:       map[string][]byte{KeyCAKey: keyPEM, KeyCACert: rootPEM, mesh.FileRootCert: rootPEM},
	}
	created, err := client.CoreV1().Secrets(namespace).Create(ctx, secret, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// Another replica won the race: use its root, never ours.
		return client.CoreV1().Secrets(namespace).Get(ctx, RootSecretName, metav1.GetOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("create CA Secret %s/%s: %w", namespace, RootSecretName, err)
	}
	return created, nil
}

func authorityFromRootSecret(s *corev1.Secret, now func() time.Time) (*Authority, error) {
	key, err := decodeKey(s, KeyCAKey)
	if err != nil {
		return nil, err
	}
	signing, err := decodeCerts(s, KeyCACert)
	if err != nil {
		return nil, err
	}
	roots, err := decodeCerts(s, mesh.FileRootCert)
	if err != nil {
		return nil, err
	}
	return NewAuthority(key, signing, roots, now)
}

func authorityFromPluggedIn(s *corev1.Secret, now func() time.Time) (*Authority, error) {
	key, err := decodeKey(s, KeyCAKey)
	if err != nil {
		return nil, err
	}
	caCert, err := decodeCerts(s, KeyCACert)
	if err != nil {
		return nil, err
	}
	roots, err := decodeCerts(s, mesh.FileRootCert)
	if err != nil {
		return nil, err
	}
	chain := caCert[:1]
	if _, ok := s.Data[mesh.FileCertChain]; ok {
		full, err := decodeCerts(s, mesh.FileCertChain)
		if err != nil {
			return nil, err
		}
		// cert-chain.pem starts with ca-cert.pem, as in Istio.
		if !full[0].Equal(caCert[0]) {
			full = append([]*x509.Certificate{caCert[0]}, full...)
		}
		chain = full
	}
	return NewAuthority(key, chain, roots, now)
}

func decodeKey(s *corev1.Secret, key string) (crypto.Signer, error) {
	data, ok := s.Data[key]
	if !ok {
		return nil, fmt.Errorf("key %s is missing", key)
	}
	k, err := pki.DecodePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return k, nil
}

func decodeCerts(s *corev1.Secret, key string) ([]*x509.Certificate, error) {
	data, ok := s.Data[key]
	if !ok {
		return nil, fmt.Errorf("key %s is missing", key)
	}
	certs, err := pki.DecodeCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return certs, nil
}
