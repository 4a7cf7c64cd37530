// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package localclustertest shares one embedded control plane per profile
// among the tests of a package: the first test that asks starts it, and
// Main stops them all when the tests end.
package localclustertest

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"

	"github.com/meshcert/kubectl-meshcert/core/fleet"
	"github.com/meshcert/kubectl-meshcert/harness/localcluster"
)

var (
	mu       sync.Mutex
	clusters = map[localcluster.Profile]*localcluster.Cluster{}
)

// Cluster returns the package's shared cluster of profile p.
func Cluster(t testing.TB, p localcluster.Profile) *localcluster.Cluster {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if c, ok := clusters[p]; ok {
		return c
	}
	c, err := localcluster.Start(context.Background(), localcluster.Options{Profile: p})
	require.NoError(t, err)
	clusters[p] = c
	return c
}

// Bound is Cluster(t, ProfileBound).
func Bound(t testing.TB) *localcluster.Cluster { return Cluster(t, localcluster.ProfileBound) }

// Main runs the tests and stops the shared clusters. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	mu.Lock()
	for _, c := range clusters {
		_ = c.Stop()
	}
	mu.Unlock()
	os.Exit(code)
}

// Token mints a projected token for service account sa with audience,
// valid for an hour, bound to pod when pod is not nil.
func Token(t testing.TB, c *localcluster.Cluster, ns, sa, audience string, pod *corev1.Pod) string {
	t.Helper()
	spec := authenticationv1.TokenRequestSpec{Audiences: []string{audience}, ExpirationSeconds: ptr.To[int64](3600)}
	if pod != nil {
		spec.BoundObjectRef = &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}
	}
	tr, err := c.Client.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), sa, &authenticationv1.TokenRequest{Spec: spec}, metav1.CreateOptions{})
	require.NoError(t, err)
	return tr.Status.Token
}

// Pod creates a pod object of service account sa on node (no kubelet runs
// it), for tokens bound to a pod and for agent reports.
func Pod(t testing.TB, c *localcluster.Cluster, ns, name, sa, node string) *corev1.Pod {
	t.Helper()
	pod, err := c.Client.CoreV1().Pods(ns).Create(context.Background(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{ServiceAccountName: sa, NodeName: node,
			Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app"}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	return pod
}

// UniqueName is prefix and five random characters, for namespaces and
// objects that tests sharing a cluster must not share.
func UniqueName(prefix string) string { return prefix + "-" + utilrand.String(5) }

// EnsureNamespace creates namespace name in c unless it exists.
func EnsureNamespace(t testing.TB, c *localcluster.Cluster, name string) {
	t.Helper()
	_, err := c.Client.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
}

// SignToken signs claims as a JWT with key (RSA, RS256), as an API server
// signs service-account tokens.
func SignToken(t testing.TB, key crypto.Signer, claims map[string]any) string {
	t.Helper()
	return SignTokenWithHeader(t, key.(*rsa.PrivateKey), map[string]any{"alg": "RS256", "typ": "JWT"}, claims)
}

// SignTokenWithHeader signs header and claims with key as RS256, whatever
// the header says: tests vary both to forge tokens.
func SignTokenWithHeader(t testing.TB, key *rsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		data, err := json.Marshal(v)
		require.NoError(t, err)
		return base64.RawURLEncoding.EncodeToString(data)
	}
	signing := enc(header) + "." + enc(claims)
	digest := sha256.Sum256([]byte(signing))
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	require.NoError(t, err)
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// ServiceAccountClaims are the claims c's API server puts in a token of sa
// for aud, expiring at exp.
func ServiceAccountClaims(c *localcluster.Cluster, sa *corev1.ServiceAccount, aud string, exp time.Time) map[string]any {
	return map[string]any{
		"iss": c.Issuer, "sub": "system:serviceaccount:" + sa.Namespace + ":" + sa.Name,
		"aud": []string{aud}, "exp": exp.Unix(), "iat": exp.Add(-time.Hour).Unix(), "nbf": exp.Add(-time.Hour).Unix(),
		"kubernetes.io": map[string]any{
			"namespace":      sa.Namespace,
			"serviceaccount": map[string]any{"name": sa.Name, "uid": string(sa.UID)},
		},
	}
}

// TokenExpiringAt is a token of sa for aud that c's API server accepts
// until exp, which may be seconds away: TokenRequest grants ten minutes at
// least, so the token is signed with the cluster's own key.
func TokenExpiringAt(t testing.TB, c *localcluster.Cluster, sa *corev1.ServiceAccount, aud string, exp time.Time) string {
	t.Helper()
	return SignToken(t, SigningKey(t, c), ServiceAccountClaims(c, sa, aud, exp))
}

// SigningKey is c's service-account signing key.
func SigningKey(t testing.TB, c *localcluster.Cluster) *rsa.PrivateKey {
	t.Helper()
	keyPEM, err := os.ReadFile(c.SigningKeyFile)
	require.NoError(t, err)
	block, _ := pem.Decode(keyPEM)
	require.NotNil(t, block, "the cluster's signing key is PEM")
	key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		parsed, err8 := x509.ParsePKCS8PrivateKey(block.Bytes)
		require.NoError(t, err8, "the cluster's signing key: %v", err)
		key = parsed.(*rsa.PrivateKey)
	}
	return key
}

// Fleet is what fleet.Collect and the root rotation's gates read c
// through.
func Fleet(t testing.TB, c *localcluster.Cluster) fleet.Cluster {
	t.Helper()
	workloads, err := fleet.NewCluster(c.Client, c.Config)
	require.NoError(t, err)
	return workloads
}
