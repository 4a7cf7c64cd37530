// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package install is `kubectl meshcert install` and `uninstall`. What is
// installed is core/deploy's; this package resolves the mode, applies the
// objects and waits for the rollout.
package install

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"github.com/meshcert/kubectl-meshcert/core/ca"
	"github.com/meshcert/kubectl-meshcert/core/deploy"
	"github.com/meshcert/kubectl-meshcert/core/filemount"
	"github.com/meshcert/kubectl-meshcert/core/kubeapi"
	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/core/preflight"
	"github.com/meshcert/kubectl-meshcert/plugin/cluster"
	"github.com/meshcert/kubectl-meshcert/plugin/command"
	"github.com/meshcert/kubectl-meshcert/plugin/output"
	"github.com/meshcert/kubectl-meshcert/plugin/version"
)

// Values of --dry-run.
const (
	DryRunNone   = "none"
	DryRunClient = "client"
	DryRunServer = "server"
)

// DefaultRender is what install renders without flags.
func DefaultRender() deploy.Options {
	o := deploy.DefaultOptions()
	o.Image = "meshcert/meshcert:" + version.Current()
	return o
}

// InstallOptions are install's flags and state.
type InstallOptions struct {
	Render  deploy.Options
	Mode    string
	DryRun  string
	Output  output.Options
	Wait    bool
	Timeout time.Duration
	genericiooptions.IOStreams

	factory *cluster.Factory
	clients *cluster.Clients
}

// NewCommand returns install.
func NewCommand(factory *cluster.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &InstallOptions{factory: factory, IOStreams: streams, Mode: mesh.ModeAuto, DryRun: DryRunNone, Wait: true, Timeout: 5 * time.Minute,
		Render: DefaultRender()}
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Install the mesh CA (and, for sds, the node agent DaemonSet)",
		Long: `Install renders the manifests (Namespace, ServiceAccounts, least-privilege RBAC, the CA Deployment and Service,
and for sds the agent DaemonSet with a hostPath socket directory), applies them server-side and waits for the
rollout. --mode auto asks check which path the cluster supports. It is idempotent.`,
		Example: `  # Install on the path the cluster supports, and wait for the rollout
  kubectl meshcert install

  # Print the manifests for the file-mount path, and change nothing
  kubectl meshcert install --mode file-mount --dry-run=client -o yaml`,
		Args: cobra.NoArgs,
		RunE: command.RunE(o),
	}
	f := cmd.Flags()
	f.StringVar(&o.Mode, "mode", o.Mode, "auto, sds or file-mount")
	f.StringVar(&o.Render.Image, "image", o.Render.Image, "image holding /meshcert-ca and /meshcert-agent")
	f.Int32Var(&o.Render.Replicas, "replicas", o.Render.Replicas, "CA replicas")
	f.StringVar(&o.Render.TrustDomain, "trust-domain", o.Render.TrustDomain, "SPIFFE trust domain")
	f.StringVar(&o.Render.Audience, "audience", o.Render.Audience, "mesh audience")
	f.DurationVar(&o.Render.WorkloadCertTTL, "workload-cert-ttl", 0, "workload certificate lifetime (default: the CA's and agent's own, 24h)")
	f.BoolVar(&o.Render.FileMount, "file-mount", false, "with --mode sds, also keep key/cert Secrets for namespaces labelled "+filemount.LabelNamespaceOptIn+"="+filemount.OptInValue)
	f.DurationVar(&o.Render.FileMountPropagation, "file-mount-propagation", 0, "how long the kubelets may take to bring a changed Secret into pods; root rotation waits this long (default: the CA's own, 90s)")
	f.IntVar(&o.Render.MaxConcurrentSignings, "max-concurrent-signings", 0, "signings the CA serves at once before answering ResourceExhausted (default: the CA's own)")
	f.StringVar(&o.Render.TokenVerification, "token-verification", ca.TokenVerificationReview, "how the CA authenticates workload tokens: tokenreview (a TokenReview each) or local (the issuer's keys and watches of pods, service accounts and nodes; no TokenReview)")
	f.StringVar(&o.DryRun, "dry-run", o.DryRun, `"client" prints the manifests and changes nothing; "server" sends them to the API server, which admits and validates them (RBAC, admission policies) and stores nothing`)
	f.Lookup("dry-run").NoOptDefVal = DryRunClient
	o.Output.AddFlags(cmd)
	f.BoolVar(&o.Render.Monitoring, "monitoring", false, "also install the Prometheus operator's ServiceMonitor, PodMonitor and PrometheusRule (with meshcert's alerts), where the cluster serves them")
	f.BoolVar(&o.Wait, "wait", o.Wait, "wait for the rollout")
	f.DurationVar(&o.Timeout, "timeout", o.Timeout, "how long to wait for the rollout")
	return cmd
}

