// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package deploy renders the mesh's in-cluster objects: the CA Deployment
// and Service, the node agent DaemonSet, and least-privilege RBAC.
package deploy

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/meshcert/kubectl-meshcert/core/ca"
	"github.com/meshcert/kubectl-meshcert/core/filemount"
	"github.com/meshcert/kubectl-meshcert/core/identity"
	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/core/monitoring/rules"
	"github.com/meshcert/kubectl-meshcert/core/token"
)

// Names of what install creates.
const (
	LabelPartOf  = "app.kubernetes.io/part-of"
	PartOfValue  = "meshcert"
	rootMountDir = "/etc/meshcert/root"
)

// Options say what to render.
type Options struct {
	Namespace   string
	Image       string
	Mode        string
	Replicas    int32
	TrustDomain string
	Audience    string
	// WorkloadCertTTL, when set, is the workload certificate lifetime the
	// agent asks for and the CA's default.
	WorkloadCertTTL time.Duration
	// MaxConcurrentSignings, when set, bounds the CA's concurrent signings.
	MaxConcurrentSignings int
	// FileMount runs the CA's file-mount controller in sds mode too, for the
	// namespaces that opt in; file-mount mode always runs it.
	FileMount bool
	// FileMountPropagation, when set, is how long the cluster's kubelets may
	// take to bring a changed Secret into pods.
	FileMountPropagation time.Duration
	// Monitoring adds the Prometheus operator's ServiceMonitor (the CA),
	// PodMonitor (the agents) and PrometheusRule (core/monitoring/rules).
	Monitoring bool
	// TokenVerification is the CA's --token-verification; empty or
	// ca.TokenVerificationReview is the CA's default. Local verification
	// lets the CA watch the metadata of every pod, service account and node,
	// and read the issuer's discovery document and keys.
	TokenVerification string
}

// Validate checks o.
func (o Options) Validate() error {
	if o.Mode != mesh.ModeSDS && o.Mode != mesh.ModeFileMount {
		return fmt.Errorf("unknown mode %q: use sds or file-mount", o.Mode)
	}
	if o.Image == "" {
		return fmt.Errorf("an image is required")
	}
	if o.Replicas < 1 {
		return fmt.Errorf("replicas %d must be at least 1", o.Replicas)
	}
	if o.WorkloadCertTTL < 0 {
		return fmt.Errorf("workload certificate lifetime %s must be positive", o.WorkloadCertTTL)
	}
	if o.MaxConcurrentSignings < 0 {
		return fmt.Errorf("max concurrent signings %d must be at least 1 (or 0 for the CA's default)", o.MaxConcurrentSignings)
	}
	if v := o.TokenVerification; v != "" && v != ca.TokenVerificationReview && v != ca.TokenVerificationLocal {
		return fmt.Errorf("unknown token verification %q: use %s or %s", v, ca.TokenVerificationReview, ca.TokenVerificationLocal)
	}
	return nil
}

func labels(component string) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":      component,
		LabelPartOf:                   PartOfValue,
		filemount.LabelManagedBy:      filemount.ManagedByValue,
		"app.kubernetes.io/component": component,
	}
}

func meta(name, namespace, component string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels(component)}
}

