// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package rotate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/meshcert/kubectl-meshcert/core/filemount"
	"github.com/meshcert/kubectl-meshcert/core/fleet"
	"github.com/meshcert/kubectl-meshcert/core/kubeapi"
	"github.com/meshcert/kubectl-meshcert/plugin/cluster"
	"github.com/meshcert/kubectl-meshcert/plugin/command"
	"github.com/meshcert/kubectl-meshcert/plugin/output"
)

// PodOptions are `rotate pod`'s flags and state.
type PodOptions struct {
	*CommonOptions
	Output        output.Options
	Pod           string
	AllNamespaces bool
	// Selector and FieldSelector pick the pods to re-key by label or field
	// instead of by name.
	Selector      string
	FieldSelector string
	genericiooptions.IOStreams

	factory *cluster.Factory
	clients *cluster.Clients
}

// PodResult is rotate pod's JSON.
type PodResult struct {
	Pod       string          `json:"pod"`
	OldSerial string          `json:"oldSerial"`
	Report    fleet.SDSReport `json:"served"`
}

func newPodCommand(factory *cluster.Factory, streams genericiooptions.IOStreams, common *CommonOptions) *cobra.Command {
	o := &PodOptions{CommonOptions: common, IOStreams: streams, factory: factory}
	cmd := &cobra.Command{
		Use:   "pod (POD | -l SELECTOR)",
		Short: "Make the node agent re-key a pod's SDS identity and push it, without restarting the pod",
		Example: `  # Re-key pod web-7d4b9 and print the new serial
  kubectl meshcert rotate pod web-7d4b9 -n shop

  # Re-key every pod labelled app=web that an agent serves, selected by the API server
  kubectl meshcert rotate pod -l app=web -n shop

  # Re-key every served pod on one node, in every namespace
  kubectl meshcert rotate pod --field-selector spec.nodeName=worker-1 -A`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: factory.CompleteNames(cluster.CompletePods, false),
		RunE:              command.RunE(o),
	}
	o.Output.Kind = "PodRotation"
	o.Output.AddFlags(cmd)
	cmd.Flags().StringVarP(&o.Selector, "selector", "l", "", "re-key every pod with these labels that a node agent serves (app=web), instead of one by name")
	cmd.Flags().StringVar(&o.FieldSelector, "field-selector", "", "re-key every served pod with these fields (spec.nodeName=worker-1), instead of one by name")
	cmd.Flags().BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "with -l or --field-selector, select in every namespace")
	return cmd
}

// Validate checks the flags, before any API call.
func (o *PodOptions) Validate() error {
	selecting := o.Selector != "" || o.FieldSelector != ""
	switch {
	case o.Pod == "" && !selecting:
		return errors.New("name the pod to re-key, or select pods with -l or --field-selector")
	case o.Pod != "" && selecting:
		return errors.New("name a pod or select pods with -l or --field-selector, not both")
	case o.AllNamespaces && !selecting:
		return errors.New("-A selects in every namespace: use it with -l or --field-selector")
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

// Complete takes the pod's name, if given.
func (o *PodOptions) Complete(args []string) error {
	if len(args) > 0 {
		o.Pod = args[0]
	}
	return nil
}

// Run asks the pod's node agent to re-key it and, with --wait, waits for a
// new serial.
func (o *PodOptions) Run(ctx context.Context) error {
	var err error
	if o.clients, err = o.factory.Connect(ctx); err != nil {
		return err
	}
	if o.Selector != "" || o.FieldSelector != "" {
		return o.runSelected(ctx)
	}
	ns, name := o.clients.Namespace, o.Pod
	pod, err := o.clients.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("pod %s/%s not found (is -n right?)", ns, name)
	}
	if err != nil {
		return kubeapi.Explain(err, "read pod "+name)
	}
	if _, served, _ := fleet.ParseSDSReport(pod); !served {
		return fmt.Errorf("no node agent reports serving pod %s/%s over SDS; if it mounts its certificate, rotate the Secret instead: kubectl meshcert rotate secret %s -n %s",
			pod.Namespace, pod.Name, filemount.SecretName(pod.Spec.ServiceAccountName), pod.Namespace)
	}
	result, err := o.rotate(ctx, pod)
	if err != nil {
		return err
	}
	return o.Output.Print(o.Out, *result, nil, func(w io.Writer) error { return printPodResult(w, *result) })
}

// runSelected re-keys every pod -l and --field-selector select that an
// agent serves, one after the other.
func (o *PodOptions) runSelected(ctx context.Context) error {
	ns := o.clients.Namespace
	if o.AllNamespaces {
		ns = metav1.NamespaceAll
	}
	var list output.List
	var results []PodResult
	err := fleet.EachServedPod(ctx, o.clients.Fleet.Metadata, ns, fleet.Selection{Labels: o.Selector, Fields: o.FieldSelector}, func(p *metav1.PartialObjectMetadata) error {
		result, err := o.rotate(ctx, p)
		if err != nil {
			return err
		}
		results = append(results, *result)
		list = append(list, output.Item{Name: p.Name, Namespace: p.Namespace, Value: *result})
		return nil
	})
	if err != nil {
		return err
	}
	if len(results) == 0 {
		where := "in " + ns
		if ns == metav1.NamespaceAll {
			where = "in any namespace"
		}
		return fmt.Errorf("no pod %s with labels %q and fields %q is served over SDS by a node agent", where, o.Selector, o.FieldSelector)
	}
	return o.Output.Print(o.Out, list, nil, func(w io.Writer) error {
		for _, r := range results {
			if err := printPodResult(w, r); err != nil {
				return err
			}
		}
		return nil
	})
}

func printPodResult(w io.Writer, r PodResult) error {
	_, err := fmt.Fprintf(w, "pod/%s re-keyed: serial %s -> %s, valid until %s\n", r.Pod, r.OldSerial, r.Report.Serial, r.Report.NotAfter.Format(time.RFC3339))
	return err
}

// rotate asks the node agent that serves pod to re-key it and, with --wait,
// waits for a new serial.
func (o *PodOptions) rotate(ctx context.Context, pod metav1.Object) (*PodResult, error) {
	ns, name := pod.GetNamespace(), pod.GetName()
	pods := o.clients.Client.CoreV1().Pods(ns)
	before, _, err := fleet.ParseSDSReport(pod)
	if err != nil {
		return nil, err
	}
	value := requestValue()
	if err := fleet.RequestPodRotation(ctx, o.clients.Client, ns, name, value); err != nil {
		return nil, kubeapi.Explain(err, "request rotation of pod "+name)
	}
	result := PodResult{Pod: ns + "/" + name, OldSerial: before.Serial, Report: before}
	if o.Wait {
		err := o.waitFor(ctx, "pod "+result.Pod, func(ctx context.Context) (bool, error) {
			got, err := pods.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			report, ok, _ := fleet.ParseSDSReport(got)
			if ok && got.Annotations[fleet.AnnotationRotated] == value && report.Serial != before.Serial {
				result.Report = report
				return true, nil
			}
			return false, nil
		})
		if err != nil {
			return nil, fmt.Errorf("%w: is the node agent on %s running?", err, before.Node)
		}
	}
	return &result, nil
}
