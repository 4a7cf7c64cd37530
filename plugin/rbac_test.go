// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package plugin_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshcert/kubectl-meshcert/core/ca"
	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/harness/localcluster"
	"github.com/meshcert/kubectl-meshcert/harness/localcluster/localclustertest"
)

// What install grants the CA, tried by the API server itself: impersonating
// the CA's service account, each call a compromised CA would make, and the
// calls the CA needs.
func TestCARBACAgainstTheAPIServer(t *testing.T) {
	c := clusterFor(t, localcluster.ProfileBound)
	caNS := localclustertest.UniqueName("rbac")
	applied := run(t, c, "", "install", "--mode", "sds", "-n", caNS, "--image", "meshcert/meshcert:test", "--wait=false")
	require.Equal(t, 0, applied.code, applied.stderr)
	t.Cleanup(func() { run(t, c, "", "uninstall", "--purge", "-n", caNS) })

	victim := namespace(t, c, nil)
	admin := c.Client.CoreV1().ConfigMaps(victim)
	_, err := admin.Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "coredns"}, Data: map[string]string{"Corefile": "."}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = admin.Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: ca.RootConfigMapName}, Data: map[string]string{mesh.FileRootCert: "x"}}, metav1.CreateOptions{})
	require.NoError(t, err)

	config := rest.CopyConfig(c.Config)
	config.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + caNS + ":" + mesh.CAName}
	asCA, err := kubernetes.NewForConfig(config)
	require.NoError(t, err)
	cms := asCA.CoreV1().ConfigMaps(victim)

	tests := map[string]struct {
		call      func() error
		forbidden bool
	}{
		"rewrite another ConfigMap": {forbidden: true, call: func() error {
			_, err := cms.Update(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "coredns"}, Data: map[string]string{"Corefile": "evil"}}, metav1.UpdateOptions{})
			return err
		}},
		"read another ConfigMap": {forbidden: true, call: func() error {
			_, err := cms.Get(t.Context(), "coredns", metav1.GetOptions{})
			return err
		}},
		"list every ConfigMap": {forbidden: true, call: func() error {
			_, err := asCA.CoreV1().ConfigMaps("").List(t.Context(), metav1.ListOptions{})
			return err
		}},
		"create a pod": {forbidden: true, call: func() error {
			_, err := asCA.CoreV1().Pods(victim).Create(t.Context(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "x"},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "x", Image: "x"}}}}, metav1.CreateOptions{})
			return err
		}},
		"read a Secret outside its namespace": {forbidden: true, call: func() error {
			_, err := asCA.CoreV1().Secrets(victim).List(t.Context(), metav1.ListOptions{})
			return err
		}},
		"update the root ConfigMap (needed)": {call: func() error {
			cm, err := cms.Get(t.Context(), ca.RootConfigMapName, metav1.GetOptions{})
			if err != nil {
				return err
			}
			_, err = cms.Update(t.Context(), cm, metav1.UpdateOptions{})
			return err
		}},
		"watch the root ConfigMaps everywhere by name (needed)": {call: func() error {
			_, err := asCA.CoreV1().ConfigMaps("").List(t.Context(), metav1.ListOptions{
				FieldSelector: fields.OneTermEqualSelector("metadata.name", ca.RootConfigMapName).String()})
			return err
		}},
		"review a token (needed)": {call: func() error {
			_, err := asCA.AuthenticationV1().TokenReviews().Create(t.Context(), &authenticationv1.TokenReview{
				Spec: authenticationv1.TokenReviewSpec{Token: "x"}}, metav1.CreateOptions{})
			return err
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.call()
			if tc.forbidden {
				require.True(t, apierrors.IsForbidden(err), "want Forbidden, got %v", err)
				return
			}
			require.NoError(t, err)
		})
	}
}
