// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package preflight

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	"k8s.io/utils/ptr"

	"github.com/meshcert/kubectl-meshcert/core/ca"
	"github.com/meshcert/kubectl-meshcert/core/fleet"
	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/core/pki"
	"github.com/meshcert/kubectl-meshcert/core/pki/pkitest"
)

const (
	caNamespace = "meshcert-system"
	image       = "meshcert/meshcert:v1.0.0"
)

// healthyMesh is an installed sds mesh on one node in which every check
// passes at now.
type healthyMesh struct {
	now        time.Time
	deployment *appsv1.Deployment
	daemonSet  *appsv1.DaemonSet
	nodes      []*corev1.Node
	agentPod   *corev1.Pod
	caPod      *corev1.Pod
	lease      *coordinationv1.Lease
	namespaces []string
	// rootBundle is what each namespace's root ConfigMap holds, by
	// namespace; missing namespaces have none. Empty means the CA's.
	rootBundle map[string]string
	omitRoot   map[string]bool
	workload   *corev1.Pod
	report     fleet.SDSReport
	options    Options
	// prepare starts a root rotation.
	prepare bool
}

func newHealthyMesh(now time.Time) *healthyMesh {
	agentLabels := map[string]string{"app.kubernetes.io/name": mesh.AgentName}
	return &healthyMesh{
		now: now,
		deployment: &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: mesh.CAName, Namespace: caNamespace, Annotations: map[string]string{mesh.AnnotationMode: mesh.ModeSDS}},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": mesh.CAName}},
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "ca", Image: image}}}}},
			Status: appsv1.DeploymentStatus{AvailableReplicas: 2},
		},
		daemonSet: &appsv1.DaemonSet{
			ObjectMeta: metav1.ObjectMeta{Name: mesh.AgentName, Namespace: caNamespace},
			Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: agentLabels},
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "agent", Image: image}}}}},
		},
		nodes: []*corev1.Node{readyNode("worker-1")},
		agentPod: &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "meshcert-agent-abcde", Namespace: caNamespace, Labels: agentLabels},
			Spec:       corev1.PodSpec{NodeName: "worker-1"},
			Status:     corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
		},
		lease: &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: ca.DefaultLeaseName, Namespace: caNamespace},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("meshcert-ca-xyz"), LeaseDurationSeconds: ptr.To[int32](10),
				RenewTime: &metav1.MicroTime{Time: now.Add(-2 * time.Second)}},
		},
		namespaces: []string{caNamespace, "default"},
		rootBundle: map[string]string{},
		omitRoot:   map[string]bool{},
		workload: &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "cart-1", Namespace: "default"},
			Spec:       corev1.PodSpec{NodeName: "worker-1"},
			Status:     corev1.PodStatus{Phase: corev1.PodRunning},
		},
		report: fleet.SDSReport{SPIFFEID: "spiffe://cluster.local/ns/default/sa/cart", Serial: "01",
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(23 * time.Hour), RotationDue: now.Add(11 * time.Hour)},
		options: Options{CANamespace: caNamespace, ExpiryWarning: DefaultExpiryWarning, ClientVersion: "v1.0.0", Now: now},
	}
}

func readyNode(name string, taints ...corev1.Taint) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{Taints: taints},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
}

