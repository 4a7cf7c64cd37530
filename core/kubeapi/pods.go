// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package kubeapi

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
)

// PodProblem says why a pod is not ready: reason is the machine reason
// ("ImagePullBackOff", "Unschedulable", "CrashLoopBackOff", "Pending"...)
// and text the reason with its message. Both are empty for a ready pod.
func PodProblem(p *corev1.Pod) (reason, text string) {
	for _, s := range slices.Concat(p.Status.InitContainerStatuses, p.Status.ContainerStatuses) {
		switch {
		case s.State.Waiting != nil && s.State.Waiting.Reason != "" && s.State.Waiting.Reason != "PodInitializing" && s.State.Waiting.Reason != "ContainerCreating":
			return s.State.Waiting.Reason, strings.TrimSpace(s.State.Waiting.Reason + " " + parenthesised(s.State.Waiting.Message))
		case s.State.Terminated != nil && s.State.Terminated.ExitCode != 0:
			return "Terminated", fmt.Sprintf("container %s exited with code %d %s", s.Name, s.State.Terminated.ExitCode, parenthesised(s.State.Terminated.Reason))
		}
	}
	for _, cond := range p.Status.Conditions {
		switch {
		case cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionFalse:
			return cond.Reason, strings.TrimSpace("not scheduled: " + cond.Reason + " " + parenthesised(cond.Message))
		case cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue:
			return "", ""
		}
	}
	if p.Status.Phase == corev1.PodPending {
		return "Pending", "pending"
	}
	return "NotReady", "not ready"
}

// PodCannotStart reports whether a pod's problem will not go away by
// waiting: its image cannot be pulled, or its container cannot be created.
func PodCannotStart(reason string) bool {
	switch reason {
	case "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "CreateContainerConfigError", "CreateContainerError":
		return true
	}
	return false
}

func parenthesised(s string) string {
	if s == "" {
		return ""
	}
	return "(" + s + ")"
}

// EventsAbout lists the Events in namespace about the object of kind and
// name, as `kubectl describe` shows them.
func EventsAbout(ctx context.Context, client kubernetes.Interface, namespace, kind, name string) ([]corev1.Event, error) {
	list, err := client.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{
		FieldSelector: fields.Set{"involvedObject.kind": kind, "involvedObject.name": name}.String(),
	})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}
