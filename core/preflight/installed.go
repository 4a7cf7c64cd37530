// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package preflight

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/meshcert/kubectl-meshcert/core/ca"
	"github.com/meshcert/kubectl-meshcert/core/fleet"
	"github.com/meshcert/kubectl-meshcert/core/kubeapi"
	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/core/pki"
)

// installation is what install left in the CA's namespace.
type installation struct {
	namespace  string
	deployment *appsv1.Deployment
	daemonSet  *appsv1.DaemonSet
	// mode is sds when node agents are installed (or the CA says they
	// should be), else file-mount, or "" when nothing is installed.
	mode string
}

func readInstallation(ctx context.Context, client kubernetes.Interface, namespace string) *installation {
	in := &installation{namespace: namespace}
	if d, err := client.AppsV1().Deployments(namespace).Get(ctx, mesh.CAName, metav1.GetOptions{}); err == nil {
		in.deployment = d
		in.mode = mesh.ModeFileMount
		if m := d.Annotations[mesh.AnnotationMode]; m != "" {
			in.mode = m
		}
	}
	if ds, err := client.AppsV1().DaemonSets(namespace).Get(ctx, mesh.AgentName, metav1.GetOptions{}); err == nil {
		in.daemonSet = ds
		in.mode = mesh.ModeSDS
	}
	return in
}

// installPermissions asks the API server whether the caller may create what
// install creates.
func installPermissions(ctx context.Context, client kubernetes.Interface, caNamespace string, rec *recorder) {
	wanted := []authorizationv1.ResourceAttributes{
		{Verb: "create", Resource: "namespaces"},
		{Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "clusterroles"},
		{Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings"},
		{Verb: "create", Group: "admissionregistration.k8s.io", Resource: "validatingadmissionpolicies"},
		{Verb: "create", Group: "apps", Resource: "deployments", Namespace: caNamespace},
		{Verb: "create", Group: "apps", Resource: "daemonsets", Namespace: caNamespace},
		{Verb: "create", Resource: "serviceaccounts", Namespace: caNamespace},
	}
	var denied []string
	for _, attrs := range wanted {
		review, err := client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &attrs},
		}, metav1.CreateOptions{})
		if err != nil {
			rec.add("install-permissions", Warn, kubeapi.Explain(err, "ask whether install is allowed").Error(), "")
			return
		}
		if !review.Status.Allowed {
			what := attrs.Resource
			if attrs.Group != "" {
				what += "." + attrs.Group
			}
			denied = append(denied, what)
		}
	}
	if len(denied) > 0 {
		rec.add("install-permissions", Fail, "you may not create "+strings.Join(denied, ", "),
			"install as a cluster administrator (kubectl auth can-i create clusterroles)")
		return
	}
	rec.add("install-permissions", Pass, "you may create everything install creates", "")
}

// checkInstallation checks the installed mesh: the CA, the agents, the
// roots and the workloads.
func checkInstallation(ctx context.Context, c probe, o Options, in *installation, rec *recorder) {
	rec.group = GroupCA
	st, _, err := ca.ReadRotationStatus(ctx, c.client, in.namespace)
	switch {
	case err == nil:
		rec.add("ca-installed", Pass, fmt.Sprintf("mesh CA in %s (%s root %s)", in.namespace, st.Source, fleet.Short(st.SigningRoot.Fingerprint)), "")
	case errors.Is(err, ca.ErrNotInstalled):
		rec.add("ca-installed", Fail, "no mesh CA in namespace "+in.namespace,
			"kubectl meshcert install (or pass --ca-namespace; before installing, run check --pre)")
		return
	default:
		rec.add("ca-installed", Fail, "cannot read the CA: "+err.Error(), "")
		return
	}
	checkCADeployment(ctx, c.client, in, rec)
	checkLeader(ctx, c.client, in.namespace, o.Now, rec)
	checkVersionSkew(o.ClientVersion, in, rec)

	rec.group = GroupAgents
	checkAgents(ctx, c.client, in, rec)

	rec.group = GroupRoots
	checkRoots(ctx, c.client, o, st, rec)

	rec.group = GroupWorkloads
	checkWorkloads(ctx, fleet.Cluster{Client: c.client, Metadata: c.metadata}, o.Now, rec)
}