// Render returns the objects of o, in the order to apply them.
func Render(o Options) []runtime.Object {
	ns := o.Namespace
	selector := map[string]string{"app.kubernetes.io/name": mesh.CAName}
	caArgs := []string{
		"--namespace=" + ns,
		"--listen=:" + strconv.Itoa(mesh.CAPort),
		"--monitoring-listen=:" + strconv.Itoa(mesh.CAMonitoringPort),
		"--trust-domain=" + o.TrustDomain,
		"--audience=" + o.Audience,
		"--service-name=" + mesh.CAName,
	}
	if o.WorkloadCertTTL > 0 {
		caArgs = append(caArgs, "--workload-cert-ttl="+o.WorkloadCertTTL.String())
	}
	if o.MaxConcurrentSignings > 0 {
		caArgs = append(caArgs, "--max-concurrent-signings="+strconv.Itoa(o.MaxConcurrentSignings))
	}
	caRules := []rbacv1.PolicyRule{
		{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
		{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "watch"}},
		// The root ConfigMap only: the CA lists and watches it by name
		// (metadata.name field selector) and may update no other ConfigMap.
		// Create cannot be limited by name, so it is a rule of its own.
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{ca.RootConfigMapName}, Verbs: []string{"get", "list", "watch", "update"}},
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"create"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}
	if o.TokenVerification == ca.TokenVerificationLocal {
		caArgs = append(caArgs, "--token-verification="+ca.TokenVerificationLocal)
		caRules = append(caRules,
			// What TokenReview checks of a bound token: that its service
			// account and pod (or node) exist with its UIDs.
			rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods", "serviceaccounts", "nodes"}, Verbs: []string{"get", "list", "watch"}},
			rbacv1.PolicyRule{NonResourceURLs: []string{"/.well-known/openid-configuration", "/openid/v1/jwks"}, Verbs: []string{"get"}},
		)
	}
	var fileMountRole []runtime.Object
	if o.Mode == mesh.ModeFileMount || o.FileMount {
		caArgs = append(caArgs, "--file-mount")
		if o.FileMountPropagation > 0 {
			caArgs = append(caArgs, "--file-mount-propagation="+o.FileMountPropagation.String())
		}
		caRules = append(caRules,
			rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, Verbs: []string{"get", "list", "watch"}},
		)
		// Bound nowhere by install: `kubectl meshcert file-mount enable`
		// binds it in each namespace that opts in, so that the CA can read
		// and write Secrets there and nowhere else.
		fileMountRole = append(fileMountRole, &rbacv1.ClusterRole{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "ClusterRole"),
			ObjectMeta: meta(FileMountRoleName, "", mesh.CAName), Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "watch", "create", "update"}},
			}})
	}

	objects := []runtime.Object{
		&corev1.Namespace{TypeMeta: typeMeta("v1", "Namespace"), ObjectMeta: meta(ns, "", "namespace")},
		&corev1.ServiceAccount{TypeMeta: typeMeta("v1", "ServiceAccount"), ObjectMeta: meta(mesh.CAName, ns, mesh.CAName)},
		&rbacv1.ClusterRole{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "ClusterRole"), ObjectMeta: meta(mesh.CAName, "", mesh.CAName), Rules: caRules},
		&rbacv1.ClusterRoleBinding{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"), ObjectMeta: meta(mesh.CAName, "", mesh.CAName),
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: mesh.CAName},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: mesh.CAName, Namespace: ns}}},
		// Its own Secrets and Lease only; creates cannot be limited by name
		// in RBAC, so the CA's create policy names what it may create.
		&rbacv1.Role{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "Role"), ObjectMeta: meta(mesh.CAName, ns, mesh.CAName), Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{ca.RootSecretName, ca.PluggedInSecretName}, Verbs: []string{"get", "list", "watch", "update"}},
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create"}},
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{ca.DefaultLeaseName}, Verbs: []string{"get", "update"}},
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}},
		}},
		&rbacv1.RoleBinding{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "RoleBinding"), ObjectMeta: meta(mesh.CAName, ns, mesh.CAName),
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: mesh.CAName},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: mesh.CAName, Namespace: ns}}},
		&corev1.Service{TypeMeta: typeMeta("v1", "Service"), ObjectMeta: meta(mesh.CAName, ns, mesh.CAName), Spec: corev1.ServiceSpec{
			Selector: selector,
			Ports: []corev1.ServicePort{
				{Name: "grpc-csr", Port: mesh.CAPort, TargetPort: intstr.FromInt32(mesh.CAPort)},
				{Name: metricsPortName, Port: mesh.CAMonitoringPort, TargetPort: intstr.FromInt32(mesh.CAMonitoringPort)},
			},
		}},
		&appsv1.Deployment{TypeMeta: typeMeta("apps/v1", "Deployment"), ObjectMeta: caDeploymentMeta(ns, o.Mode), Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(o.Replicas),
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels(mesh.CAName)},
				Spec: corev1.PodSpec{
					ServiceAccountName: mesh.CAName,
					Containers: []corev1.Container{{
						Name: "ca", Image: o.Image, Command: []string{"/meshcert-ca"}, Args: caArgs,
						Ports: []corev1.ContainerPort{
							{Name: "grpc-csr", ContainerPort: mesh.CAPort}, {Name: metricsPortName, ContainerPort: mesh.CAMonitoringPort},
						},
						ReadinessProbe:  httpProbe("/readyz", mesh.CAMonitoringPort),
						LivenessProbe:   httpProbe("/healthz", mesh.CAMonitoringPort),
						SecurityContext: restricted(),
						Resources:       resources("50m", "64Mi", "2", "512Mi"),
					}},
				},
			},
		}},
	}
	objects = append(objects, fileMountRole...)
	objects = append(objects, caCreatePolicy(o.Namespace)...)
	if o.Mode == mesh.ModeSDS {
		objects = append(objects, agentPodPolicy(o.Namespace)...)
		objects = append(objects, agentObjects(o)...)
	}
	if o.Monitoring {
		objects = append(objects, monitoringObjects(o)...)
	}
	return objects
}

