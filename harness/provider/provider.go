// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package provider is the small interface every cluster provider of the
// harness implements. Scenario steps are written against it, never against
// one provider.
package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshcert/kubectl-meshcert/core/ca"
	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/harness/workload"
)

// Profiles a provider can bring up.
const (
	ProfileBound  = "bound"
	ProfileLegacy = "legacy"
)

// Mesh modes: install's two modes, auto for what check recommends, and none.
const (
	MeshSDS       = mesh.ModeSDS
	MeshFileMount = mesh.ModeFileMount
	MeshAuto      = mesh.ModeAuto
	MeshNone      = "none"
)

// WorkloadSpec is a workload to deploy.
type WorkloadSpec struct {
	Name           string
	Namespace      string
	ServiceAccount string
	// Path is sds or file-mount; empty follows the installed mesh.
	Path string
	// Allow lists the peer SPIFFE IDs the workload accepts.
	Allow []string
	// Token, when set, replaces the projected token with a bad one
	// (wrong-audience, expired, forged or deleted-pod) or with pod-bound, a
	// good token bound to a pod of its own (TokenHolderPod) that a step
	// deletes to make it go bad.
	Token string
}

// Bad tokens a WorkloadSpec can ask for.
const (
	TokenWrongAudience = "wrong-audience"
	TokenExpired       = "expired"
	TokenForged        = "forged"
	TokenDeletedPod    = "deleted-pod"
	TokenPodBound      = "pod-bound"
)

// TokenHolderPod names the pod a workload's pod-bound token is bound to.
func TokenHolderPod(workload string) string { return workload + "-token-holder" }

// Tuning is how a scenario changes the installed mesh.
type Tuning struct {
	// WorkloadTTL is the certificate lifetime the agent asks for; 0 keeps
	// the default. Scenarios use seconds to see rotations.
	WorkloadTTL time.Duration
	// MaxConcurrentSignings bounds the CA, so that mass starts meet
	// backpressure; 0 keeps the CA's default.
	MaxConcurrentSignings int
	// CAReplicas is how many replicas the CA runs; 0 means one.
	CAReplicas int
	// TokenVerification is the CA's --token-verification; empty keeps
	// its default (TokenReview).
	TokenVerification string
	// AgentRetryBase and AgentRetryMax are the agents' --ca-retry-base and
	// --ca-retry-max; zero keeps the provider's, which may be shorter than
	// install's so that scenarios run fast.
	AgentRetryBase, AgentRetryMax time.Duration
}

// Tuner is implemented by providers that let a scenario shorten certificate
// lifetimes, bound the CA or add replicas.
type Tuner interface {
	Tune(Tuning)
}

// Kube is how operations that are the same on every provider reach its
// cluster: Plugin, DeleteSecret, and the preflight of ResolveMesh.
type Kube interface {
	// Kubeconfig is a kubeconfig file for the cluster, once it is up.
	Kubeconfig() string
	// RESTConfig is the cluster's client configuration, once it is up.
	RESTConfig() *rest.Config
}

// Cluster is a cluster's lifecycle.
type Cluster interface {
	Kube
	Name() string
	Up(ctx context.Context, profile string) error
	// RestartAPIServer stops the API server as a crash would and returns
	// once a new one serves: local restarts the control-plane process, kind
	// the kube-apiserver static pod's container.
	RestartAPIServer(ctx context.Context) error
	// Logs writes what the provider knows into dir, for a failed scenario.
	Logs(dir string) error
	Down() error
}

// Mesh installs the mesh and takes its CA away and back.
type Mesh interface {
	// InstallMesh installs the CA, and for sds the node agent. It returns the
	// mode installed (auto resolves to sds or file-mount).
	InstallMesh(ctx context.Context, mode string) (string, error)
	StopCA(ctx context.Context) error
	StartCA(ctx context.Context) error
	// ComponentConfig is a client configuration that acts as the installed
	// mesh component named (mesh.CAName or mesh.AgentName) with the
	// credentials it runs with, for checking what a stolen token can do.
	// With workload set, a component with a pod per node acts as the one
	// on that workload's node.
	ComponentConfig(ctx context.Context, component, workload string) (*rest.Config, error)
	// ScrapeCA returns the CA's /metrics, in Prometheus's text format.
	ScrapeCA(ctx context.Context) ([]byte, error)
	// RestartAgent stops every node agent, or with workload set the agent
	// of that workload's node, and starts it again, as a rollout or a
	// crash would, and returns once the new one serves.
	RestartAgent(ctx context.Context, workload string) error
	// KillCALeader kills the CA replica holding the leader lease, as a
	// crash (the lease stays taken until it expires), and returns its
	// identity at once; a replacement follows (local: a new replica,
	// started before it returns; kind: the kubelet restarts the killed
	// container).
	KillCALeader(ctx context.Context) (string, error)
}

// Workloads runs workloads and reads what they hold.
type Workloads interface {
	Deploy(ctx context.Context, w WorkloadSpec) error
	// Status reads what a workload holds and how its calls went.
	Status(ctx context.Context, name string) (workload.Status, error)
	// Call has workload from call workload to over mTLS.
	Call(ctx context.Context, from, to string) (peer string, err error)
	StartTraffic(ctx context.Context, from, to string, interval time.Duration) error
	StopTraffic(ctx context.Context, from string) (workload.Status, error)
	DeletePod(ctx context.Context, workload string) error
	// Pod reads a workload's pod.
	Pod(ctx context.Context, workload string) (*corev1.Pod, error)
	// TryTakeOverSocket runs, in namespace, a workload as root with the
	// node agent's socket directory mounted as workloads mount it, that
	// tries to unlink or replace the socket. It returns what the workload
	// reported, and an error unless every attempt was refused.
	TryTakeOverSocket(ctx context.Context, namespace string) (string, error)
}

// Provider brings up a cluster with a token profile, installs the mesh, runs
// workloads, and reads what they hold.
type Provider interface {
	Cluster
	Mesh
	Workloads
}

// Plugin runs kubectl meshcert in-process against k's cluster, and returns
// what it printed and its exit code.
func Plugin(ctx context.Context, k Kube, args ...string) (stdout, stderr string, code int) {
	return RunPlugin(ctx, k.Kubeconfig(), args...)
}

// CALeader is the identity of the CA replica holding the leader lease.
func CALeader(ctx context.Context, client kubernetes.Interface) (string, error) {
	lease, err := client.CoordinationV1().Leases(mesh.DefaultNamespace).Get(ctx, ca.DefaultLeaseName, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("read the CA's leader lease: %w", err)
	}
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		return "", errors.New("no CA replica holds the leader lease")
	}
	return *lease.Spec.HolderIdentity, nil
}

// DeleteSecret deletes a Secret in k's cluster.
func DeleteSecret(ctx context.Context, k Kube, namespace, name string) error {
	client, err := kubernetes.NewForConfig(k.RESTConfig())
	if err != nil {
		return err
	}
	return client.CoreV1().Secrets(namespace).Delete(ctx, name, metav1.DeleteOptions{})
}

// Scrape GETs http://addr/metrics.
func Scrape(ctx context.Context, addr string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/metrics: %s", addr, resp.Status)
	}
	return io.ReadAll(resp.Body)
}