func checkCADeployment(ctx context.Context, client kubernetes.Interface, in *installation, rec *recorder) {
	d := in.deployment
	if d == nil {
		rec.add("ca-deployment", Warn, fmt.Sprintf("no deployment/%s in %s: the CA runs somewhere else", mesh.CAName, in.namespace),
			"kubectl meshcert install, unless you run the CA yourself")
		return
	}
	want := ptr.Deref(d.Spec.Replicas, 1)
	if d.Status.AvailableReplicas >= want && want > 0 {
		rec.add("ca-deployment", Pass, fmt.Sprintf("deployment/%s: %d of %d replicas available", mesh.CAName, d.Status.AvailableReplicas, want), "")
		return
	}
	reasons := waitingReasons(ctx, client, in.namespace, d.Spec.Selector)
	rec.add("ca-deployment", Fail, fmt.Sprintf("deployment/%s: %d of %d replicas available%s", mesh.CAName, d.Status.AvailableReplicas, want, reasons),
		fmt.Sprintf("kubectl -n %s describe pods -l app.kubernetes.io/name=%s", in.namespace, mesh.CAName))
}

// waitingReasons says why a selector's pods are not ready, as
// "; pod p: ImagePullBackOff (message)".
func waitingReasons(ctx context.Context, client kubernetes.Interface, namespace string, selector *metav1.LabelSelector) string {
	sel, err := metav1.LabelSelectorAsSelector(selector)
	if err != nil {
		return ""
	}
	pods, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return ""
	}
	var out []string
	for _, p := range pods.Items {
		if r := notReady(&p); r != "" {
			out = append(out, fmt.Sprintf("pod %s on %s: %s", p.Name, orNone(p.Spec.NodeName), r))
		}
	}
	if len(out) == 0 {
		return ""
	}
	return "; " + strings.Join(out, "; ")
}

// notReady says why a pod is not ready, or "" when it is.
func notReady(p *corev1.Pod) string {
	_, text := kubeapi.PodProblem(p)
	return text
}

func orNone(s string) string {
	if s == "" {
		return "no node"
	}
	return s
}

func checkLeader(ctx context.Context, client kubernetes.Interface, namespace string, now time.Time, rec *recorder) {
	lease, err := client.CoordinationV1().Leases(namespace).Get(ctx, ca.DefaultLeaseName, metav1.GetOptions{})
	const fix = "see the CA's logs: kubectl -n %s logs -l app.kubernetes.io/name=%s"
	if err != nil {
		rec.add("ca-leader", Fail, kubeapi.Explain(err, "read the CA's leader lease").Error(), fmt.Sprintf(fix, namespace, mesh.CAName))
		return
	}
	holder := ptr.Deref(lease.Spec.HolderIdentity, "")
	duration := time.Duration(ptr.Deref(lease.Spec.LeaseDurationSeconds, 0)) * time.Second
	if holder == "" || lease.Spec.RenewTime == nil || now.After(lease.Spec.RenewTime.Add(duration)) {
		rec.add("ca-leader", Fail, "no CA replica leads: root ConfigMaps, file-mount Secrets and root rotations are not kept",
			fmt.Sprintf(fix, namespace, mesh.CAName))
		return
	}
	rec.add("ca-leader", Pass, fmt.Sprintf("%s leads (renewed %s ago)", holder, now.Sub(lease.Spec.RenewTime.Time).Round(time.Second)), "")
}

// imageTag is the tag of an image reference, or "" for a digest or none.
func imageTag(image string) string {
	if strings.Contains(image, "@") {
		return ""
	}
	i := strings.LastIndex(image, ":")
	if i < 0 || strings.Contains(image[i:], "/") {
		return ""
	}
	return image[i+1:]
}

func checkVersionSkew(client string, in *installation, rec *recorder) {
	images := map[string]string{}
	if in.deployment != nil && len(in.deployment.Spec.Template.Spec.Containers) > 0 {
		images["CA"] = in.deployment.Spec.Template.Spec.Containers[0].Image
	}
	if in.daemonSet != nil && len(in.daemonSet.Spec.Template.Spec.Containers) > 0 {
		images["agents"] = in.daemonSet.Spec.Template.Spec.Containers[0].Image
	}
	if len(images) == 0 {
		return
	}
	var parts, skewed []string
	for _, who := range []string{"CA", "agents"} {
		image, ok := images[who]
		if !ok {
			continue
		}
		parts = append(parts, who+" "+image)
		if client != "" && imageTag(image) != client {
			skewed = append(skewed, who)
		}
	}
	summary := fmt.Sprintf("plugin %s; %s", client, strings.Join(parts, ", "))
	switch {
	case len(images) == 2 && imageTag(images["CA"]) != imageTag(images["agents"]):
		rec.add("version-skew", Warn, "the CA and the agents run different versions: "+summary, "kubectl meshcert install --image <one image>")
	case len(skewed) > 0:
		rec.add("version-skew", Warn, "the plugin and the "+strings.Join(skewed, " and ")+" differ: "+summary,
			"install the plugin of the installed version (kubectl krew upgrade meshcert), or upgrade the mesh with kubectl meshcert install")
	default:
		rec.add("version-skew", Pass, summary, "")
	}
}

