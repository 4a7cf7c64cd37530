// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package kind

import (
	"context"
	"fmt"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"

	"github.com/meshcert/kubectl-meshcert/core/token"
	"github.com/meshcert/kubectl-meshcert/harness/provider"
)

// Audience is the mesh audience, as install configures it.
const Audience = token.DefaultAudience

// NoMeshTokensPolicy names the legacy profile's ValidatingAdmissionPolicy.
const NoMeshTokensPolicy = "meshcert-legacy-no-mesh-tokens"

// kubeadmIssuer is the service-account issuer kubeadm configures, which kind
// keeps.
const kubeadmIssuer = "https://kubernetes.default.svc.cluster.local"

// The patches leave apiVersion out, so that they match whichever kubeadm API
// version kind renders for the node's Kubernetes version.
const (
	// boundAudiencesPatch adds the mesh audience to the API server's
	// audiences, next to kubeadm's default issuer.
	boundAudiencesPatch = `kind: ClusterConfiguration
apiServer:
  extraArgs:
    api-audiences: "` + kubeadmIssuer + `,` + Audience + `"
`
	// kubeletPatch lets one node run the mass-start scenario's 200
	// workloads, resyncs pods every 5 s instead of every minute, so that a
	// replaced Secret reaches its volume within seconds (scenarios time the
	// file-mount path's refresh), and matches the node image's containerd
	// cgroup driver.
	kubeletPatch = `kind: KubeletConfiguration
maxPods: 250
syncFrequency: 5s
cgroupDriver: cgroupfs
`
)

// clusterConfig is the kind configuration of a profile, with the node
// image's static bridge CNI in place of kindnetd: bound has a control-plane
// and two workers, so that workloads talk across nodes and each node runs
// its own agent; legacy has one node.
func clusterConfig(profile string) (*v1alpha4.Cluster, error) {
	cfg := &v1alpha4.Cluster{
		TypeMeta:             v1alpha4.TypeMeta{Kind: "Cluster", APIVersion: "kind.x-k8s.io/v1alpha4"},
		Nodes:                []v1alpha4.Node{{Role: v1alpha4.ControlPlaneRole}},
		Networking:           v1alpha4.Networking{DisableDefaultCNI: true},
		KubeadmConfigPatches: []string{kubeletPatch},
	}
	switch profile {
	case provider.ProfileBound:
		cfg.KubeadmConfigPatches = append(cfg.KubeadmConfigPatches, boundAudiencesPatch)
		cfg.Nodes = append(cfg.Nodes, v1alpha4.Node{Role: v1alpha4.WorkerRole}, v1alpha4.Node{Role: v1alpha4.WorkerRole})
	case provider.ProfileLegacy:
		// The API server is kind's default; the admission policy applied
		// after creation takes the mesh's tokens away.
	default:
		return nil, fmt.Errorf("unknown profile %q: use %s or %s", profile, provider.ProfileBound, provider.ProfileLegacy)
	}
	return cfg, nil
}

// noMeshTokens is the legacy profile's policy: the API server refuses every
// TokenRequest for the mesh audience, so the kubelet cannot project mesh
// tokens, as on a cluster that cannot issue trustworthy JWTs.
func noMeshTokens() (*admissionregistrationv1.ValidatingAdmissionPolicy, *admissionregistrationv1.ValidatingAdmissionPolicyBinding) {
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: NoMeshTokensPolicy},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
					Rule: admissionregistrationv1.Rule{
						APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"serviceaccounts/token"},
					},
				},
			}}},
			Validations: []admissionregistrationv1.Validation{{
				Expression: fmt.Sprintf("!has(object.spec.audiences) || !object.spec.audiences.exists(a, a == '%s')", Audience),
				Message: fmt.Sprintf("this cluster issues no tokens for the mesh audience %s (meshcert legacy profile): "+
					"workloads get their certificates on the file-mount path", Audience),
			}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: NoMeshTokensPolicy},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        NoMeshTokensPolicy,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
		},
	}
	return policy, binding
}

// applyProfile applies what a profile adds after creation, waits until the
// cluster can run workloads, and confirms that the profile holds: a mesh
// token can be minted on bound and is refused on legacy.
func applyProfile(ctx context.Context, cl *Cluster) error {
	client := cl.Client
	if cl.Profile == provider.ProfileLegacy {
		policy, binding := noMeshTokens()
		if _, err := client.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create(ctx, policy, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create the legacy profile's admission policy: %w", err)
		}
		if _, err := client.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("bind the legacy profile's admission policy: %w", err)
		}
	}
	// The service-account controller and CoreDNS must be up before pods can
	// be admitted and reach the CA by name.
	err := wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		if _, err := client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{}); err != nil {
			return false, nil
		}
		dns, err := client.AppsV1().Deployments(metav1.NamespaceSystem).Get(ctx, "coredns", metav1.GetOptions{})
		return err == nil && dns.Status.ReadyReplicas > 0, nil
	})
	if err != nil {
		return fmt.Errorf("the cluster did not become ready for workloads (default ServiceAccount and CoreDNS): %w", err)
	}
	// The policy takes effect once the API server has loaded it: probe until
	// the profile's expectation holds.
	err = wait.PollUntilContextTimeout(ctx, time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).CreateToken(ctx, "default", &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{Audiences: []string{Audience}, ExpirationSeconds: ptr.To[int64](600)},
		}, metav1.CreateOptions{})
		if cl.Profile == provider.ProfileLegacy {
			return err != nil && (apierrors.IsInvalid(err) || apierrors.IsForbidden(err)), nil
		}
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("the %s profile does not hold: a TokenRequest for %s %s", cl.Profile, Audience,
			map[bool]string{true: "is still accepted", false: "is refused"}[cl.Profile == provider.ProfileLegacy])
	}
	return nil
}

// projectionRefusal deploys a pod that asks the kubelet for a projected mesh
// token and returns the FailedMount event that says why it cannot start, as
// a user of a legacy cluster would see it. The pod is deleted afterwards.
func projectionRefusal(ctx context.Context, cl *Cluster, image string) (string, error) {
	pods := cl.Client.CoreV1().Pods(metav1.NamespaceDefault)
	probe := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "meshcert-projection-probe"},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken:  ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To[int64](0),
			Containers: []corev1.Container{{Name: "probe", Image: image, Command: []string{"/meshcert-workload"},
				VolumeMounts: []corev1.VolumeMount{{Name: "mesh-token", MountPath: tokenDir}}}},
			Volumes: []corev1.Volume{provider.ProjectedTokenVolume("mesh-token", Audience)},
		},
	}
	if _, err := pods.Create(ctx, probe, metav1.CreateOptions{}); err != nil {
		return "", err
	}
	defer func() {
		_ = pods.Delete(context.WithoutCancel(ctx), probe.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	}()
	var message string
	err := wait.PollUntilContextTimeout(ctx, time.Second, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		events, err := cl.Client.CoreV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{
			FieldSelector: "involvedObject.name=" + probe.Name + ",reason=FailedMount"})
		if err != nil || len(events.Items) == 0 {
			return false, nil
		}
		message = events.Items[0].Message
		return true, nil
	})
	if err != nil {
		return "", fmt.Errorf("no FailedMount event for a pod that asks for a projected %s token: %w", Audience, err)
	}
	current, err := pods.Get(ctx, probe.Name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	if current.Status.Phase == corev1.PodRunning {
		return "", fmt.Errorf("pod %s runs although its projected %s token was refused", probe.Name, Audience)
	}
	return fmt.Sprintf("pod %s is %s; FailedMount: %s", probe.Name, current.Status.Phase, message), nil
}