// metricsPortName names the monitoring port of the CA and the agents, as
// ServiceMonitor and PodMonitor refer to it.
const metricsPortName = "http-monitoring"

func monitoringObjects(o Options) []runtime.Object {
	ns := o.Namespace
	objects := []runtime.Object{
		&monitoringv1.ServiceMonitor{TypeMeta: typeMeta(monitoringv1.SchemeGroupVersion.String(), monitoringv1.ServiceMonitorsKind),
			ObjectMeta: meta(mesh.CAName, ns, mesh.CAName), Spec: monitoringv1.ServiceMonitorSpec{
				Selector:  metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": mesh.CAName}},
				Endpoints: []monitoringv1.Endpoint{{Port: metricsPortName, Path: "/metrics"}},
			}},
		&monitoringv1.PrometheusRule{TypeMeta: typeMeta(monitoringv1.SchemeGroupVersion.String(), monitoringv1.PrometheusRuleKind),
			ObjectMeta: meta(PartOfValue, ns, "monitoring"), Spec: monitoringv1.PrometheusRuleSpec{
				Groups: []monitoringv1.RuleGroup{rules.Group(rules.DefaultThresholds())},
			}},
	}
	if o.Mode == mesh.ModeSDS {
		objects = append(objects, &monitoringv1.PodMonitor{TypeMeta: typeMeta(monitoringv1.SchemeGroupVersion.String(), monitoringv1.PodMonitorsKind),
			ObjectMeta: meta(mesh.AgentName, ns, mesh.AgentName), Spec: monitoringv1.PodMonitorSpec{
				Selector:            metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": mesh.AgentName}},
				PodMetricsEndpoints: []monitoringv1.PodMetricsEndpoint{{Port: ptr.To(metricsPortName), Path: "/metrics"}},
			}})
	}
	return objects
}

func caDeploymentMeta(namespace, mode string) metav1.ObjectMeta {
	m := meta(mesh.CAName, namespace, mesh.CAName)
	m.Annotations = map[string]string{mesh.AnnotationMode: mode}
	return m
}

