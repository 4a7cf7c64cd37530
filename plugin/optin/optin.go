// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package optin is `kubectl meshcert file-mount enable|disable`: it opts
// namespaces in to the file-mount path, and out again. Opting in labels the
// namespace and binds the CA's file-mount role there, so that the CA may
// keep Secrets in the namespaces that asked for them and in no other.
package optin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"

	"github.com/meshcert/kubectl-meshcert/core/deploy"
	"github.com/meshcert/kubectl-meshcert/core/filemount"
	"github.com/meshcert/kubectl-meshcert/core/kubeapi"
	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/plugin/cluster"
	"github.com/meshcert/kubectl-meshcert/plugin/command"
	"github.com/meshcert/kubectl-meshcert/plugin/output"
)

// NewCommand returns `file-mount` and its verbs.
func NewCommand(factory *cluster.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "file-mount",
		Short: "Opt namespaces in to the file-mount path, or out of it",
		Long: `The file-mount path keeps a key/cert Secret per service account in the namespaces that opted in.
Opting in labels the namespace ` + filemount.LabelNamespaceOptIn + `=` + filemount.OptInValue + ` and binds the ClusterRole
` + deploy.FileMountRoleName + ` there to the CA's service account: the CA may read and write Secrets in the namespaces
that opted in, and in no other.`,
		Example: `  # Opt namespaces legacy-a and legacy-b in
  kubectl meshcert file-mount enable legacy-a legacy-b

  # Opt legacy-a out; its Secrets stay until they expire
  kubectl meshcert file-mount disable legacy-a`,
	}
	cmd.AddCommand(newVerb(factory, streams, true), newVerb(factory, streams, false))
	return cmd
}

// Options are the flags and state of enable and disable.
type Options struct {
	Enable      bool
	Namespaces  []string
	CANamespace string
	Output      output.Options
	genericiooptions.IOStreams

	factory *cluster.Factory
}

// Result is one namespace's outcome, as `-o json` prints it. Field names
// are stable.
type Result struct {
	Namespace   string `json:"namespace"`
	OptedIn     bool   `json:"optedIn"`
	RoleBinding string `json:"roleBinding,omitempty"`
	CA          string `json:"ca"`
}

func newVerb(factory *cluster.Factory, streams genericiooptions.IOStreams, enable bool) *cobra.Command {
	o := &Options{Enable: enable, CANamespace: mesh.DefaultNamespace, IOStreams: streams, factory: factory}
	cmd := &cobra.Command{
		Use:   "enable NAMESPACE...",
		Short: "Label namespaces for the file-mount path and let the CA keep their Secrets",
		Example: `  # Opt namespace legacy in, for the CA installed in meshcert-system
  kubectl meshcert file-mount enable legacy`,
		Args:              cobra.MinimumNArgs(1),
		RunE:              command.RunE(o),
		ValidArgsFunction: factory.CompleteNames(cluster.CompleteNamespaces, true),
	}
	if !enable {
		cmd.Use = "disable NAMESPACE..."
		cmd.Short = "Remove namespaces from the file-mount path; their Secrets stay until they expire"
		cmd.Example = `  # Opt namespace legacy out; delete its Secrets once no pod mounts them
  kubectl meshcert file-mount disable legacy`
	}
	cmd.Flags().StringVar(&o.CANamespace, "ca-namespace", o.CANamespace, "namespace of the mesh CA")
	o.Output.Kind = "FileMountOptIn"
	o.Output.AddFlags(cmd)
	return cmd
}

// Complete takes the namespaces.
func (o *Options) Complete(args []string) error {
	o.Namespaces = args
	return nil
}

// Validate refuses the namespaces that must never hold workload Secrets.
func (o *Options) Validate() error {
	if len(o.Namespaces) == 0 {
		return errors.New("name at least one namespace")
	}
	if o.CANamespace == "" {
		return errors.New("--ca-namespace is empty: name the namespace of the mesh CA")
	}
	if o.Enable {
		for _, ns := range o.Namespaces {
			if err := Refused(ns, o.CANamespace); err != nil {
				return err
			}
		}
	}
	return o.Output.Validate()
}

// Refused says why namespace ns may not opt in to the file-mount path of
// the CA in caNamespace, or returns nil.
func Refused(ns, caNamespace string) error {
	switch {
	case ns == caNamespace:
		return fmt.Errorf("namespace %s is the CA's own: it holds the root key and no workload; run workloads in another namespace and opt that one in", ns)
	case slices.Contains(filemount.DefaultOptions().Exclude, ns):
		return fmt.Errorf("namespace %s is never served by the file-mount path (the CA excludes it), and binding the CA's Secret role there would let a stolen CA token read its Secrets", ns)
	}
	return nil
}

