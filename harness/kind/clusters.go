// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package kind is the harness provider on real kind clusters: a real kubelet
// projects the workloads' tokens and mounts their Secrets, and the CA, the
// node agent and the workloads run as containers from the project's image.
// The mesh is installed with kubectl meshcert install, as a user would.
//
// Clusters are created with kind's Go library, one per token profile, and
// shared by the scenarios of a run: each scenario installs the mesh, and its
// tear-down uninstalls it and deletes the scenario's namespaces.
package kind

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/constants"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"

	"github.com/meshcert/kubectl-meshcert/harness/provider"
)

// Defaults of Options.
const (
	// DefaultNodeImage is kind's own node image, for machines that reach a registry.
	DefaultNodeImage = "kindest/node:v1.34.4"
	// OfflineNodeImage is what `make kind-node-image` builds where none is reachable.
	OfflineNodeImage = "meshcert/kind-node:v1.34.4"
	// DefaultImage is what `make image` builds.
	DefaultImage = "meshcert/meshcert:dev"
)

// Options configure the kind clusters of a run.
type Options struct {
	// NodeImage is the kind node image.
	NodeImage string
	// Image is the project's image, loaded into every node.
	Image string
	// Keep retains the clusters after the run.
	Keep bool
	// Out receives progress and kind's warnings.
	Out io.Writer
	// WaitForReady bounds the wait for the control plane. Zero means 3 minutes.
	WaitForReady time.Duration
}

// Clusters creates one kind cluster per profile on first use and deletes
// them all on Close.
type Clusters struct {
	opts     Options
	provider *kindcluster.Provider
	dir      string

	mu        sync.Mutex
	byProfile map[string]*Cluster
	// imageArchive is `docker save` of the project's image, once saved.
	imageArchive []byte
}

// Cluster is one running kind cluster.
type Cluster struct {
	Name       string
	Profile    string
	Kubeconfig string
	Config     *rest.Config
	Client     kubernetes.Interface
	// Created is how long creation took, image loading included.
	Created time.Duration

	nodes   []nodes.Node
	workers []string
}

// NewClusters returns an empty set of clusters; nothing is created yet.
func NewClusters(opts Options) (*Clusters, error) {
	if opts.NodeImage == "" {
		opts.NodeImage = DefaultNodeImage
	}
	if opts.Image == "" {
		opts.Image = DefaultImage
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.WaitForReady == 0 {
		opts.WaitForReady = 3 * time.Minute
	}
	if err := exec.Command("docker", "info").Run(); err != nil {
		return nil, fmt.Errorf("no Docker engine answers (docker info: %v): start one, for example with `make docker-up`", err)
	}
	// The node image may still be pulled by kind; the project's image is
	// only ever built here.
	if err := exec.Command("docker", "image", "inspect", opts.Image).Run(); err != nil {
		return nil, fmt.Errorf("the image %s is not in the Docker engine: build it with `make image` (IMAGE=%s)", opts.Image, opts.Image)
	}
	dir, err := os.MkdirTemp("", "meshcert-kind-")
	if err != nil {
		return nil, err
	}
	return &Clusters{
		opts:      opts,
		provider:  kindcluster.NewProvider(kindcluster.ProviderWithDocker(), kindcluster.ProviderWithLogger(newLogger(opts.Out))),
		dir:       dir,
		byProfile: map[string]*Cluster{},
	}, nil
}

// Get returns the cluster of profile, creating it on first use.
func (c *Clusters) Get(ctx context.Context, profile string) (*Cluster, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if existing, ok := c.byProfile[profile]; ok {
		return existing, nil
	}
	created, err := c.create(ctx, profile)
	if err != nil {
		return nil, err
	}
	c.byProfile[profile] = created
	return created, nil
}

func (c *Clusters) create(ctx context.Context, profile string) (*Cluster, error) {
	config, err := clusterConfig(profile)
	if err != nil {
		return nil, err
	}
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	name := "meshcert-" + profile + "-" + hex.EncodeToString(suffix)
	kubeconfig := filepath.Join(c.dir, name+".kubeconfig")
	start := time.Now()
	fmt.Fprintf(c.opts.Out, "kind: creating cluster %s (profile %s, node image %s)\n", name, profile, c.opts.NodeImage)
	err = c.provider.Create(name,
		kindcluster.CreateWithV1Alpha4Config(config),
		kindcluster.CreateWithNodeImage(c.opts.NodeImage),
		kindcluster.CreateWithKubeconfigPath(kubeconfig),
		kindcluster.CreateWithWaitForReady(c.opts.WaitForReady),
		// Kept on failure so that its logs can be collected first.
		kindcluster.CreateWithRetain(true),
		kindcluster.CreateWithDisplayUsage(false),
		kindcluster.CreateWithDisplaySalutation(false),
	)
	cl := &Cluster{Name: name, Profile: profile, Kubeconfig: kubeconfig}
	if err == nil {
		err = c.prepare(ctx, cl)
	}
	if err != nil {
		// Not under c.dir, which Close removes: the error points here.
		if logs, logErr := os.MkdirTemp("", name+"-logs-"); logErr == nil && c.provider.CollectLogs(name, logs) == nil {
			err = fmt.Errorf("%w (cluster logs in %s)", err, logs)
		}
		if !c.opts.Keep {
			_ = c.provider.Delete(name, kubeconfig)
		}
		return nil, fmt.Errorf("create kind cluster %s: %w", name, err)
	}
	cl.Created = time.Since(start)
	fmt.Fprintf(c.opts.Out, "kind: cluster %s ready in %s\n", name, cl.Created.Round(time.Second))
	return cl, nil
}

// prepare connects to a new cluster, loads the project's image into its
// nodes, and applies the profile's objects.
func (c *Clusters) prepare(ctx context.Context, cl *Cluster) error {
	var err error
	if cl.Config, err = clientcmd.BuildConfigFromFlags("", cl.Kubeconfig); err != nil {
		return err
	}
	// The harness is the only heavy client: mass starts create hundreds of
	// objects in seconds.
	cl.Config.QPS, cl.Config.Burst = 200, 400
	if cl.Client, err = kubernetes.NewForConfig(cl.Config); err != nil {
		return err
	}
	if cl.nodes, err = c.provider.ListInternalNodes(cl.Name); err != nil {
		return err
	}
	if cl.workers, err = workerNames(cl.nodes); err != nil {
		return err
	}
	if err := c.loadImage(cl.nodes); err != nil {
		return err
	}
	if err := routePods(ctx, cl); err != nil {
		return fmt.Errorf("route the pod network between nodes: %w", err)
	}
	if err := applyProfile(ctx, cl); err != nil {
		return err
	}
	if cl.Profile == provider.ProfileLegacy {
		refusal, err := projectionRefusal(ctx, cl, c.opts.Image)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.opts.Out, "kind: legacy profile holds: %s\n", refusal)
	}
	return nil
}

