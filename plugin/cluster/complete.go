// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package cluster

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/meshcert/kubectl-meshcert/core/filemount"
)

// Kinds of names CompleteNames lists.
const (
	CompletePods            = "pods"
	CompleteMeshSecrets     = "secrets"
	CompleteNamespaces      = "namespaces"
	CompleteServiceAccounts = "serviceaccounts"
)

// completionTimeout bounds the API calls a shell completion makes, so that
// an unreachable cluster does not hang the shell.
const completionTimeout = 5 * time.Second

// CompleteNames completes the names of kind in the namespace of -n (or the
// kubeconfig's): pods, meshcert's file-mount Secrets, namespaces or service
// accounts. With many, it completes each argument once (file-mount enable
// NS...); else only the first.
func (f *Factory) CompleteNames(kind string, many bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 && !many {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		clients, err := f.Clients()
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
		defer cancel()
		names, err := listNames(ctx, clients.Client, clients.Namespace, kind)
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		names = slices.DeleteFunc(names, func(n string) bool { return !strings.HasPrefix(n, toComplete) || slices.Contains(args, n) })
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

func listNames(ctx context.Context, client kubernetes.Interface, namespace, kind string) ([]string, error) {
	var names []string
	switch kind {
	case CompletePods:
		list, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		for _, item := range list.Items {
			names = append(names, item.Name)
		}
	case CompleteMeshSecrets:
		selector := labels.SelectorFromSet(labels.Set{filemount.LabelManagedBy: filemount.ManagedByValue}).String()
		list, err := client.CoreV1().Secrets(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return nil, err
		}
		for _, item := range list.Items {
			if item.Type == filemount.SecretType {
				names = append(names, item.Name)
			}
		}
	case CompleteNamespaces:
		list, err := client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		for _, item := range list.Items {
			names = append(names, item.Name)
		}
	case CompleteServiceAccounts:
		list, err := client.CoreV1().ServiceAccounts(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		for _, item := range list.Items {
			names = append(names, item.Name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// CompleteContexts completes the kubeconfig's context names.
func (f *Factory) CompleteContexts(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	config, err := f.flags.ToRawKubeConfigLoader().RawConfig()
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var names []string
	for name := range config.Contexts {
		if strings.HasPrefix(name, toComplete) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, cobra.ShellCompDirectiveNoFileComp
}