func checkAgents(ctx context.Context, client kubernetes.Interface, in *installation, rec *recorder) {
	ds := in.daemonSet
	if ds == nil {
		if in.mode == mesh.ModeSDS {
			rec.add("agents-ready", Fail, fmt.Sprintf("the mesh was installed for sds but daemonset/%s is missing", mesh.AgentName), "kubectl meshcert install --mode sds")
			return
		}
		rec.add("agents-ready", Pass, "no node agents: the mesh serves the file-mount path only", "")
		return
	}
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		rec.add("agents-ready", Warn, kubeapi.Explain(err, "list nodes").Error(), "")
		return
	}
	sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil {
		rec.add("agents-ready", Fail, "the agents' selector is invalid: "+err.Error(), "kubectl meshcert install")
		return
	}
	pods, err := client.CoreV1().Pods(in.namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		rec.add("agents-ready", Warn, kubeapi.Explain(err, "list agent pods").Error(), "")
		return
	}
	byNode := map[string]*corev1.Pod{}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp == nil && (byNode[p.Spec.NodeName] == nil || notReady(p) == "") {
			byNode[p.Spec.NodeName] = p
		}
	}
	var missing []string
	covered := 0
	for _, n := range nodes.Items {
		if !runsDaemonSet(&n, ds) {
			continue
		}
		covered++
		p := byNode[n.Name]
		switch {
		case p == nil:
			missing = append(missing, fmt.Sprintf("node %s has no agent", n.Name))
		case notReady(p) != "":
			missing = append(missing, fmt.Sprintf("node %s: pod %s is %s", n.Name, p.Name, notReady(p)))
		}
	}
	if len(missing) > 0 {
		rec.add("agents-ready", Fail, fmt.Sprintf("%d of %d nodes lack a ready agent: %s", len(missing), covered, strings.Join(missing, "; ")),
			fmt.Sprintf("kubectl -n %s describe pods -l app.kubernetes.io/name=%s", in.namespace, mesh.AgentName))
		return
	}
	rec.add("agents-ready", Pass, fmt.Sprintf("a ready agent on each of %d nodes", covered), "")
}

// runsDaemonSet reports whether a node should run a pod of ds: it is ready,
// and ds tolerates its NoSchedule and NoExecute taints.
func runsDaemonSet(n *corev1.Node, ds *appsv1.DaemonSet) bool {
	ready := slices.ContainsFunc(n.Status.Conditions, func(c corev1.NodeCondition) bool {
		return c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue
	})
	if !ready {
		return false
	}
	if sel := ds.Spec.Template.Spec.NodeSelector; len(sel) > 0 && !labels.SelectorFromSet(sel).Matches(labels.Set(n.Labels)) {
		return false
	}
	for _, taint := range n.Spec.Taints {
		if taint.Effect == corev1.TaintEffectPreferNoSchedule {
			continue
		}
		if !slices.ContainsFunc(ds.Spec.Template.Spec.Tolerations, func(t corev1.Toleration) bool { return t.ToleratesTaint(klog.Background(), &taint, false) }) {
			return false
		}
	}
	return true
}