// Validate checks the flags, before any API call.
func (o *InstallOptions) Validate() error {
	switch o.DryRun {
	case DryRunNone, DryRunClient, DryRunServer:
	default:
		return fmt.Errorf("--dry-run=%s: use client or server (or leave it out)", o.DryRun)
	}
	if err := o.Output.Validate(); err != nil {
		return err
	}
	if o.Output.Format != "" && o.DryRun != DryRunClient {
		return fmt.Errorf("-o prints manifests: use it with --dry-run=client")
	}
	if _, err := mesh.ResolveMode(o.Mode, false); err != nil || o.Mode == "" {
		return fmt.Errorf("unknown --mode %q: use auto, sds or file-mount", o.Mode)
	}
	if o.Timeout <= 0 {
		return fmt.Errorf("--timeout %s must be positive", o.Timeout)
	}
	return nil
}

// Complete has nothing to fill in: install takes no arguments.
func (o *InstallOptions) Complete([]string) error { return nil }

// connect builds the clients where install needs the cluster (everything
// but a client-side dry run of an explicit mode), and takes -n as the CA's
// namespace.
func (o *InstallOptions) connect() error {
	o.Render.Namespace = caNamespace(o.factory, o.Render.Namespace)
	if o.DryRun == DryRunClient && o.Mode != mesh.ModeAuto {
		return nil
	}
	var err error
	o.clients, err = o.factory.Clients()
	return err
}

// caNamespace is the namespace -n gives, or else def: install and
// uninstall take -n as the CA's namespace.
func caNamespace(f *cluster.Factory, def string) string {
	if ns, explicit, err := f.Namespace(); err == nil && explicit {
		return ns
	}
	return def
}

// Run resolves the mode, then prints or applies the objects and waits for
// the rollout.
func (o *InstallOptions) Run(ctx context.Context) error {
	if err := o.connect(); err != nil {
		return err
	}
	o.Render.Mode = o.Mode
	if o.Mode == mesh.ModeAuto {
		result, err := preflight.Run(ctx, o.clients.Fleet, preflight.Options{
			Server: o.clients.Config.Host, Namespace: o.clients.Namespace, Audience: o.Render.Audience, CANamespace: o.Render.Namespace, Pre: true,
		})
		if err != nil {
			return err
		}
		if o.Render.Mode, err = mesh.ResolveMode(o.Mode, result.TrustworthyJWT); err != nil {
			return err
		}
		fmt.Fprintf(o.ErrOut, "mode auto: check recommends %s (trustworthy JWTs: %t)\n", o.Render.Mode, result.TrustworthyJWT)
	}
	if err := o.Render.Validate(); err != nil {
		return err
	}
	objects := deploy.Render(o.Render)
	if o.DryRun == DryRunClient {
		return printManifests(o.Out, objects, o.Output.Format)
	}
	if o.Render.Monitoring {
		var err error
		if objects, err = withoutUnservedMonitoring(o.clients, objects, o.ErrOut); err != nil {
			return err
		}
	}
	if o.DryRun == DryRunServer {
		// Nothing is stored, so the CA's namespace cannot be created on
		// the way: the namespaced objects would meet a missing namespace.
		_, err := o.clients.Client.CoreV1().Namespaces().Get(ctx, o.Render.Namespace, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("namespace %s does not exist, and a server dry run stores nothing, so it cannot create it first: create it (kubectl create namespace %s) or use --dry-run=client", o.Render.Namespace, o.Render.Namespace)
		}
		return apply(ctx, o.clients, objects, o.Out, true)
	}
	if err := Apply(ctx, o.clients, objects, o.Out); err != nil {
		return err
	}
	if o.Wait {
		return o.waitRollout(ctx)
	}
	return nil
}

