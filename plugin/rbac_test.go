// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package plugin_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/meshcert/kubectl-meshcert/core/ca"
	"github.com/meshcert/kubectl-meshcert/core/deploy"
	"github.com/meshcert/kubectl-meshcert/core/filemount"
	"github.com/meshcert/kubectl-meshcert/core/localreview"
	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/core/token"
	"github.com/meshcert/kubectl-meshcert/harness/localcluster"
	"github.com/meshcert/kubectl-meshcert/harness/localcluster/localclustertest"
)

// What install grants the CA, tried by the API server itself: impersonating
// the CA's service account, each call a compromised CA would make, and the
// calls the CA needs.
func TestCARBACAgainstTheAPIServer(t *testing.T) {
	c := clusterFor(t, localcluster.ProfileBound)
	caNS := localclustertest.UniqueName("rbac")
	applied := run(t, c, "", "install", "--mode", "sds", "--file-mount", "-n", caNS, "--image", "meshcert/meshcert:test", "--wait=false")
	require.Equal(t, 0, applied.code, applied.stderr)
	t.Cleanup(func() { run(t, c, "", "uninstall", "--purge", "-y", "-n", caNS) })
	optedIn := namespace(t, c, nil)
	enabled := run(t, c, "", "file-mount", "enable", optedIn, "--ca-namespace", caNS)
	require.Equal(t, 0, enabled.code, enabled.stderr)
	require.Contains(t, enabled.stdout, "namespace/"+optedIn+" opted in to the file-mount path")
	refused := run(t, c, "", "file-mount", "enable", metav1.NamespaceSystem, "--ca-namespace", caNS)
	require.Equal(t, 1, refused.code)
	require.Contains(t, refused.stderr, "would let a stolen CA token read its Secrets")
	// The CA's own Secret and Lease, as the running CA would have made them.
	for _, name := range []string{ca.RootSecretName, "other"} {
		_, err := c.Client.CoreV1().Secrets(caNS).Create(t.Context(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	_, err := c.Client.CoordinationV1().Leases(caNS).Create(t.Context(), &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: ca.DefaultLeaseName}}, metav1.CreateOptions{})
	require.NoError(t, err)

	victim := namespace(t, c, nil)
	admin := c.Client.CoreV1().ConfigMaps(victim)
	_, err = admin.Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "coredns"}, Data: map[string]string{"Corefile": "."}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = admin.Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: ca.RootConfigMapName}, Data: map[string]string{mesh.FileRootCert: "x"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		for _, name := range []string{"coredns", ca.RootConfigMapName} {
			_ = admin.Delete(context.Background(), name, metav1.DeleteOptions{})
		}
	})

	config := rest.CopyConfig(c.Config)
	config.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + caNS + ":" + mesh.CAName}
	asCA, err := kubernetes.NewForConfig(config)
	require.NoError(t, err)
	cms := asCA.CoreV1().ConfigMaps(victim)
	createConfigMap := func(ns, name string) error {
		_, err := asCA.CoreV1().ConfigMaps(ns).Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		if err == nil {
			_ = c.Client.CoreV1().ConfigMaps(ns).Delete(context.Background(), name, metav1.DeleteOptions{})
		}
		return err
	}
	createSecret := func(ns, name string, kind corev1.SecretType) error {
		_, err := asCA.CoreV1().Secrets(ns).Create(t.Context(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, Type: kind}, metav1.CreateOptions{})
		if err == nil {
			_ = c.Client.CoreV1().Secrets(ns).Delete(context.Background(), name, metav1.DeleteOptions{})
		}
		return err
	}
	// The create policy takes effect once the API server has loaded it:
	// wait for its first refusal, a positive signal.
	require.NoError(t, wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return apierrors.IsForbidden(createConfigMap(victim, "probe")), nil
	}), "the CA's create policy never refused a ConfigMap of another name")

	tests := map[string]struct {
		call      func() error
		forbidden bool
	}{
		"plant a ConfigMap in kube-system":    {forbidden: true, call: func() error { return createConfigMap(metav1.NamespaceSystem, "coredns-custom") }},
		"publish the root ConfigMap (needed)": {call: func() error { return createConfigMap(optedIn, ca.RootConfigMapName) }},
		"read a Secret in kube-system": {forbidden: true, call: func() error {
			_, err := asCA.CoreV1().Secrets(metav1.NamespaceSystem).List(t.Context(), metav1.ListOptions{})
			return err
		}},
		"list every Secret": {forbidden: true, call: func() error {
			_, err := asCA.CoreV1().Secrets("").List(t.Context(), metav1.ListOptions{})
			return err
		}},
		"read another Secret of its namespace": {forbidden: true, call: func() error {
			_, err := asCA.CoreV1().Secrets(caNS).Get(t.Context(), "other", metav1.GetOptions{})
			return err
		}},
		"create another Secret in its namespace": {forbidden: true, call: func() error { return createSecret(caNS, "planted", corev1.SecretTypeOpaque) }},
		"update its root Secret (needed)": {call: func() error {
			s, err := asCA.CoreV1().Secrets(caNS).Get(t.Context(), ca.RootSecretName, metav1.GetOptions{})
			if err != nil {
				return err
			}
			_, err = asCA.CoreV1().Secrets(caNS).Update(t.Context(), s, metav1.UpdateOptions{})
			return err
		}},
		"renew its Lease (needed)": {call: func() error {
			l, err := asCA.CoordinationV1().Leases(caNS).Get(t.Context(), ca.DefaultLeaseName, metav1.GetOptions{})
			if err != nil {
				return err
			}
			_, err = asCA.CoordinationV1().Leases(caNS).Update(t.Context(), l, metav1.UpdateOptions{})
			return err
		}},
		"create another Lease": {forbidden: true, call: func() error {
			_, err := asCA.CoordinationV1().Leases(caNS).Create(t.Context(), &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "kube-controller-manager"}}, metav1.CreateOptions{})
			return err
		}},
		"keep Secrets where the namespace opted in (needed)": {call: func() error {
			if _, err := asCA.CoreV1().Secrets(optedIn).List(t.Context(), metav1.ListOptions{}); err != nil {
				return err
			}
			return createSecret(optedIn, filemount.SecretName("app"), filemount.SecretType)
		}},
		"create an Opaque Secret where the namespace opted in": {forbidden: true, call: func() error {
			return createSecret(optedIn, "planted", corev1.SecretTypeOpaque)
		}},
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
		"read a Secret where the namespace did not opt in": {forbidden: true, call: func() error {
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

// What install lets the node agent do to pods, tried by the API server
// itself: impersonating the agent's service account with a token bound to
// node-a, it may change meshcert.io annotations of node-a's pods and
// nothing else.
func TestAgentMayOnlyReportOnItsOwnNode(t *testing.T) {
	c := clusterFor(t, localcluster.ProfileBound)
	meshNS := localclustertest.UniqueName("agentrbac")
	applied := run(t, c, "", "install", "--mode", "sds", "-n", meshNS, "--image", "meshcert/meshcert:test", "--wait=false")
	require.Equal(t, 0, applied.code, applied.stderr)
	t.Cleanup(func() { run(t, c, "", "uninstall", "--purge", "-y", "-n", meshNS) })

	ns := namespace(t, c, nil)
	onA := localclustertest.Pod(t, c, ns, "on-a", "default", "node-a")
	onB := localclustertest.Pod(t, c, ns, "on-b", "default", "node-b")
	// The reports this test writes must not outlive it: other tests of the
	// shared cluster collect every pod that reports SDS.
	t.Cleanup(func() {
		for _, p := range []string{onA.Name, onB.Name} {
			_ = c.Client.CoreV1().Pods(ns).Delete(context.Background(), p, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
		}
	})
	agent := func(extra map[string][]string) kubernetes.Interface {
		config := rest.CopyConfig(c.Config)
		config.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + meshNS + ":" + mesh.AgentName, Extra: extra}
		client, err := kubernetes.NewForConfig(config)
		require.NoError(t, err)
		return client
	}
	onNodeA := agent(map[string][]string{deploy.NodeNameExtra: {"node-a"}})
	patch := func(client kubernetes.Interface, pod, body string) error {
		_, err := client.CoreV1().Pods(ns).Patch(t.Context(), pod, types.MergePatchType, []byte(body), metav1.PatchOptions{})
		return err
	}
	report := `{"metadata":{"annotations":{"meshcert.io/sds":"{}"}}}`
	require.NoError(t, patch(c.Client, onA.Name, `{"metadata":{"labels":{"app":"web"}}}`), "a label for the agent to try to remove")

	// The policy takes effect once the API server has loaded it: wait for
	// its first refusal, a positive signal, before trying the rest.
	require.NoError(t, wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return apierrors.IsForbidden(patch(onNodeA, onB.Name, report)), nil
	}), "the agent's pod policy never refused a report on another node's pod")

	tests := map[string]struct {
		call    func() error
		allowed bool
		wantMsg string
	}{
		"report on its own node's pod (needed)": {allowed: true, call: func() error { return patch(onNodeA, onA.Name, report) }},
		"record a rotation (needed)": {allowed: true, call: func() error {
			return patch(onNodeA, onA.Name, `{"metadata":{"annotations":{"meshcert.io/rotated":"1"}}}`)
		}},
		"label a pod it serves (needed)": {allowed: true, call: func() error {
			return patch(onNodeA, onA.Name, `{"metadata":{"labels":{"meshcert.io/sds-served":"true"}}}`)
		}},
		"remove a pod's label": {call: func() error { return patch(onNodeA, onA.Name, `{"metadata":{"labels":{"app":null}}}`) },
			wantMsg: "only meshcert.io labels and annotations"},
		"report on another node's pod": {call: func() error { return patch(onNodeA, onB.Name, report) },
			wantMsg: "only pods on the node its token is bound to"},
		"relabel a pod": {call: func() error { return patch(onNodeA, onA.Name, `{"metadata":{"labels":{"app":"evil"}}}`) },
			wantMsg: "only meshcert.io labels and annotations"},
		"change a pod's image": {call: func() error {
			_, err := onNodeA.CoreV1().Pods(ns).Patch(t.Context(), onA.Name, types.StrategicMergePatchType,
				[]byte(`{"spec":{"containers":[{"name":"app","image":"evil:latest"}]}}`), metav1.PatchOptions{})
			return err
		}, wantMsg: "only meshcert.io labels and annotations"},
		"add another annotation": {call: func() error {
			return patch(onNodeA, onA.Name, `{"metadata":{"annotations":{"sidecar.istio.io/inject":"false"}}}`)
		}, wantMsg: "only meshcert.io labels and annotations"},
		"a token bound to no node": {call: func() error { return patch(agent(nil), onA.Name, report) },
			wantMsg: "only pods on the node its token is bound to"},
		"delete a pod": {call: func() error {
			return onNodeA.CoreV1().Pods(ns).Delete(t.Context(), onA.Name, metav1.DeleteOptions{})
		}},
		"create a pod": {call: func() error {
			_, err := onNodeA.CoreV1().Pods(ns).Create(t.Context(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "x"},
				Spec: corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "x", Image: "x"}}}}, metav1.CreateOptions{})
			return err
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.call()
			if tc.allowed {
				require.NoError(t, err)
				return
			}
			require.True(t, apierrors.IsForbidden(err), "want Forbidden, got %v", err)
			if tc.wantMsg != "" {
				require.ErrorContains(t, err, tc.wantMsg)
			}
		})
	}
}