// Run opts each namespace in or out.
func (o *Options) Run(ctx context.Context) error {
	clients, err := o.factory.Connect(ctx)
	if err != nil {
		return err
	}
	var results []Result
	for _, ns := range o.Namespaces {
		if o.Enable {
			err = Enable(ctx, clients.Client, o.CANamespace, ns)
		} else {
			err = Disable(ctx, clients.Client, ns)
		}
		if err != nil {
			return err
		}
		result := Result{Namespace: ns, OptedIn: o.Enable, CA: o.CANamespace + "/" + mesh.CAName}
		if o.Enable {
			result.RoleBinding = deploy.FileMountRoleName
		}
		results = append(results, result)
	}
	list := make(output.List, len(results))
	for i, r := range results {
		list[i] = output.Item{Name: r.Namespace, Value: r}
	}
	return o.Output.Print(o.Out, list, nil, func(w io.Writer) error {
		for _, r := range results {
			if r.OptedIn {
				fmt.Fprintf(w, "namespace/%s opted in to the file-mount path: rolebinding/%s lets %s keep its key/cert Secrets\n", r.Namespace, r.RoleBinding, r.CA)
				continue
			}
			fmt.Fprintf(w, "namespace/%s opted out of the file-mount path: its key/cert Secrets stay, no longer renewed, until they expire; delete them once no pod mounts them (kubectl -n %s delete secret -l %s=%s)\n",
				r.Namespace, r.Namespace, filemount.LabelManagedBy, filemount.ManagedByValue)
		}
		return nil
	})
}

// Enable binds the CA's file-mount role in ns, then labels ns: by the time
// the CA sees the label, it may already keep the namespace's Secrets.
func Enable(ctx context.Context, client kubernetes.Interface, caNamespace, ns string) error {
	if err := Refused(ns, caNamespace); err != nil {
		return err
	}
	if _, err := client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("namespace %s not found: create it first (kubectl create namespace %s)", ns, ns)
		}
		return kubeapi.Explain(err, "read namespace "+ns)
	}
	if _, err := client.RbacV1().ClusterRoles().Get(ctx, deploy.FileMountRoleName, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		return fmt.Errorf("ClusterRole %s not found: the mesh was installed without the file-mount path; reinstall with `kubectl meshcert install --file-mount` (or --mode file-mount)", deploy.FileMountRoleName)
	} else if err != nil {
		return kubeapi.Explain(err, "read ClusterRole "+deploy.FileMountRoleName)
	}
	want := deploy.FileMountRoleBinding(caNamespace, ns)
	bindings := client.RbacV1().RoleBindings(ns)
	_, err := bindings.Create(ctx, want, metav1.CreateOptions{FieldManager: mesh.FieldManager})
	if apierrors.IsAlreadyExists(err) {
		current, getErr := bindings.Get(ctx, want.Name, metav1.GetOptions{})
		if getErr != nil {
			return kubeapi.Explain(getErr, "read RoleBinding "+want.Name)
		}
		if current.RoleRef != want.RoleRef {
			return fmt.Errorf("RoleBinding %s/%s exists with another role (%s %s): delete it, then run enable again", ns, want.Name, current.RoleRef.Kind, current.RoleRef.Name)
		}
		current.Subjects, current.Labels = want.Subjects, want.Labels
		_, err = bindings.Update(ctx, current, metav1.UpdateOptions{FieldManager: mesh.FieldManager})
	}
	if err != nil {
		return kubeapi.Explain(err, "bind "+deploy.FileMountRoleName+" in namespace "+ns)
	}
	return label(ctx, client, ns, `"`+filemount.OptInValue+`"`)
}

// Disable removes the label from ns, then the CA's file-mount role
// binding. The Secrets stay: pods that mount them keep working until the
// certificates expire.
func Disable(ctx context.Context, client kubernetes.Interface, ns string) error {
	if err := label(ctx, client, ns, "null"); err != nil {
		return err
	}
	err := client.RbacV1().RoleBindings(ns).Delete(ctx, deploy.FileMountRoleName, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return kubeapi.Explain(err, "delete RoleBinding "+deploy.FileMountRoleName+" in namespace "+ns)
	}
	return nil
}

func label(ctx context.Context, client kubernetes.Interface, ns, value string) error {
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%s}}}`, filemount.LabelNamespaceOptIn, value)
	_, err := client.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: mesh.FieldManager})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("namespace %s not found (is its name right?)", ns)
	}
	if err != nil {
		return kubeapi.Explain(err, "label namespace "+ns)
	}
	return nil
}