// UninstallOptions are uninstall's flags and state.
type UninstallOptions struct {
	Render deploy.Options
	Purge  bool
	// Yes purges without asking.
	Yes bool
	genericiooptions.IOStreams

	factory *cluster.Factory
	clients *cluster.Clients
}

// NewUninstallCommand returns uninstall.
func NewUninstallCommand(factory *cluster.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &UninstallOptions{factory: factory, IOStreams: streams, Render: DefaultRender()}
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Remove what install created; with --purge also the CA root, root ConfigMaps and file-mount Secrets",
		Example: `  # Remove the CA and the agent; keep the root and every issued certificate
  kubectl meshcert uninstall

  # Remove everything, the CA root and the file-mount Secrets included (asks first)
  kubectl meshcert uninstall --purge

  # The same in a script, without asking
  kubectl meshcert uninstall --purge -y`,
		Args: cobra.NoArgs,
		RunE: command.RunE(o),
	}
	cmd.Flags().BoolVar(&o.Purge, "purge", false, "also delete the CA root Secret and namespace, the root ConfigMaps and the file-mount Secrets (workloads lose their certificates); asks first unless -y")
	cmd.Flags().BoolVarP(&o.Yes, "yes", "y", false, "purge without asking")
	return cmd
}

// confirmPurge asks on In to type the CA's namespace before a purge, which
// withdraws every certificate the mesh issued.
func (o *UninstallOptions) confirmPurge() error {
	if !o.Purge || o.Yes {
		return nil
	}
	fmt.Fprintf(o.ErrOut, "uninstall --purge deletes the CA root in %s, every root ConfigMap and every file-mount Secret: "+
		"workloads lose their certificates and trust. Type the namespace %s to go on: ", o.Render.Namespace, o.Render.Namespace)
	answer, err := bufio.NewReader(o.In).ReadString('\n')
	if strings.TrimSpace(answer) == o.Render.Namespace {
		return nil
	}
	if strings.TrimSpace(answer) == "" && err != nil {
		return errors.New("uninstall --purge needs a confirmation and none was typed: run it in a terminal, or pass -y (--yes) to purge without asking")
	}
	return fmt.Errorf("uninstall --purge not confirmed (typed %q, not %q): nothing was deleted", strings.TrimSpace(answer), o.Render.Namespace)
}

// Complete has nothing to fill in: uninstall takes no arguments.
func (o *UninstallOptions) Complete([]string) error { return nil }

// Validate has nothing to check.
func (o *UninstallOptions) Validate() error { return nil }

// connect builds the clients and takes -n as the CA's namespace.
func (o *UninstallOptions) connect() error {
	o.Render.Namespace = caNamespace(o.factory, o.Render.Namespace)
	var err error
	o.clients, err = o.factory.Clients()
	return err
}

func printManifests(w io.Writer, objects []runtime.Object, format string) error {
	if format == "json" {
		list := &corev1.List{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "List"}}
		for _, obj := range objects {
			list.Items = append(list.Items, runtime.RawExtension{Object: obj})
		}
		return (&printers.JSONPrinter{}).PrintObj(list, w)
	}
	// The YAML printer separates the documents with ---.
	yamlPrinter := &printers.YAMLPrinter{}
	for _, obj := range objects {
		if err := yamlPrinter.PrintObj(obj, w); err != nil {
			return err
		}
	}
	return nil
}

