// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package inspect

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/meshcert/kubectl-meshcert/core/filemount"
	"github.com/meshcert/kubectl-meshcert/core/fleet"
	"github.com/meshcert/kubectl-meshcert/core/kubeapi"
	"github.com/meshcert/kubectl-meshcert/core/pki"
	"github.com/meshcert/kubectl-meshcert/plugin/cluster"
	"github.com/meshcert/kubectl-meshcert/plugin/command"
	"github.com/meshcert/kubectl-meshcert/plugin/output"
)

// PodReport is inspect pod's JSON.
type PodReport struct {
	Pod      string         `json:"pod"`
	Workload fleet.Workload `json:"workload"`
	// Events are the recent Events about the pod.
	Events []EventReport `json:"events"`
}

// PodOptions are `inspect pod`'s flags and state.
type PodOptions struct {
	*CommonOptions
	Output output.Options
	Pod    string
	genericiooptions.IOStreams
	connection
}

func newPodCommand(factory *cluster.Factory, streams genericiooptions.IOStreams, common *CommonOptions) *cobra.Command {
	o := &PodOptions{CommonOptions: common, IOStreams: streams, Output: output.Options{Table: true}, connection: connection{factory: factory}}
	cmd := &cobra.Command{
		Use:   "pod POD",
		Short: "Inspect the certificate a pod holds: its mounted Secret, or what its node agent serves it",
		Example: `  # What pod web-7d4b9 holds, with every column
  kubectl meshcert inspect pod web-7d4b9 -n shop -o wide`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: factory.CompleteNames(cluster.CompletePods, false),
		RunE:              command.RunE(o),
	}
	o.Output.Kind = "PodCertificate"
	o.Output.AddFlags(cmd)
	return cmd
}

// Complete takes the argument.
func (o *PodOptions) Complete(args []string) error {
	o.Pod = args[0]
	return nil
}

// Validate checks the flags, before any API call.
func (o *PodOptions) Validate() error {
	if o.Pod == "" {
		return errors.New("name the pod to inspect")
	}
	if err := o.CommonOptions.Validate(); err != nil {
		return err
	}
	return o.Output.Validate()
}

// Run prints the pod's certificate.
func (o *PodOptions) Run(ctx context.Context) error {
	if err := o.connect(ctx); err != nil {
		return err
	}
	name := o.Pod
	pod, err := o.clients.Client.CoreV1().Pods(o.clients.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("pod %s/%s not found (is -n right?)", o.clients.Namespace, name)
	}
	if err != nil {
		return kubeapi.Explain(err, "read pod "+name)
	}
	current := ""
	if root := o.currentRoot(ctx, o.CANamespace); root != nil {
		current = pki.Fingerprint(root)
	}
	var w *fleet.Workload
	for _, v := range pod.Spec.Volumes {
		if v.Secret == nil {
			continue
		}
		if _, ok := filemount.ServiceAccountOf(v.Secret.SecretName); !ok {
			continue
		}
		s, err := o.clients.Client.CoreV1().Secrets(pod.Namespace).Get(ctx, v.Secret.SecretName, metav1.GetOptions{})
		if err != nil {
			return kubeapi.Explain(err, fmt.Sprintf("read the pod's mounted Secret %s", v.Secret.SecretName))
		}
		found := fleet.FromSecret(s, current, o.now)
		w = &found
	}
	if w == nil {
		report, ok, err := fleet.ParseSDSReport(pod)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("pod %s/%s holds no mesh certificate: it mounts no meshcert.<service-account> Secret and no node agent reports serving it over SDS (annotation %s)", pod.Namespace, pod.Name, fleet.AnnotationSDS)
		}
		found := fleet.FromSDSReport(pod, report, current, o.now)
		w = &found
	}
	report := PodReport{Pod: pod.Namespace + "/" + pod.Name, Workload: *w, Events: recentEvents(ctx, o.clients.Client, pod.Namespace, objectRef{"Pod", pod.Name})}
	if err := o.Output.Print(o.Out, report, workloadTable([]fleet.Workload{*w}), nil); err != nil || o.Output.Machine() {
		return err
	}
	return printEvents(o.Out, report.Events, o.now)
}
