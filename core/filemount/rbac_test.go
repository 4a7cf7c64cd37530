// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package filemount_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshcert/kubectl-meshcert/core/deploy"
	"github.com/meshcert/kubectl-meshcert/core/filemount"
	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/harness/localcluster"
)

// The controller runs as the CA's service account with the RBAC install
// renders: in a namespace that opted in without binding the file-mount role
// it reports the refusal with the fix, and once the role is bound there it
// writes the namespace's Secrets.
func TestSecretsOnlyWhereTheRoleIsBound(t *testing.T) {
	c := clusterFor(t, localcluster.ProfileLegacy)
	caNS := namespace(t, c.Client, false)
	render := deploy.DefaultOptions()
	render.Namespace, render.Image, render.Mode = caNS, "meshcert/meshcert:test", mesh.ModeFileMount
	for _, obj := range deploy.Render(render) {
		var err error
		switch o := obj.(type) {
		case *rbacv1.ClusterRole:
			_, err = c.Client.RbacV1().ClusterRoles().Create(t.Context(), o, metav1.CreateOptions{})
			t.Cleanup(func() {
				_ = c.Client.RbacV1().ClusterRoles().Delete(context.Background(), o.Name, metav1.DeleteOptions{})
			})
		case *rbacv1.ClusterRoleBinding:
			_, err = c.Client.RbacV1().ClusterRoleBindings().Create(t.Context(), o, metav1.CreateOptions{})
			t.Cleanup(func() {
				_ = c.Client.RbacV1().ClusterRoleBindings().Delete(context.Background(), o.Name, metav1.DeleteOptions{})
			})
		}
		require.NoError(t, err)
	}
	config := rest.CopyConfig(c.Config)
	config.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + caNS + ":" + mesh.CAName}
	asCA, err := kubernetes.NewForConfig(config)
	require.NoError(t, err)
	r := startController(t, asCA, newAuthority(t), func(o *filemount.Options) { o.ForbiddenRetry = 200 * time.Millisecond })

	ns := namespace(t, c.Client, true)
	serviceAccount(t, c.Client, ns, "app")
	// Namespaces that other tests of the shared cluster opted in count too.
	var event corev1.Event
	require.Eventually(t, func() bool {
		events, err := c.Client.CoreV1().Events(metav1.NamespaceDefault).List(t.Context(), metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("involvedObject.name", ns).String()})
		if err != nil || len(events.Items) == 0 {
			return false
		}
		event = events.Items[0]
		return true
	}, 10*time.Second, 20*time.Millisecond, "the opted-in namespace without the role binding was not reported")
	require.Equal(t, "FileMountForbidden", event.Reason)
	require.Contains(t, event.Message, "kubectl meshcert file-mount enable "+ns)
	forbidden := r.Forbidden()
	require.Positive(t, forbidden)
	_, err = c.Client.CoreV1().Secrets(ns).Get(t.Context(), filemount.SecretName("app"), metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err))

	_, err = c.Client.RbacV1().RoleBindings(ns).Create(t.Context(), deploy.FileMountRoleBinding(caNS, ns), metav1.CreateOptions{})
	require.NoError(t, err)
	waitSecret(t, c.Client, ns, filemount.SecretName("app"), 30*time.Second, nil)
	require.Eventually(t, func() bool { return r.Forbidden() == forbidden-1 }, 10*time.Second, 20*time.Millisecond,
		"the namespace still counts as refused once the role is bound")
	accounts, err := c.Client.CoreV1().ServiceAccounts(ns).List(t.Context(), metav1.ListOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return r.Managed() == len(accounts.Items) }, 10*time.Second, 20*time.Millisecond,
		"the controller does not count the Secrets it wrote")

	_, err = asCA.CoreV1().Secrets(metav1.NamespaceSystem).List(t.Context(), metav1.ListOptions{})
	require.True(t, apierrors.IsForbidden(err), "the CA read Secrets in kube-system: %v", err)
	_, err = asCA.CoreV1().Secrets(corev1.NamespaceDefault).List(t.Context(), metav1.ListOptions{})
	require.True(t, apierrors.IsForbidden(err), "the CA read Secrets in a namespace that did not opt in: %v", err)
}