// Apply applies objects server-side, in order, printing a line each.
func Apply(ctx context.Context, c *cluster.Clients, objects []runtime.Object, out io.Writer) error {
	return apply(ctx, c, objects, out, false)
}

// apply applies objects, or with dryRun has the API server admit and
// validate them without storing anything.
func apply(ctx context.Context, c *cluster.Clients, objects []runtime.Object, out io.Writer, dryRun bool) error {
	opts, done := metav1.PatchOptions{FieldManager: mesh.FieldManager, Force: ptr.To(true)}, "applied"
	if dryRun {
		opts.DryRun, done = []string{metav1.DryRunAll}, "applied (server dry run)"
	}
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(c.Client.Discovery()))
	for _, obj := range objects {
		content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return err
		}
		u := &unstructured.Unstructured{Object: content}
		unstructured.RemoveNestedField(u.Object, "status")
		unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
		mapping, err := mapper.RESTMapping(u.GroupVersionKind().GroupKind(), u.GroupVersionKind().Version)
		if err != nil {
			return err
		}
		var resource dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
		if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
			resource = dyn.Resource(mapping.Resource).Namespace(u.GetNamespace())
		}
		data, err := json.Marshal(u)
		if err != nil {
			return err
		}
		if _, err := resource.Patch(ctx, u.GetName(), types.ApplyPatchType, data, opts); err != nil {
			return kubeapi.Explain(err, fmt.Sprintf("apply %s %s", u.GetKind(), u.GetName()))
		}
		fmt.Fprintf(out, "%s/%s %s\n", strings.ToLower(u.GetKind()), u.GetName(), done)
	}
	return nil
}

// withoutUnservedMonitoring leaves out the Prometheus operator's objects
// whose kinds the cluster does not serve, saying so.
func withoutUnservedMonitoring(c *cluster.Clients, objects []runtime.Object, errOut io.Writer) ([]runtime.Object, error) {
	group := monitoringv1.SchemeGroupVersion
	served := map[string]bool{}
	resources, err := c.Client.Discovery().ServerResourcesForGroupVersion(group.String())
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return nil, kubeapi.Explain(err, "discover "+group.String())
	default:
		for _, r := range resources.APIResources {
			served[r.Kind] = true
		}
	}
	kept := objects[:0:0]
	var skipped []string
	for _, obj := range objects {
		gvk := obj.GetObjectKind().GroupVersionKind()
		if gvk.GroupVersion() == group && !served[gvk.Kind] {
			skipped = append(skipped, gvk.Kind)
			continue
		}
		kept = append(kept, obj)
	}
	if len(skipped) > 0 {
		fmt.Fprintf(errOut, "monitoring: the cluster does not serve %s (%s): left out; without the Prometheus operator, load the rules file core/monitoring/rules/meshcert.rules.yaml (also in the release archives) into Prometheus and scrape port %s of the CA and the agents\n",
			strings.Join(skipped, ", "), group.String(), "http-monitoring")
	}
	return kept, nil
}

// rolloutPoll is how often install looks at the rollout.
const rolloutPoll = time.Second