// What install --token-verification=local lets the CA do, tried as its
// service account against the API server: enough for local verification to
// start and authenticate a real token, and no more than reading metadata.
func TestCALocalVerificationRBAC(t *testing.T) {
	c := clusterFor(t, localcluster.ProfileBound)
	asCA := func(caNS string) *rest.Config {
		config := rest.CopyConfig(c.Config)
		config.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + caNS + ":" + mesh.CAName}
		return config
	}
	start := func(t *testing.T, config *rest.Config) (*localreview.Verifier, error) {
		client, err := kubernetes.NewForConfig(config)
		require.NoError(t, err)
		md, err := metadata.NewForConfig(config)
		require.NoError(t, err)
		v := localreview.New(client.CoreV1().RESTClient(), md, localreview.Options{})
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		t.Cleanup(cancel)
		return v, v.Start(ctx)
	}

	defaultNS := localclustertest.UniqueName("rbac")
	applied := run(t, c, "", "install", "--mode", "sds", "-n", defaultNS, "--image", "meshcert/meshcert:test", "--wait=false")
	require.Equal(t, 0, applied.code, applied.stderr)
	t.Cleanup(func() { run(t, c, "", "uninstall", "--purge", "-y", "-n", defaultNS) })
	_, err := start(t, asCA(defaultNS))
	require.ErrorContains(t, err, "needs list and watch on pods, serviceaccounts and nodes", "the default CA may not watch pods")

	localNS := localclustertest.UniqueName("rbac")
	applied = run(t, c, "", "install", "--mode", "sds", "--token-verification", "local", "-n", localNS, "--image", "meshcert/meshcert:test", "--wait=false")
	require.Equal(t, 0, applied.code, applied.stderr)
	t.Cleanup(func() { run(t, c, "", "uninstall", "--purge", "-y", "-n", localNS) })
	verifier, err := start(t, asCA(localNS))
	require.NoError(t, err)

	ns := namespace(t, c, nil)
	_, err = c.Client.CoreV1().ServiceAccounts(ns).Create(t.Context(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "web"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	pod := localclustertest.Pod(t, c, ns, "web-0", "web", "")
	st, err := verifier.Review(t.Context(), localclustertest.Token(t, c, ns, "web", token.DefaultAudience, pod), []string{token.DefaultAudience})
	require.NoError(t, err)
	require.True(t, st.Authenticated, st.Error)
	require.Equal(t, "system:serviceaccount:"+ns+":web", st.User.Username)

	client, err := kubernetes.NewForConfig(asCA(localNS))
	require.NoError(t, err)
	_, err = client.CoreV1().Secrets("").List(t.Context(), metav1.ListOptions{})
	require.True(t, apierrors.IsForbidden(err), "want Forbidden listing Secrets, got %v", err)
	_, err = client.CoreV1().Pods(ns).Patch(t.Context(), pod.Name, types.MergePatchType, []byte(`{"metadata":{"labels":{"x":"y"}}}`), metav1.PatchOptions{})
	require.True(t, apierrors.IsForbidden(err), "want Forbidden patching a pod, got %v", err)
}