// run builds the cluster m describes and runs the installed checks.
func (m *healthyMesh) run(t *testing.T) map[string]Check {
	t.Helper()
	ctx := context.Background()
	var objects []runtime.Object
	for _, o := range []runtime.Object{m.deployment, m.daemonSet, m.agentPod, m.caPod, m.lease} {
		if o != nil && !isNilPointer(o) {
			objects = append(objects, o)
		}
	}
	for _, n := range m.nodes {
		objects = append(objects, n)
	}
	for _, ns := range m.namespaces {
		objects = append(objects, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}
	client := fake.NewClientset(objects...)
	var servedPods []runtime.Object
	authority, _, err := ca.LoadAuthority(ctx, client, caNamespace, func() time.Time { return m.now })
	require.NoError(t, err)
	if m.prepare {
		_, err := ca.PrepareRootRotation(ctx, client, caNamespace, ca.PhaseOptions{Now: func() time.Time { return m.now }})
		require.NoError(t, err)
	}
	bundle := pki.EncodeCertificates(authority.Roots()...)
	if m.prepare {
		s, err := client.CoreV1().Secrets(caNamespace).Get(ctx, ca.RootSecretName, metav1.GetOptions{})
		require.NoError(t, err)
		bundle = s.Data[mesh.FileRootCert]
	}
	for _, ns := range m.namespaces {
		if m.omitRoot[ns] {
			continue
		}
		data := string(bundle)
		if b, ok := m.rootBundle[ns]; ok {
			data = b
		}
		_, err := client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: ca.RootConfigMapName, Namespace: ns},
			Data: map[string]string{mesh.FileRootCert: data}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	if m.workload != nil {
		m.report.ChainsToRoot = pki.Fingerprint(authority.SigningRoot())
		w := m.workload.DeepCopy()
		require.NoError(t, fleet.MarkServed(w, m.report))
		_, err := client.CoreV1().Pods(w.Namespace).Create(ctx, w, metav1.CreateOptions{})
		require.NoError(t, err)
		servedPods = append(servedPods, &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: w.ObjectMeta})
	}

	r := &Result{}
	rec := &recorder{result: r}
	in := readInstallation(ctx, client, caNamespace)
	scheme := metadatafake.NewTestScheme()
	require.NoError(t, metav1.AddMetaToScheme(scheme))
	checkInstallation(ctx, probe{client: client, metadata: metadatafake.NewSimpleMetadataClient(scheme, servedPods...)}, m.options, in, rec)
	checks := map[string]Check{}
	for _, c := range r.Checks {
		checks[c.Name] = c
	}
	return checks
}

func isNilPointer(o runtime.Object) bool {
	switch v := o.(type) {
	case *appsv1.Deployment:
		return v == nil
	case *appsv1.DaemonSet:
		return v == nil
	case *corev1.Pod:
		return v == nil
	case *coordinationv1.Lease:
		return v == nil
	}
	return false
}