// waitRollout follows the rollout with kstatus, the rules kubectl and
// Flux share for when an object is rolled out. As soon as
// a pod is stuck it prints why, with the pod's warning Events, and it fails
// at once when a pod cannot start (its image cannot be pulled, say) or the
// Deployment exceeds its progress deadline; otherwise at --timeout, naming
// what it still waits for.
func (o *InstallOptions) waitRollout(ctx context.Context) error {
	ns := o.Render.Namespace
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	kinds, names := []string{"Deployment"}, []string{mesh.CAName}
	if o.Render.Mode == mesh.ModeSDS {
		kinds, names = append(kinds, "DaemonSet"), append(names, mesh.AgentName)
	}
	printed := map[string]bool{} // status lines, pod problems and events, each once
	say := func(line string) {
		if !printed[line] {
			printed[line] = true
			fmt.Fprintln(o.Out, line)
		}
	}
	var waiting []string
	for {
		waiting = waiting[:0]
		for i, kind := range kinds {
			ref := strings.ToLower(kind) + "/" + names[i]
			obj, selector, err := o.rolloutObject(ctx, kind, names[i])
			if err != nil {
				if ctx.Err() != nil {
					break
				}
				return err
			}
			result, err := status.Compute(obj)
			if err != nil {
				return fmt.Errorf("%s: %w", ref, err)
			}
			say(fmt.Sprintf("%s: %s", ref, result.Message))
			switch result.Status {
			case status.CurrentStatus:
				continue
			case status.FailedStatus:
				return fmt.Errorf("%s failed: %s (kubectl -n %s describe %s)", ref, result.Message, ns, ref)
			}
			waiting = append(waiting, ref)
			if err := o.diagnosePods(ctx, selector, say); err != nil {
				return err
			}
		}
		if len(waiting) == 0 && ctx.Err() == nil {
			fmt.Fprintf(o.Out, "meshcert is installed in %s (mode %s)\n", ns, o.Render.Mode)
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("the rollout did not finish within %s: still waiting for %s (kubectl -n %s get pods; kubectl -n %s describe pods)",
					o.Timeout, strings.Join(waiting, ", "), ns, ns)
			}
			return ctx.Err()
		case <-time.After(rolloutPoll):
		}
	}
}

// rolloutObject reads a Deployment or DaemonSet as the status viewers take
// it, with its pod selector.
func (o *InstallOptions) rolloutObject(ctx context.Context, kind, name string) (*unstructured.Unstructured, string, error) {
	apps := o.clients.Client.AppsV1()
	var obj runtime.Object
	var selector *metav1.LabelSelector
	var err error
	switch kind {
	case "Deployment":
		var d *appsv1.Deployment
		if d, err = apps.Deployments(o.Render.Namespace).Get(ctx, name, metav1.GetOptions{}); err == nil {
			obj, selector = d, d.Spec.Selector
		}
	default:
		var ds *appsv1.DaemonSet
		if ds, err = apps.DaemonSets(o.Render.Namespace).Get(ctx, name, metav1.GetOptions{}); err == nil {
			obj, selector = ds, ds.Spec.Selector
		}
	}
	if err != nil {
		return nil, "", kubeapi.Explain(err, fmt.Sprintf("read %s %s", kind, name))
	}
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, "", err
	}
	sel, err := metav1.LabelSelectorAsSelector(selector)
	if err != nil {
		return nil, "", err
	}
	u := &unstructured.Unstructured{Object: content}
	// A typed client's objects carry no kind, and kstatus judges by kind:
	// without it, anything reads as current.
	u.SetAPIVersion(appsv1.SchemeGroupVersion.String())
	u.SetKind(kind)
	return u, sel.String(), nil
}

// diagnosePods says why the selected pods are not ready, with their
// warning Events, and fails when one cannot start.
func (o *InstallOptions) diagnosePods(ctx context.Context, selector string, say func(string)) error {
	ns := o.Render.Namespace
	pods, err := o.clients.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return kubeapi.Explain(err, "list pods")
	}
	for _, p := range pods.Items {
		reason, text := kubeapi.PodProblem(&p)
		if reason == "" || reason == "Pending" || reason == "NotReady" {
			continue
		}
		say(fmt.Sprintf("  pod %s: %s", p.Name, text))
		events, err := kubeapi.EventsAbout(ctx, o.clients.Client, ns, "Pod", p.Name)
		if err == nil {
			for _, e := range events {
				if e.Type == corev1.EventTypeWarning {
					say(fmt.Sprintf("    event %s: %s", e.Reason, e.Message))
				}
			}
		}
		if kubeapi.PodCannotStart(reason) {
			return fmt.Errorf("pod %s/%s cannot start: %s; waiting will not help: check --image (it was %s) and the events above (kubectl -n %s describe pod %s)",
				ns, p.Name, text, o.Render.Image, ns, p.Name)
		}
	}
	return nil
}