// loadImage streams the project's image into each node's containerd, as
// `kind load docker-image` does. The image is saved from Docker once per
// run; c.mu is held by Get.
func (c *Clusters) loadImage(targets []nodes.Node) error {
	if c.imageArchive == nil {
		var archive, stderr bytes.Buffer
		save := exec.Command("docker", "save", c.opts.Image)
		save.Stdout, save.Stderr = &archive, &stderr
		if err := save.Run(); err != nil {
			return fmt.Errorf("docker save %s: %v: %s", c.opts.Image, err, stderr.String())
		}
		c.imageArchive = archive.Bytes()
	}
	for _, node := range targets {
		if err := nodeutils.LoadImageArchive(node, bytes.NewReader(c.imageArchive)); err != nil {
			return fmt.Errorf("load %s into node %s: %w", c.opts.Image, node, err)
		}
	}
	return nil
}

// Workers names the cluster's worker nodes, sorted; a one-node cluster has
// none.
func (cl *Cluster) Workers() []string { return cl.workers }

func workerNames(all []nodes.Node) ([]string, error) {
	var workers []string
	for _, n := range all {
		role, err := n.Role()
		if err != nil {
			return nil, err
		}
		if role == constants.WorkerNodeRoleValue {
			workers = append(workers, n.String())
		}
	}
	slices.Sort(workers)
	return workers, nil
}

// ReadNodeFile reads a file from the cluster's control-plane node.
func (cl *Cluster) ReadNodeFile(path string) ([]byte, error) {
	return cl.NodeCommand("", "cat", path)
}

// NodeCommand runs a command on the node named node (the control-plane
// node when empty) and returns its standard output.
func (cl *Cluster) NodeCommand(node string, command string, args ...string) ([]byte, error) {
	for _, n := range cl.nodes {
		if node == "" {
			role, err := n.Role()
			if err != nil || role != constants.ControlPlaneNodeRoleValue {
				continue
			}
		} else if n.String() != node {
			continue
		}
		var out, stderr bytes.Buffer
		if err := n.Command(command, args...).SetStdout(&out).SetStderr(&stderr).Run(); err != nil {
			return nil, fmt.Errorf("%s %s on node %s: %w: %s", command, strings.Join(args, " "), n, err, strings.TrimSpace(stderr.String()))
		}
		return out.Bytes(), nil
	}
	if node == "" {
		return nil, errors.New("the cluster has no control-plane node")
	}
	return nil, fmt.Errorf("the cluster has no node %s", node)
}

// CollectLogs writes kind's logs of the profile's cluster into dir.
func (c *Clusters) CollectLogs(profile, dir string) error {
	c.mu.Lock()
	cl, ok := c.byProfile[profile]
	c.mu.Unlock()
	if !ok {
		return nil
	}
	return c.provider.CollectLogs(cl.Name, dir)
}

// Close deletes every cluster, or with Keep lists them.
func (c *Clusters) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, cl := range c.byProfile {
		if c.opts.Keep {
			fmt.Fprintf(c.opts.Out, "kind: kept cluster %s (profile %s): KUBECONFIG=%s; delete it with `docker rm -f %s-control-plane`\n",
				cl.Name, cl.Profile, cl.Kubeconfig, cl.Name)
			continue
		}
		if err := c.provider.Delete(cl.Name, cl.Kubeconfig); err != nil {
			errs = append(errs, fmt.Errorf("delete kind cluster %s: %w", cl.Name, err))
		}
	}
	c.byProfile = map[string]*Cluster{}
	if !c.opts.Keep {
		errs = append(errs, os.RemoveAll(c.dir))
	}
	return errors.Join(errs...)
}