func agentObjects(o Options) []runtime.Object {
	ns := o.Namespace
	selector := map[string]string{"app.kubernetes.io/name": mesh.AgentName}
	hostPathType := corev1.HostPathDirectoryOrCreate
	args := []string{
		"--sds-socket=" + mesh.SocketPath,
		"--socket-mode=0666",
		"--ca-address=" + mesh.CAAddress(ns),
		"--ca-root-file=" + rootMountDir + "/" + mesh.FileRootCert,
		"--trust-domain=" + o.TrustDomain,
		"--monitoring-listen=:" + strconv.Itoa(mesh.AgentMonitoringPort),
		"--node-name=$(NODE_NAME)",
	}
	if o.WorkloadCertTTL > 0 {
		args = append(args, "--workload-cert-ttl="+o.WorkloadCertTTL.String())
	}
	// The kubelet creates the hostPath socket directory owned by root with
	// mode 0755, so the agent runs as uid 0 to create its socket there, with
	// every capability dropped and no privilege escalation.
	security := restricted()
	security.RunAsNonRoot, security.RunAsUser = ptr.To(false), ptr.To[int64](0)
	return []runtime.Object{
		&corev1.ServiceAccount{TypeMeta: typeMeta("v1", "ServiceAccount"), ObjectMeta: meta(mesh.AgentName, ns, mesh.AgentName)},
		&rbacv1.ClusterRole{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "ClusterRole"), ObjectMeta: meta(mesh.AgentName, "", mesh.AgentName), Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch", "patch"}},
		}},
		&rbacv1.ClusterRoleBinding{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"), ObjectMeta: meta(mesh.AgentName, "", mesh.AgentName),
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: mesh.AgentName},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: mesh.AgentName, Namespace: ns}}},
		&appsv1.DaemonSet{TypeMeta: typeMeta("apps/v1", "DaemonSet"), ObjectMeta: meta(mesh.AgentName, ns, mesh.AgentName), Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels(mesh.AgentName)},
				Spec: corev1.PodSpec{
					ServiceAccountName: mesh.AgentName,
					Containers: []corev1.Container{{
						Name: "agent", Image: o.Image, Command: []string{"/meshcert-agent"},
						Args:  args,
						Ports: []corev1.ContainerPort{{Name: metricsPortName, ContainerPort: mesh.AgentMonitoringPort}},
						Env:   []corev1.EnvVar{{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}},
						VolumeMounts: []corev1.VolumeMount{
							{Name: "sds", MountPath: mesh.SocketDir},
							{Name: "root", MountPath: rootMountDir, ReadOnly: true},
						},
						ReadinessProbe:  httpProbe("/readyz", mesh.AgentMonitoringPort),
						SecurityContext: security,
						Resources:       resources("10m", "32Mi", "1", "256Mi"),
					}},
					Volumes: []corev1.Volume{
						{Name: "sds", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: mesh.SocketDir, Type: &hostPathType}}},
						{Name: "root", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: ca.RootConfigMapName}}}},
					},
				},
			},
		}},
	}
}

func typeMeta(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}

func httpProbe(path string, port int) *corev1.Probe {
	return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt(port)}}, PeriodSeconds: 5}
}

func restricted() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		RunAsNonRoot:             ptr.To(true),
		RunAsUser:                ptr.To[int64](65532),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// resources bounds a container: what it asks the scheduler for, and the
// most it may take, so that a burst of calls cannot starve its node.
func resources(cpuRequest, memoryRequest, cpuLimit, memoryLimit string) corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpuRequest), corev1.ResourceMemory: resource.MustParse(memoryRequest)},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpuLimit), corev1.ResourceMemory: resource.MustParse(memoryLimit)},
	}
}

// DefaultOptions is what install renders without flags, but for the image.
func DefaultOptions() Options {
	return Options{Namespace: mesh.DefaultNamespace, Mode: mesh.ModeSDS, Replicas: 2,
		TrustDomain: identity.DefaultTrustDomain, Audience: token.DefaultAudience}
}