// Run deletes what install created, in reverse order.
func (o *UninstallOptions) Run(ctx context.Context) error {
	if err := o.connect(); err != nil {
		return err
	}
	if err := o.confirmPurge(); err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(o.clients.Config)
	if err != nil {
		return err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(o.clients.Client.Discovery()))
	sds := o.Render
	sds.Mode, sds.FileMount, sds.Monitoring = mesh.ModeSDS, true, true // every object any install renders
	objects := deploy.Render(sds)
	for i := len(objects) - 1; i >= 0; i-- {
		accessor, err := meta.Accessor(objects[i])
		if err != nil {
			return err
		}
		gvk := objects[i].GetObjectKind().GroupVersionKind()
		if gvk.Kind == "Namespace" && !o.Purge {
			continue
		}
		mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if meta.IsNoMatchError(err) {
			continue // a kind the cluster does not serve, such as ServiceMonitor without the operator
		}
		if err != nil {
			return err
		}
		var resource dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
		if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
			resource = dyn.Resource(mapping.Resource).Namespace(accessor.GetNamespace())
		}
		err = resource.Delete(ctx, accessor.GetName(), metav1.DeleteOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return kubeapi.Explain(err, "delete "+gvk.Kind+" "+accessor.GetName())
		default:
			fmt.Fprintf(o.Out, "%s/%s deleted\n", strings.ToLower(gvk.Kind), accessor.GetName())
		}
	}
	if !o.Purge {
		fmt.Fprintf(o.Out, "kept: Secret %s/%s (the CA root), the root ConfigMaps, the file-mount Secrets and role bindings, so that no valid certificate is withdrawn; --purge removes them\n", o.Render.Namespace, ca.RootSecretName)
		return nil
	}
	managed := metav1.ListOptions{LabelSelector: labels.SelectorFromSet(labels.Set{filemount.LabelManagedBy: filemount.ManagedByValue}).String()}
	cms := o.clients.Client.CoreV1().ConfigMaps("")
	list, err := cms.List(ctx, managed)
	if err != nil {
		return kubeapi.Explain(err, "list root ConfigMaps")
	}
	for _, cm := range list.Items {
		if cm.Name == ca.RootConfigMapName {
			_ = o.clients.Client.CoreV1().ConfigMaps(cm.Namespace).Delete(ctx, cm.Name, metav1.DeleteOptions{})
		}
	}
	bindings, err := o.clients.Client.RbacV1().RoleBindings("").List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(labels.Set{deploy.LabelPartOf: deploy.PartOfValue}).String()})
	if err != nil {
		return kubeapi.Explain(err, "list the file-mount role bindings")
	}
	for _, b := range bindings.Items {
		if b.Name == deploy.FileMountRoleName {
			_ = o.clients.Client.RbacV1().RoleBindings(b.Namespace).Delete(ctx, b.Name, metav1.DeleteOptions{})
		}
	}
	secrets, err := o.clients.Client.CoreV1().Secrets("").List(ctx, managed)
	if err != nil {
		return kubeapi.Explain(err, "list file-mount Secrets")
	}
	for _, s := range secrets.Items {
		if filemount.Owned(&s) || (s.Namespace == o.Render.Namespace && s.Name == ca.RootSecretName) {
			_ = o.clients.Client.CoreV1().Secrets(s.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{})
		}
	}
	fmt.Fprintf(o.Out, "purged: %d root ConfigMap(s), the CA root, the file-mount Secrets and role bindings\n", len(list.Items))
	return nil
}