func TestInstalledChecks(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	otherRoot := string(pki.EncodeCertificates(pkitest.NewRoot(t).Chain()...))
	tests := map[string]struct {
		change func(m *healthyMesh)
		check  string
		status string
		// contains is part of the message.
		contains string
	}{
		"a healthy mesh passes": {check: "", status: Pass},
		"a CA pod cannot pull its image": {change: func(m *healthyMesh) {
			m.deployment.Status.AvailableReplicas = 1
			m.caPod = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "meshcert-ca-1", Namespace: caNamespace, Labels: map[string]string{"app.kubernetes.io/name": mesh.CAName}},
				Spec: corev1.PodSpec{NodeName: "worker-1"},
				Status: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{Name: "ca",
					State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: `Back-off pulling image "meshcert/meshcert:v9"`}}}}}}
		}, check: "ca-deployment", status: Fail, contains: "1 of 2 replicas available; pod meshcert-ca-1 on worker-1: ImagePullBackOff"},
		"no deployment: the CA runs elsewhere": {change: func(m *healthyMesh) { m.deployment = nil }, check: "ca-deployment", status: Warn},
		"the leader's lease ran out": {change: func(m *healthyMesh) {
			m.lease.Spec.RenewTime = &metav1.MicroTime{Time: now.Add(-11 * time.Second)}
		}, check: "ca-leader", status: Fail, contains: "no CA replica leads"},
		"nobody ever led": {change: func(m *healthyMesh) { m.lease = nil }, check: "ca-leader", status: Fail},
		"agents run another version": {change: func(m *healthyMesh) {
			m.daemonSet.Spec.Template.Spec.Containers[0].Image = "meshcert/meshcert:v0.9.0"
		}, check: "version-skew", status: Warn, contains: "the CA and the agents run different versions"},
		"the plugin is newer": {change: func(m *healthyMesh) { m.options.ClientVersion = "v1.1.0" }, check: "version-skew", status: Warn, contains: "the plugin and the CA and agents differ"},
		"a node has no agent": {change: func(m *healthyMesh) { m.nodes = append(m.nodes, readyNode("worker-2")) },
			check: "agents-ready", status: Fail, contains: "1 of 2 nodes lack a ready agent: node worker-2 has no agent"},
		"a tainted node the agents do not tolerate needs none": {change: func(m *healthyMesh) {
			m.nodes = append(m.nodes, readyNode("control-plane", corev1.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}))
		}, check: "agents-ready", status: Pass, contains: "each of 1 nodes"},
		"a tainted node the agents tolerate needs one": {change: func(m *healthyMesh) {
			m.nodes = append(m.nodes, readyNode("control-plane", corev1.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}))
			m.daemonSet.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
		}, check: "agents-ready", status: Fail, contains: "node control-plane has no agent"},
		"an agent crashes": {change: func(m *healthyMesh) {
			m.agentPod.Status = corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{Name: "agent",
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}}}
		}, check: "agents-ready", status: Fail, contains: "pod meshcert-agent-abcde is CrashLoopBackOff"},
		"the agents were deleted from an sds mesh": {change: func(m *healthyMesh) { m.daemonSet = nil }, check: "agents-ready", status: Fail, contains: "installed for sds"},
		"a file-mount mesh has no agents": {change: func(m *healthyMesh) {
			m.daemonSet = nil
			m.deployment.Annotations[mesh.AnnotationMode] = mesh.ModeFileMount
		}, check: "agents-ready", status: Pass},
		"a namespace lacks the root ConfigMap": {change: func(m *healthyMesh) { m.omitRoot["default"] = true },
			check: "root-configmaps", status: Fail, contains: "1 of 2 namespaces lack the CA's root bundle in ConfigMap meshcert-root-cert: default (missing)"},
		"a namespace holds another bundle": {change: func(m *healthyMesh) { m.rootBundle["default"] = otherRoot },
			check: "root-configmaps", status: Fail, contains: "default (another bundle)"},
		"the root expires within the warning": {change: func(m *healthyMesh) { m.options.ExpiryWarning = 100 * 365 * 24 * time.Hour },
			check: "root-expiry", status: Warn, contains: "expires on"},
		"the root has expired": {change: func(m *healthyMesh) { m.options.Now = now.Add(100 * 365 * 24 * time.Hour) },
			check: "root-expiry", status: Fail, contains: "expired on"},
		"a rotation is left prepared": {change: func(m *healthyMesh) { m.prepare = true }, check: "root-rotation", status: Warn, contains: "prepared"},
		"a workload certificate expired": {change: func(m *healthyMesh) { m.report.NotAfter = now.Add(-time.Minute) },
			check: "workloads", status: Fail, contains: "pod default/cart-1: expired 1m0s ago"},
		"a workload is overdue for rotation": {change: func(m *healthyMesh) { m.report.RotationDue = now.Add(-10 * time.Minute) },
			check: "workloads", status: Warn, contains: "pod default/cart-1: rotation due 10m0s ago"},
		// That a finished pod's stale report is ignored is the API server's
		// field selection, tested on a real one in package fleet.
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m := newHealthyMesh(now)
			if tc.change != nil {
				tc.change(m)
			}
			checks := m.run(t)
			if tc.check == "" {
				for _, c := range checks {
					require.Equal(t, Pass, c.Status, "%s: %s", c.Name, c.Message)
				}
				require.Len(t, checks, 9)
				return
			}
			c, ok := checks[tc.check]
			require.True(t, ok, "no check %s in %v", tc.check, checks)
			require.Equal(t, tc.status, c.Status, c.Message)
			require.Contains(t, c.Message, tc.contains)
			if tc.status != Pass {
				require.NotEmpty(t, c.Fix)
			}
		})
	}
}

func TestImageTag(t *testing.T) {
	for image, tag := range map[string]string{
		"meshcert/meshcert:v1.0.0":           "v1.0.0",
		"localhost:5000/meshcert/meshcert":   "",
		"localhost:5000/meshcert/meshcert:x": "x",
		"meshcert/meshcert@sha256:abc":       "",
		"meshcert":                           "",
	} {
		require.Equal(t, tag, imageTag(image), image)
	}
}
