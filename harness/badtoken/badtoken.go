// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package badtoken mints the service-account tokens that the mesh must
// refuse, for scenarios on any provider: one for another audience, an
// expired one signed with the cluster's key, a forged one, and one bound to
// a deleted pod.
package badtoken

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/meshcert/kubectl-meshcert/core/pki"
	"github.com/meshcert/kubectl-meshcert/harness/provider"
)

// Minter mints the tokens that the mesh must refuse, each for its own
// reason, for a pod of a real API server.
type Minter struct {
	Client kubernetes.Interface
	// Issuer is the iss claim of the cluster's service-account tokens.
	Issuer string
	// Audience is the mesh audience.
	Audience string
	// SigningKey returns the cluster's service-account signing key, PEM
	// encoded, for the expired token.
	SigningKey func(ctx context.Context) ([]byte, error)
}

// Mint returns a token of kind for pod's service account.
func (m *Minter) Mint(ctx context.Context, pod *corev1.Pod, kind string) (string, error) {
	sas := m.Client.CoreV1().ServiceAccounts(pod.Namespace)
	switch kind {
	case provider.TokenWrongAudience:
		tr, err := sas.CreateToken(ctx, pod.Spec.ServiceAccountName, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
			Audiences: []string{"not-the-mesh"}, ExpirationSeconds: ptr.To[int64](provider.TokenExpirySeconds)}}, metav1.CreateOptions{})
		if err != nil {
			return "", err
		}
		return tr.Status.Token, nil
	case provider.TokenExpired, provider.TokenForged:
		sa, err := sas.Get(ctx, pod.Spec.ServiceAccountName, metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		var key crypto.Signer
		exp := time.Now().Add(time.Hour)
		if kind == provider.TokenExpired {
			data, err := m.SigningKey(ctx)
			if err != nil {
				return "", err
			}
			if key, err = pki.DecodePrivateKey(data); err != nil {
				return "", err
			}
			exp = time.Now().Add(-time.Minute)
		} else if key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			return "", err
		}
		return signRS256(key, map[string]any{
			"iss": m.Issuer, "sub": "system:serviceaccount:" + sa.Namespace + ":" + sa.Name, "aud": []string{m.Audience},
			"exp": exp.Unix(), "iat": exp.Add(-time.Hour).Unix(), "nbf": exp.Add(-time.Hour).Unix(),
			"kubernetes.io": map[string]any{"namespace": sa.Namespace, "serviceaccount": map[string]any{"name": sa.Name, "uid": string(sa.UID)}},
		})
	case provider.TokenPodBound:
		holder, err := m.holderPod(ctx, pod, provider.TokenHolderPod(pod.Name))
		if err != nil {
			return "", err
		}
		return m.boundToken(ctx, pod, holder)
	case provider.TokenDeletedPod:
		// A token bound to a pod that no longer exists, once the API
		// server's 10s authentication cache has forgotten it.
		gone, err := m.holderPod(ctx, pod, pod.Name+"-gone")
		if err != nil {
			return "", err
		}
		tok, err := m.boundToken(ctx, pod, gone)
		if err != nil {
			return "", err
		}
		if err := m.Client.CoreV1().Pods(pod.Namespace).Delete(ctx, gone.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
			return "", err
		}
		// The API server finds pods through an informer: wait until its
		// review refuses the token, so that the workload meets a deleted
		// pod's token, not one whose deletion is still in flight.
		err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 25*time.Second, true, func(ctx context.Context) (bool, error) {
			r, err := m.Client.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
				Spec: authenticationv1.TokenReviewSpec{Token: tok, Audiences: []string{m.Audience}}}, metav1.CreateOptions{})
			return err == nil && !r.Status.Authenticated, nil
		})
		if err != nil {
			return "", fmt.Errorf("the deleted pod's token still authenticates: %w", err)
		}
		return tok, nil
	}
	return "", fmt.Errorf("unknown token %q: use %s, %s, %s, %s or %s", kind, provider.TokenWrongAudience, provider.TokenExpired, provider.TokenForged, provider.TokenDeletedPod, provider.TokenPodBound)
}

// holderPod creates a pod of pod's service account, on its node, for a
// token to be bound to; it runs nothing the workload needs.
func (m *Minter) holderPod(ctx context.Context, pod *corev1.Pod, name string) (*corev1.Pod, error) {
	return m.Client.CoreV1().Pods(pod.Namespace).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			ServiceAccountName: pod.Spec.ServiceAccountName, NodeName: pod.Spec.NodeName, AutomountServiceAccountToken: ptr.To(false),
			Containers: []corev1.Container{{Name: "holder", Image: pod.Spec.Containers[0].Image}},
		}}, metav1.CreateOptions{})
}

// boundToken is a mesh token of pod's service account bound to holder.
func (m *Minter) boundToken(ctx context.Context, pod, holder *corev1.Pod) (string, error) {
	tr, err := m.Client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, pod.Spec.ServiceAccountName, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences: []string{m.Audience}, ExpirationSeconds: ptr.To[int64](provider.TokenExpirySeconds),
		BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: holder.Name, UID: holder.UID}}}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return tr.Status.Token, nil
}

func signRS256(key crypto.Signer, claims map[string]any) (string, error) {
	enc := func(v any) (string, error) {
		data, err := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(data), err
	}
	header, err := enc(map[string]string{"alg": "RS256", "typ": "JWT"})
	if err != nil {
		return "", err
	}
	payload, err := enc(claims)
	if err != nil {
		return "", err
	}
	digest := sha256.Sum256([]byte(header + "." + payload))
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return "", err
	}
	return header + "." + payload + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}
