// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package cluster turns kubectl's connection flags into clients, and
// Kubernetes API errors into messages that say what to do.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshcert/kubectl-meshcert/core/ca"
)

// DefaultCANamespace is where install puts the CA and the agent.
const DefaultCANamespace = ca.DefaultNamespace

// Clients are what a command needs to talk to the cluster.
type Clients struct {
	Config    *rest.Config
	Client    kubernetes.Interface
	Namespace string
	// ExplicitNamespace is true when -n was given.
	ExplicitNamespace bool
}

// Connect builds clients from kubectl's flags.
func Connect(flags *genericclioptions.ConfigFlags) (*Clients, error) {
	config, err := flags.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("no usable kubeconfig: %w (pass --kubeconfig or --context, or set KUBECONFIG)", err)
	}
	ns, explicit, err := flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return nil, err
	}
	return &Clients{Config: config, Client: client, Namespace: ns, ExplicitNamespace: explicit}, nil
}

// FromConfig builds clients from a REST config, for callers that are not
// a command line (the harness).
func FromConfig(config *rest.Config, namespace string) (*Clients, error) {
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return nil, err
	}
	return &Clients{Config: config, Client: client, Namespace: namespace, ExplicitNamespace: true}, nil
}

// Explain rewrites common API errors into what to do about them.
func Explain(err error, action string) error {
	if err == nil {
		return nil
	}
	var urlErr *url.Error
	var netErr net.Error
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%s: forbidden by RBAC: %v (ask for the permission, or use a context that has it)", action, apierrors.ReasonForError(err))
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%s: the cluster did not accept your credentials: %v (refresh them, or pick another --context)", action, err)
	case errors.As(err, &urlErr), errors.As(err, &netErr):
		return fmt.Errorf("%s: cannot reach the cluster: %v (check --context and --server, and that the API server is up)", action, err)
	}
	return fmt.Errorf("%s: %w", action, err)
}

// RequireNamespace fails when -n names a namespace that does not exist, so
// that a typo is not reported as "nothing found".
func (c *Clients) RequireNamespace(ctx context.Context) error {
	if !c.ExplicitNamespace {
		return nil
	}
	_, err := c.Client.CoreV1().Namespaces().Get(ctx, c.Namespace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("namespace %q not found (kubectl get namespaces lists them)", c.Namespace)
	}
	if apierrors.IsForbidden(err) {
		return nil // may not read namespaces; the command's own calls will tell
	}
	return Explain(err, "read namespace "+c.Namespace)
}