// Args returns the arguments of the first container of the Deployment or
// DaemonSet named name among objects: the command line install gives the
// CA or the agent.
func Args(objects []runtime.Object, name string) ([]string, error) {
	for _, obj := range objects {
		var spec *corev1.PodSpec
		switch o := obj.(type) {
		case *appsv1.Deployment:
			if o.Name == name {
				spec = &o.Spec.Template.Spec
			}
		case *appsv1.DaemonSet:
			if o.Name == name {
				spec = &o.Spec.Template.Spec
			}
		}
		if spec != nil && len(spec.Containers) > 0 {
			return spec.Containers[0].Args, nil
		}
	}
	return nil, fmt.Errorf("the rendered objects hold no Deployment or DaemonSet %s", name)
}

// SocketVolumeName is the volume MountSDSSocket adds.
const SocketVolumeName = "meshcert-sds"

// MountSDSSocket mounts the node agent's socket directory into containers
// (all when none are named), read-only: connecting to a Unix socket works
// on a read-only mount, and no workload, root or not, can then unlink the
// socket or listen in its place.
func MountSDSSocket(spec *corev1.PodSpec, containers ...string) {
	hostPathType := corev1.HostPathDirectory
	spec.Volumes = append(spec.Volumes, corev1.Volume{Name: SocketVolumeName, VolumeSource: corev1.VolumeSource{
		HostPath: &corev1.HostPathVolumeSource{Path: mesh.SocketDir, Type: &hostPathType}}})
	for i := range spec.Containers {
		c := &spec.Containers[i]
		if len(containers) > 0 && !slices.Contains(containers, c.Name) {
			continue
		}
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: SocketVolumeName, MountPath: mesh.SocketDir, ReadOnly: true})
	}
}

// NodeNameExtra is the user-info extra in which the API server names the
// node of the pod a service-account token is bound to.
const NodeNameExtra = "authentication.kubernetes.io/node-name"

// agentPodPolicy confines what the node agent's service account may change
// in pods, which its ClusterRole lets it patch: only labels and annotations
// under meshcert.io/ (its served label, reports and rotation records), and
// only on pods of the node its own token is bound to. A stolen agent token
// can then neither change a pod's spec or other labels (which Services and
// NetworkPolicies select by), nor touch pods on other nodes.
func agentPodPolicy(namespace string) []runtime.Object {
	name := mesh.AgentName + "-pod-reports-" + namespace
	// onlyMeshcertKeysChange says that every key of a metadata map outside
	// meshcert.io/ is the same in the old and the new pod.
	onlyMeshcertKeysChange := func(field string) string {
		m := func(o string) string {
			return "(has(" + o + ".metadata." + field + ") ? " + o + ".metadata." + field + " : {})"
		}
		return m("object") + ".all(k, k.startsWith('meshcert.io/') || (k in " + m("oldObject") + " && " + m("oldObject") + "[k] == " + m("object") + "[k])) && " +
			m("oldObject") + ".all(k, k.startsWith('meshcert.io/') || k in " + m("object") + ")"
	}
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		TypeMeta:   typeMeta("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy"),
		ObjectMeta: meta(name, "", mesh.AgentName),
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					// RBAC gives the agent no create, delete or subresource
					// of pods: updates of pods are all there is to confine.
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Update},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
				},
			}}},
			MatchConditions: []admissionregistrationv1.MatchCondition{{
				Name:       "is-the-node-agent",
				Expression: fmt.Sprintf("request.userInfo.username == 'system:serviceaccount:%s:%s'", namespace, mesh.AgentName),
			}},
			Validations: []admissionregistrationv1.Validation{
				{
					Expression: fmt.Sprintf("has(request.userInfo.extra) && '%[1]s' in request.userInfo.extra && size(request.userInfo.extra['%[1]s']) == 1 && object.spec.nodeName == request.userInfo.extra['%[1]s'][0]", NodeNameExtra),
					Message:    "the node agent may change only pods on the node its token is bound to",
					Reason:     ptr.To(metav1.StatusReasonForbidden),
				},
				{
					Expression: "object.spec == oldObject.spec && " + onlyMeshcertKeysChange("labels"),
					Message:    "the node agent may change only meshcert.io labels and annotations of a pod",
					Reason:     ptr.To(metav1.StatusReasonForbidden),
				},
				{
					Expression: onlyMeshcertKeysChange("annotations"),
					Message:    "the node agent may change only meshcert.io labels and annotations of a pod",
					Reason:     ptr.To(metav1.StatusReasonForbidden),
				},
			},
		},
	}
	return []runtime.Object{policy, denyBinding(policy)}
}

