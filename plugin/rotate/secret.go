// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package rotate

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/meshcert/kubectl-meshcert/core/filemount"
	"github.com/meshcert/kubectl-meshcert/core/fleet"
	"github.com/meshcert/kubectl-meshcert/core/kubeapi"
	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/plugin/cluster"
	"github.com/meshcert/kubectl-meshcert/plugin/command"
	"github.com/meshcert/kubectl-meshcert/plugin/output"
)

// SecretOptions are `rotate secret`'s flags and state.
type SecretOptions struct {
	*CommonOptions
	Output        output.Options
	Name          string
	All           bool
	AllNamespaces bool
	// Selector and FieldSelector pick the Secrets to re-issue by label or
	// field, instead of one by name or --all.
	Selector      string
	FieldSelector string
	genericiooptions.IOStreams

	factory *cluster.Factory
	clients *cluster.Clients
}

// SecretsResult is rotate secret's JSON.
type SecretsResult struct {
	Rotated []string `json:"rotated"`
}

func newSecretCommand(factory *cluster.Factory, streams genericiooptions.IOStreams, common *CommonOptions) *cobra.Command {
	o := &SecretOptions{CommonOptions: common, IOStreams: streams, factory: factory}
	cmd := &cobra.Command{
		Use:   "secret [NAME | --all | -l SELECTOR | --field-selector SELECTOR]",
		Short: "Re-issue file-mount Secrets (meshcert.<service-account>) now",
		Example: `  # Re-issue the Secret of service account web
  kubectl meshcert rotate secret meshcert.web -n shop

  # Re-issue every file-mount Secret in every namespace, without waiting
  kubectl meshcert rotate secret --all -A --wait=false

  # Re-issue the Secrets of service account web in every namespace
  kubectl meshcert rotate secret -l meshcert.io/service-account=web -A`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: factory.CompleteNames(cluster.CompleteMeshSecrets, false),
		RunE:              command.RunE(o),
	}
	cmd.Flags().BoolVar(&o.All, "all", false, "every file-mount Secret in the namespace (or with -A, everywhere)")
	cmd.Flags().BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "with --all, -l or --field-selector: every namespace")
	cmd.Flags().StringVarP(&o.Selector, "selector", "l", "", "every file-mount Secret with these labels (meshcert.io/service-account=web), selected by the API server")
	cmd.Flags().StringVar(&o.FieldSelector, "field-selector", "", "every file-mount Secret with these fields (metadata.name=meshcert.web)")
	o.Output.Kind = "SecretRotation"
	o.Output.AddFlags(cmd)
	return cmd
}

// Complete takes the Secret's name, if given.
func (o *SecretOptions) Complete(args []string) error {
	if len(args) == 1 {
		o.Name = args[0]
	}
	return nil
}

// Validate checks the flags, before any API call.
func (o *SecretOptions) Validate() error {
	many := o.All || o.Selector != "" || o.FieldSelector != ""
	if (o.Name != "") == many {
		return errors.New("name one Secret, or pass --all, -l or --field-selector")
	}
	if o.AllNamespaces && !many {
		return errors.New("-A goes with --all, -l or --field-selector")
	}
	if _, err := labels.Parse(o.Selector); err != nil {
		return fmt.Errorf("-l %q: %w", o.Selector, err)
	}
	if _, err := fields.ParseSelector(o.FieldSelector); err != nil {
		return fmt.Errorf("--field-selector %q: %w", o.FieldSelector, err)
	}
	if err := o.CommonOptions.Validate(); err != nil {
		return err
	}
	return o.Output.Validate()
}

// Run requests the rotations and, with --wait, waits for them.
func (o *SecretOptions) Run(ctx context.Context) error {
	var err error
	if o.clients, err = o.factory.Connect(ctx); err != nil {
		return err
	}
	targets, err := o.targets(ctx)
	if err != nil {
		return err
	}
	value := requestValue()
	result := SecretsResult{Rotated: []string{}}
	for _, s := range targets {
		if _, err := o.clients.Client.CoreV1().Secrets(s.Namespace).Patch(ctx, s.Name, types.MergePatchType,
			fleet.AnnotationPatch(filemount.AnnotationRotate, value), metav1.PatchOptions{FieldManager: mesh.FieldManager}); err != nil {
			return kubeapi.Explain(err, "request rotation of Secret "+s.Name)
		}
		result.Rotated = append(result.Rotated, s.Namespace+"/"+s.Name)
	}
	if o.Wait {
		for _, s := range targets {
			err := o.waitFor(ctx, "Secret "+s.Namespace+"/"+s.Name, func(ctx context.Context) (bool, error) {
				got, err := o.clients.Client.CoreV1().Secrets(s.Namespace).Get(ctx, s.Name, metav1.GetOptions{})
				return err == nil && got.Annotations[filemount.AnnotationRotated] == value, nil
			})
			if err != nil {
				return fmt.Errorf("%w: is the CA running with --file-mount, and is the namespace opted in?", err)
			}
		}
	}
	return o.Output.Print(o.Out, result, nil, func(w io.Writer) error {
		if len(targets) == 0 {
			_, err := fmt.Fprintln(w, "No file-mount Secrets found.")
			return err
		}
		for _, name := range result.Rotated {
			if _, err := fmt.Fprintf(w, "secret/%s rotated\n", name); err != nil {
				return err
			}
		}
		return nil
	})
}

func (o *SecretOptions) targets(ctx context.Context) ([]corev1.Secret, error) {
	if o.Name != "" {
		s, err := o.clients.Client.CoreV1().Secrets(o.clients.Namespace).Get(ctx, o.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("secret %s/%s not found (is -n right? file-mount Secrets are named meshcert.<service-account>)", o.clients.Namespace, o.Name)
		}
		if err != nil {
			return nil, kubeapi.Explain(err, "read Secret "+o.Name)
		}
		if !filemount.Owned(s) {
			return nil, fmt.Errorf("secret %s/%s is not a meshcert file-mount Secret (type %q): meshcert only rotates what it manages", s.Namespace, s.Name, s.Type)
		}
		return []corev1.Secret{*s}, nil
	}
	ns := o.clients.Namespace
	if o.AllNamespaces {
		ns = ""
	}
	selector := labels.SelectorFromSet(labels.Set{filemount.LabelManagedBy: filemount.ManagedByValue}).String()
	if o.Selector != "" {
		selector += "," + o.Selector
	}
	list, err := o.clients.Client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: selector, FieldSelector: o.FieldSelector})
	if apierrors.IsBadRequest(err) && o.FieldSelector != "" {
		return nil, fmt.Errorf("--field-selector %q: %w (Secrets select by metadata.name, metadata.namespace and type)", o.FieldSelector, err)
	}
	if err != nil {
		return nil, kubeapi.Explain(err, "list file-mount Secrets")
	}
	var targets []corev1.Secret
	for _, s := range list.Items {
		if filemount.Owned(&s) {
			targets = append(targets, s)
		}
	}
	return targets, nil
}
