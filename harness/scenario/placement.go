// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package scenario

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshcert/kubectl-meshcert/core/filemount"
	"github.com/meshcert/kubectl-meshcert/core/fleet"
	"github.com/meshcert/kubectl-meshcert/harness/provider"
)

// ExpectPlacement checks where workloads run: each SDS workload is served
// by the node agent of its own node (the agent's report on the pod names
// that node), and with Spread the workloads run on as many different nodes
// as the cluster has nodes for workloads, so that calls between them cross
// nodes wherever the cluster has several.
type ExpectPlacement struct {
	Workloads []string `yaml:"workloads"`
	Spread    bool     `yaml:"spread"`
}

// Validate checks that there are workloads to place.
func (e *ExpectPlacement) Validate() error {
	if len(e.Workloads) == 0 {
		return errors.New("expectPlacement needs workloads")
	}
	return nil
}

// Run waits until every workload's placement is the one expected.
func (e *ExpectPlacement) Run(ctx context.Context, p provider.Provider) error {
	client, err := kubernetes.NewForConfig(p.RESTConfig())
	if err != nil {
		return err
	}
	return eventually(ctx, func() error {
		nodes := map[string][]string{}
		for _, name := range e.Workloads {
			pod, err := p.Pod(ctx, name)
			if err != nil {
				return err
			}
			if pod.Spec.NodeName == "" {
				return fmt.Errorf("workload %s has no node yet", name)
			}
			nodes[pod.Spec.NodeName] = append(nodes[pod.Spec.NodeName], name)
			report, ok, err := fleet.ParseSDSReport(pod)
			if err != nil {
				return err
			}
			if ok && report.Node != pod.Spec.NodeName {
				return fmt.Errorf("workload %s runs on node %s but the agent of node %q serves it", name, pod.Spec.NodeName, report.Node)
			}
			if !ok && !isFileMount(pod) {
				return fmt.Errorf("no node agent has reported serving workload %s", name)
			}
		}
		if !e.Spread {
			return nil
		}
		available, err := workloadNodes(ctx, client)
		if err != nil {
			return err
		}
		if want := min(len(e.Workloads), max(available, 1)); len(nodes) < want {
			return fmt.Errorf("the workloads run on %d node(s) (%s), want %d of the cluster's %d for workloads", len(nodes), placement(nodes), want, available)
		}
		return nil
	})
}

func isFileMount(pod *corev1.Pod) bool {
	for _, v := range pod.Spec.Volumes {
		if v.Name == filemount.MountName && v.Secret != nil {
			return true
		}
	}
	return false
}

// workloadNodes counts the nodes without a NoSchedule taint.
func workloadNodes(ctx context.Context, client kubernetes.Interface) (int, error) {
	list, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, node := range list.Items {
		schedulable := !node.Spec.Unschedulable
		for _, t := range node.Spec.Taints {
			schedulable = schedulable && t.Effect != corev1.TaintEffectNoSchedule
		}
		if schedulable {
			n++
		}
	}
	return n, nil
}

func placement(nodes map[string][]string) string {
	var parts []string
	for node, names := range nodes {
		parts = append(parts, node+": "+strings.Join(names, ", "))
	}
	return strings.Join(parts, "; ")
}