func checkRoots(ctx context.Context, client kubernetes.Interface, o Options, st *ca.RotationStatus, rec *recorder) {
	root := st.SigningRoot
	left := root.NotAfter.Sub(o.Now)
	const rotateFix = "rotate the root: kubectl meshcert rotate root --phase prepare (then activate, then finish)"
	switch {
	case left <= 0:
		rec.add("root-expiry", Fail, fmt.Sprintf("the signing root %s expired on %s: no workload certificate verifies", fleet.Short(root.Fingerprint), root.NotAfter.Format(time.DateOnly)), rotateFix)
	case left < o.ExpiryWarning:
		rec.add("root-expiry", Warn, fmt.Sprintf("the signing root %s expires on %s, in %s", fleet.Short(root.Fingerprint), root.NotAfter.Format(time.DateOnly), pki.Remaining(root.NotAfter, o.Now)), rotateFix)
	default:
		rec.add("root-expiry", Pass, fmt.Sprintf("the signing root %s expires on %s, in %s", fleet.Short(root.Fingerprint), root.NotAfter.Format(time.DateOnly), pki.Remaining(root.NotAfter, o.Now)), "")
	}

	switch st.Phase {
	case ca.PhasePrepared:
		rec.add("root-rotation", Warn, fmt.Sprintf("a root rotation is prepared (new root %s) and not yet activated", fleet.Short(st.Next.Fingerprint)),
			"kubectl meshcert rotate root status; then kubectl meshcert rotate root --phase activate --wait 10m")
	case ca.PhaseActivated:
		rec.add("root-rotation", Warn, "a root rotation is activated and not yet finished: the old root is still trusted",
			"kubectl meshcert rotate root status; then kubectl meshcert rotate root --phase finish --wait 10m")
	default:
		rec.add("root-rotation", Pass, "no root rotation under way", "")
	}

	want := make([]string, 0, len(st.Bundle))
	for _, r := range st.Bundle {
		want = append(want, r.Fingerprint)
	}
	slices.Sort(want)
	namespaces, err := client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		rec.add("root-configmaps", Warn, kubeapi.Explain(err, "list namespaces").Error(), "")
		return
	}
	cms, err := client.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + ca.RootConfigMapName})
	if err != nil {
		rec.add("root-configmaps", Warn, kubeapi.Explain(err, "list root ConfigMaps").Error(), "")
		return
	}
	held := map[string]string{}
	for _, cm := range cms.Items {
		held[cm.Namespace] = cm.Data[mesh.FileRootCert]
	}
	var wrong []string
	active := 0
	for _, ns := range namespaces.Items {
		if ns.Status.Phase == corev1.NamespaceTerminating {
			continue
		}
		active++
		bundle, ok := held[ns.Name]
		if !ok {
			wrong = append(wrong, ns.Name+" (missing)")
			continue
		}
		if got := bundleFingerprints(bundle); !slices.Equal(got, want) {
			wrong = append(wrong, ns.Name+" (another bundle)")
		}
	}
	if len(wrong) > 0 {
		rec.add("root-configmaps", Fail, fmt.Sprintf("%d of %d namespaces lack the CA's root bundle in ConfigMap %s: %s", len(wrong), active, ca.RootConfigMapName, abbreviate(wrong, 5)),
			"the CA's leader publishes it: see ca-leader above, and the CA's logs")
		return
	}
	rec.add("root-configmaps", Pass, fmt.Sprintf("all %d namespaces hold the CA's root bundle (%d root(s))", active, len(want)), "")
}

func bundleFingerprints(pemData string) []string {
	certs, err := pki.DecodeCertificates([]byte(pemData))
	if err != nil {
		return nil
	}
	fps := make([]string, len(certs))
	for i, c := range certs {
		fps[i] = pki.Fingerprint(c)
	}
	slices.Sort(fps)
	return fps
}

// abbreviate joins the first n items and counts the rest.
func abbreviate(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}

// rotationSlack is how long past its rotation point a certificate may stay
// before check calls it overdue: a renewal takes well under a second, but
// retries back off.
const rotationSlack = 2 * time.Minute

func checkWorkloads(ctx context.Context, c fleet.Cluster, now time.Time, rec *recorder) {
	ws, err := fleet.Collect(ctx, c, "", nil, now)
	if err != nil {
		rec.add("workloads", Warn, kubeapi.Explain(err, "collect workload certificates").Error(), "")
		return
	}
	var failed, overdue []string
	for _, w := range ws {
		name := fmt.Sprintf("%s %s/%s", strings.ToLower(w.Kind), w.Namespace, w.Name)
		switch {
		case w.Problem != "":
			failed = append(failed, name+": "+w.Problem)
		case !w.NotAfter.After(now):
			failed = append(failed, fmt.Sprintf("%s: expired %s ago", name, now.Sub(w.NotAfter).Round(time.Second)))
		case !w.RotationDue.IsZero() && now.After(w.RotationDue.Add(rotationSlack)):
			overdue = append(overdue, fmt.Sprintf("%s: rotation due %s ago, expires in %s", name, now.Sub(w.RotationDue).Round(time.Second), w.Remaining))
		}
	}
	const fix = "kubectl meshcert inspect -A -o wide; for one workload, kubectl meshcert inspect pod|secret NAME"
	switch {
	case len(failed) > 0:
		rec.add("workloads", Fail, fmt.Sprintf("%d of %d workload certificates are unusable: %s", len(failed), len(ws), abbreviate(failed, 5)), fix)
	case len(overdue) > 0:
		rec.add("workloads", Warn, fmt.Sprintf("%d of %d workload certificates are overdue for rotation: %s", len(overdue), len(ws), abbreviate(overdue, 5)),
			fix+"; is the CA reachable from the agents (kubectl meshcert check, ca-leader)?")
	default:
		rec.add("workloads", Pass, fmt.Sprintf("%d workload certificates, none expired, failing or overdue", len(ws)), "")
	}
}
