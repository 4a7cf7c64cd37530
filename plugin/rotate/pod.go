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
	Output output.Options
	Pod    string
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
		Use:   "pod POD",
		Short: "Make the node agent re-key a pod's SDS identity and push it, without restarting the pod",
		Example: `  # Re-key pod web-7d4b9 and print the new serial
  kubectl meshcert rotate pod web-7d4b9 -n shop`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: factory.CompleteNames(cluster.CompletePods, false),
		RunE:              command.RunE(o),
	}
	o.Output.Kind = "PodRotation"
	o.Output.AddFlags(cmd)
	return cmd
}

// Validate checks the flags, before any API call.
func (o *PodOptions) Validate() error {
	if o.Pod == "" {
		return errors.New("name the pod to re-key")
	}
	if err := o.CommonOptions.Validate(); err != nil {
		return err
	}
	return o.Output.Validate()
}

// Complete takes the pod's name.
func (o *PodOptions) Complete(args []string) error {
	o.Pod = args[0]
	return nil
}

// Run asks the pod's node agent to re-key it and, with --wait, waits for a
// new serial.
func (o *PodOptions) Run(ctx context.Context) error {
	var err error
	if o.clients, err = o.factory.Connect(ctx); err != nil {
		return err
	}
	ns, name := o.clients.Namespace, o.Pod
	pods := o.clients.Client.CoreV1().Pods(ns)
	pod, err := pods.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("pod %s/%s not found (is -n right?)", ns, name)
	}
	if err != nil {
		return kubeapi.Explain(err, "read pod "+name)
	}
	before, ok, err := fleet.ParseSDSReport(pod)
	if err != nil {
		return err
	}
	if !ok {
		sa := pod.Spec.ServiceAccountName
		return fmt.Errorf("no node agent reports serving pod %s/%s over SDS; if it mounts its certificate, rotate the Secret instead: kubectl meshcert rotate secret %s -n %s",
			pod.Namespace, pod.Name, filemount.SecretName(sa), pod.Namespace)
	}
	value := requestValue()
	if err := fleet.RequestPodRotation(ctx, o.clients.Client, ns, name, value); err != nil {
		return kubeapi.Explain(err, "request rotation of pod "+name)
	}
	result := PodResult{Pod: pod.Namespace + "/" + pod.Name, OldSerial: before.Serial, Report: before}
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
			return fmt.Errorf("%w: is the node agent on %s running?", err, before.Node)
		}
	}
	return o.Output.Print(o.Out, result, nil, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "pod/%s re-keyed: serial %s -> %s, valid until %s\n", result.Pod, result.OldSerial, result.Report.Serial, result.Report.NotAfter.Format(time.RFC3339))
		return err
	})
}
