// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package cluster turns kubectl's connection flags into clients, built once
// per command line by a Factory.
package cluster

import (
	"context"
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshcert/kubectl-meshcert/core/fleet"
	"github.com/meshcert/kubectl-meshcert/core/kubeapi"
)

// Clients are what a command needs to talk to the cluster.
type Clients struct {
	Config *rest.Config
	Client kubernetes.Interface
	// Fleet reads workload certificates: Secrets through Client, the pods
	// the agents serve as metadata only.
	Fleet     fleet.Cluster
	Namespace string
	// ExplicitNamespace is true when -n was given.
	ExplicitNamespace bool
}

// Factory builds the clients of one command line from kubectl's flags, the
// first time a command asks for them; every later call returns the same.
type Factory struct {
	flags *genericclioptions.ConfigFlags

	once    sync.Once
	clients *Clients
	err     error
}

// NewFactory returns a factory over flags, which the root command binds.
func NewFactory(flags *genericclioptions.ConfigFlags) *Factory {
	return &Factory{flags: flags}
}

// Clients connects once and returns the clients.
func (f *Factory) Clients() (*Clients, error) {
	f.once.Do(func() { f.clients, f.err = connect(f.flags) })
	return f.clients, f.err
}

func connect(flags *genericclioptions.ConfigFlags) (*Clients, error) {
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
	workloads, err := fleet.NewCluster(client, config)
	if err != nil {
		return nil, err
	}
	return &Clients{Config: config, Client: client, Fleet: workloads, Namespace: ns, ExplicitNamespace: explicit}, nil
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
	return kubeapi.Explain(err, "read namespace "+c.Namespace)
}

// Namespace is the namespace of -n or the kubeconfig's context, and whether
// -n gave it, without connecting.
func (f *Factory) Namespace() (string, bool, error) {
	return f.flags.ToRawKubeConfigLoader().Namespace()
}

// Connect returns the clients and fails when -n names a namespace that does
// not exist.
func (f *Factory) Connect(ctx context.Context) (*Clients, error) {
	clients, err := f.Clients()
	if err != nil {
		return nil, err
	}
	return clients, clients.RequireNamespace(ctx)
}
