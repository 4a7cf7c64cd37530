// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package filemount is the mesh's path for clusters that cannot issue
// trustworthy tokens: the CA writes a key/cert Secret per service account,
// meshcert.<sa>, keeps it fresh, and pods mount it. No token is involved.
package filemount

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/meshcert/kubectl-meshcert/core/identity"
	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/core/pki"
)

// The Secret's name, type, keys, labels and annotations.
const (
	SecretPrefix                   = "meshcert."
	SecretType   corev1.SecretType = "meshcert.io/key-and-cert"

	LabelManagedBy      = "app.kubernetes.io/managed-by"
	ManagedByValue      = "meshcert"
	LabelServiceAccount = "meshcert.io/service-account"
	// LabelNamespaceOptIn on a Namespace turns the path on for it.
	LabelNamespaceOptIn = "meshcert.io/file-mount"
	OptInValue          = "enabled"

	AnnotationSPIFFEID         = "meshcert.io/spiffe-id"
	AnnotationNotAfter         = "meshcert.io/not-after"
	AnnotationRenewAt          = "meshcert.io/renew-at"
	AnnotationRootFingerprints = "meshcert.io/root-fingerprints"
	// AnnotationDeliveredBy is when the Secret's current content has reached
	// every pod that mounts it, by the controller's --file-mount-propagation.
	AnnotationDeliveredBy = "meshcert.io/delivered-by"
	// AnnotationRotate, set to any new value (a timestamp, by convention),
	// asks for a new key and certificate now; AnnotationRotated records the
	// value last honoured.
	AnnotationRotate  = "meshcert.io/rotate"
	AnnotationRotated = "meshcert.io/rotated"
)

// SecretName is the Secret of service account sa.
func SecretName(sa string) string { return SecretPrefix + sa }

// ServiceAccountOf returns the service account a Secret name belongs to.
func ServiceAccountOf(secretName string) (string, bool) {
	sa, ok := strings.CutPrefix(secretName, SecretPrefix)
	return sa, ok && sa != ""
}

// Owned reports whether s is a Secret this controller manages. A Secret of
// the same name but another type or without the label is someone else's.
func Owned(s *corev1.Secret) bool {
	return s.Type == SecretType && s.Labels[LabelManagedBy] == ManagedByValue
}

// Authority is what the controller signs with: the CA's authority. Roots
// lists the trusted bundle with the signing root first.
type Authority interface {
	SignWorkload(pub crypto.PublicKey, id identity.ID, ttl time.Duration) ([]*x509.Certificate, error)
	Roots() []*x509.Certificate
}

// RootFingerprints lists the roots' SHA-256 fingerprints, comma-separated,
// in bundle order.
func RootFingerprints(roots []*x509.Certificate) string {
	fps := make([]string, len(roots))
	for i, r := range roots {
		fps[i] = pki.Fingerprint(r)
	}
	return strings.Join(fps, ",")
}

// Contents is a Secret's key and chain, parsed and checked.
type Contents struct {
	Key   crypto.Signer
	Chain []*x509.Certificate
	Roots []*x509.Certificate
	ID    identity.ID
}

// Parse reads a managed Secret and checks that it holds together: the key
// matches the leaf, the leaf names the expected identity, and the chain
// verifies to the Secret's own root bundle at now.
func Parse(s *corev1.Secret, want identity.ID, now time.Time) (*Contents, error) {
	key, err := pki.DecodePrivateKey(s.Data[mesh.FilePrivateKey])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", mesh.FilePrivateKey, err)
	}
	chain, err := pki.DecodeCertificates(s.Data[mesh.FileCertChain])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", mesh.FileCertChain, err)
	}
	roots, err := pki.DecodeCertificates(s.Data[mesh.FileRootCert])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", mesh.FileRootCert, err)
	}
	if !pki.KeyMatches(key, chain[0].PublicKey) {
		return nil, fmt.Errorf("%s does not belong to the certificate in %s", mesh.FilePrivateKey, mesh.FileCertChain)
	}
	if len(chain[0].URIs) != 1 {
		return nil, fmt.Errorf("the certificate has %d URI SANs, want exactly one", len(chain[0].URIs))
	}
	got, err := identity.FromURL(chain[0].URIs[0])
	if err != nil {
		return nil, err
	}
	if got != want {
		return nil, fmt.Errorf("the certificate names %s, not %s", got, want)
	}
	if _, err := pki.Verify(chain, roots, now); err != nil {
		return nil, err
	}
	return &Contents{Key: key, Chain: chain, Roots: roots, ID: got}, nil
}

// MountName is the pod volume that holds the mounted Secret.
const MountName = "meshcert-certs"

// MountPath is where workloads and the file-mount agent read the Secret.
const MountPath = "/etc/certs"

// MountSecret adds the Secret of the pod's service account to spec as a
// read-only volume at MountPath in every container named in containers (all
// when none are named). The plugin's install and the harness use it, so
// that both lay pods out alike.
func MountSecret(spec *corev1.PodSpec, containers ...string) {
	sa := spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	spec.Volumes = append(spec.Volumes, corev1.Volume{
		Name: MountName,
		VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: SecretName(sa), DefaultMode: ptr.To[int32](0o440),
		}},
	})
	for i := range spec.Containers {
		c := &spec.Containers[i]
		if len(containers) > 0 && !slices.Contains(containers, c.Name) {
			continue
		}
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: MountName, MountPath: MountPath, ReadOnly: true})
	}
}

// ownerReference points the Secret at its ServiceAccount, so that the
// garbage collector deletes it with the service account.
func ownerReference(sa *corev1.ServiceAccount) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: "v1", Kind: "ServiceAccount", Name: sa.Name, UID: sa.UID}
}