// FileMountRoleName is the ClusterRole that lets the CA keep key/cert
// Secrets in a namespace, bound there by FileMountRoleBinding.
const FileMountRoleName = mesh.CAName + "-file-mount"

// FileMountRoleBinding binds FileMountRoleName in namespace to the CA of
// caNamespace: what opting namespace in to the file-mount path grants.
func FileMountRoleBinding(caNamespace, namespace string) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "RoleBinding"), ObjectMeta: meta(FileMountRoleName, namespace, mesh.CAName),
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: FileMountRoleName},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: mesh.CAName, Namespace: caNamespace}}}
}

// caCreatePolicy names what the CA's service account may create, which its
// RBAC cannot: the root ConfigMap in any namespace, its own root Secret and
// Lease in its namespace, and key/cert Secrets elsewhere. A stolen CA token
// then cannot plant a ConfigMap such as kube-system/coredns.
func caCreatePolicy(namespace string) []runtime.Object {
	name := mesh.CAName + "-creates-" + namespace
	cond := func(resource, expression string) string {
		return "request.resource.resource != '" + resource + "' || (" + expression + ")"
	}
	ownNamespace := "request.namespace == '" + namespace + "'"
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		TypeMeta:   typeMeta("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy"),
		ObjectMeta: meta(name, "", mesh.CAName),
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{
				{RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps", "secrets"}},
				}},
				{RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{"coordination.k8s.io"}, APIVersions: []string{"v1"}, Resources: []string{"leases"}},
				}},
			}},
			MatchConditions: []admissionregistrationv1.MatchCondition{{
				Name:       "is-the-ca",
				Expression: fmt.Sprintf("request.userInfo.username == 'system:serviceaccount:%s:%s'", namespace, mesh.CAName),
			}},
			Validations: []admissionregistrationv1.Validation{
				{
					Expression: cond("configmaps", "object.metadata.name == '"+ca.RootConfigMapName+"'"),
					Message:    "the mesh CA may create only ConfigMaps named " + ca.RootConfigMapName,
					Reason:     ptr.To(metav1.StatusReasonForbidden),
				},
				{
					Expression: cond("secrets", "("+ownNamespace+" && object.metadata.name == '"+ca.RootSecretName+"') || (!("+ownNamespace+") && object.type == '"+string(filemount.SecretType)+"' && object.metadata.name.startsWith('"+filemount.SecretPrefix+"'))"),
					Message:    "the mesh CA may create only its root Secret " + ca.RootSecretName + " in its namespace and " + string(filemount.SecretType) + " Secrets in others",
					Reason:     ptr.To(metav1.StatusReasonForbidden),
				},
				{
					Expression: cond("leases", ownNamespace+" && object.metadata.name == '"+ca.DefaultLeaseName+"'"),
					Message:    "the mesh CA may create only its Lease " + ca.DefaultLeaseName + " in its namespace",
					Reason:     ptr.To(metav1.StatusReasonForbidden),
				},
			},
		},
	}
	return []runtime.Object{policy, denyBinding(policy)}
}

// denyBinding applies policy cluster-wide, denying what it refuses.
func denyBinding(policy *admissionregistrationv1.ValidatingAdmissionPolicy) *admissionregistrationv1.ValidatingAdmissionPolicyBinding {
	return &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		TypeMeta:   typeMeta("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding"),
		ObjectMeta: *policy.ObjectMeta.DeepCopy(),
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        policy.Name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
		},
	}
}
