// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package local is the harness provider on the embedded control plane. It
// runs the CA and one node agent in-process, wired as install wires them in
// a cluster, and plays the kubelet for the workloads' pods: it projects
// their service-account tokens, materialises their Secret volumes with the
// kubelet's atomic-writer layout, and reports their status.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"

	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/spf13/pflag"

	"github.com/meshcert/kubectl-meshcert/core/agent"
	"github.com/meshcert/kubectl-meshcert/core/ca"
	"github.com/meshcert/kubectl-meshcert/core/deploy"
	"github.com/meshcert/kubectl-meshcert/core/filemount"
	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/core/token"
	"github.com/meshcert/kubectl-meshcert/harness/localcluster"
	"github.com/meshcert/kubectl-meshcert/harness/provider"
	"github.com/meshcert/kubectl-meshcert/harness/workload"
	"github.com/meshcert/kubectl-meshcert/plugin/cluster"
	"github.com/meshcert/kubectl-meshcert/plugin/install"
)

// Names the local provider uses, as install would.
const (
	CANamespace = mesh.DefaultNamespace
	NodeName    = "local-node"
	Audience    = token.DefaultAudience
)

// Provider is the local provider.
type Provider struct {
	// tuning is how a scenario changes the mesh: certificate lifetimes in
	// seconds, a bounded CA, CA replicas.
	tuning provider.Tuning
	// binaries, when set, is where the meshcert-ca and meshcert-agent
	// programs are: the mesh then runs as processes, not in this one.
	binaries string
	// nodes is how many simulated nodes run, each with an agent of its own.
	nodes int
	// held, while open, keeps deployed SDS workloads from connecting.
	held chan struct{}

	cluster *localcluster.Cluster
	dir     string
	log     *slog.Logger
	logFile *os.File
	ctx     context.Context
	cancel  context.CancelFunc

	mu        sync.Mutex
	mode      string
	caCfg     ca.Config
	caArgs    []string
	caService *service
	replicas  []*caReplica
	started   int
	agents    []component
	// caFronts is the CA Service's address for each node.
	caFronts  []string
	agentCfg  agent.Config
	agentArgs []string
	pods      map[string]*pod
	deployed  int
	rootFile  string
}

type pod struct {
	spec provider.WorkloadSpec
	node int
	w    *workload.Workload
}

// Option configures a local provider.
type Option func(*Provider)

// WithBinaries runs the CA and the node agent as the meshcert-ca and
// meshcert-agent programs found in dir, each as its own process, so that
// their memory and goroutines can be measured apart.
func WithBinaries(dir string) Option { return func(p *Provider) { p.binaries = dir } }

// WithNodes simulates n nodes, each with a node agent of its own on its own
// socket and node name, and spreads workloads across them in turn. The
// first is NodeName; one node is the default.
func WithNodes(n int) Option { return func(p *Provider) { p.nodes = max(n, 1) } }

// WithHeldWorkloads keeps each SDS workload from connecting to its agent
// until ReleaseWorkloads, so that a benchmark can start thousands at once.
func WithHeldWorkloads() Option { return func(p *Provider) { p.held = make(chan struct{}) } }

// ReleaseWorkloads lets every held workload connect at once; workloads
// deployed later connect at once too.
func (p *Provider) ReleaseWorkloads() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held != nil {
		close(p.held)
		p.held = nil
	}
}

// heldSource is an SDS workload that connects once its gate opens.
type heldSource struct {
	*workload.SDS
	gate <-chan struct{}
}

func (h heldSource) Run(ctx context.Context) {
	select {
	case <-h.gate:
		h.SDS.Run(ctx)
	case <-ctx.Done():
	}
}

// New returns a local provider.
func New(opts ...Option) *Provider {
	p := &Provider{pods: map[string]*pod{}, nodes: 1}
	for _, opt := range opts {
		opt(p)
	}
	return p
}

// Name is "local".
func (p *Provider) Name() string { return "local" }

// Up starts the embedded control plane with profile.
func (p *Provider) Up(ctx context.Context, profile string) error {
	var err error
	if p.dir, err = os.MkdirTemp("", "mh"); err != nil {
		return err
	}
	if p.logFile, err = os.Create(filepath.Join(p.dir, "mesh.log")); err != nil {
		return err
	}
	p.log = slog.New(slog.NewTextHandler(p.logFile, nil))
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.cluster, err = localcluster.Start(ctx, localcluster.Options{Profile: localcluster.Profile(profile)})
	if err != nil {
		return err
	}
	_, err = p.cluster.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: CANamespace}}, metav1.CreateOptions{})
	return err
}

// Cluster is the running control plane.
func (p *Provider) Cluster() *localcluster.Cluster { return p.cluster }

// InstallMesh runs the CA (with the file-mount controller for file-mount)
// and, for sds, the node agent.
func (p *Provider) InstallMesh(ctx context.Context, mode string) (string, error) {
	if mode == provider.MeshNone {
		return mode, nil
	}
	mode, err := provider.ResolveMesh(ctx, p.cluster.Config, mode)
	if err != nil {
		return "", err
	}
	p.mode = mode
	caCfg, agentCfg, objects, err := p.meshConfigs()
	if err != nil {
		return "", err
	}
	if err := p.grantMesh(ctx, objects); err != nil {
		return "", err
	}
	p.caCfg = caCfg
	if p.caService, err = newService(caCfg.Listen); err != nil {
		return "", fmt.Errorf("the CA's Service: %w", err)
	}
	if err := p.StartCA(ctx); err != nil {
		return "", err
	}
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := p.cluster.Client.CoreV1().ConfigMaps(CANamespace).Get(ctx, ca.RootConfigMapName, metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		return "", errors.New("the CA did not publish its root ConfigMap within 30s")
	}
	// The agent runs in both modes: in file-mount mode nothing connects to it.
	p.rootFile = filepath.Join(p.dir, "root-cert.pem")
	p.projectConfigMap(CANamespace, ca.RootConfigMapName, mesh.FileRootCert, p.rootFile)
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		_, err := os.Stat(p.rootFile)
		return err == nil, nil
	}); err != nil {
		return "", err
	}
	cfg := agentCfg
	cfg.CAAddress, cfg.CAServerName, cfg.CARootFile = p.caCfg.Listen, "localhost", p.rootFile
	cfg.MonitoringListen = "127.0.0.1:0"
	cfg.RetryBase, cfg.RetryMax, cfg.FilePollInterval = 200*time.Millisecond, 2*time.Second, 200*time.Millisecond
	if p.tuning.AgentRetryBase > 0 && p.tuning.AgentRetryMax > 0 {
		cfg.RetryBase, cfg.RetryMax = p.tuning.AgentRetryBase, p.tuning.AgentRetryMax
	}
	p.agentCfg = cfg
	p.agents, p.caFronts = make([]component, p.nodes), make([]string, p.nodes)
	for i := range p.nodes {
		p.caFronts[i] = p.caCfg.Listen
		if i > 0 {
			if p.caFronts[i], err = p.caService.listenFrom(nodeIP(i)); err != nil {
				return "", fmt.Errorf("the CA's Service for node %s: %w", nodeName(i), err)
			}
		}
	}
	if err := p.startAgents(ctx, nil); err != nil {
		return "", err
	}
	return mode, nil
}

// nodeName is the name of the i-th simulated node.
func nodeName(i int) string {
	if i == 0 {
		return NodeName
	}
	return NodeName + "-" + strconv.Itoa(i)
}

// nodeIP is the loopback address the i-th node's connections come from:
// the first node's is 127.0.0.1, the i-th's 127.0.1.(i+1) (then 127.0.2.x past 249).
func nodeIP(i int) net.IP {
	if i == 0 {
		return net.IPv4(127, 0, 0, 1)
	}
	return net.IPv4(127, 0, byte(1+i/250), byte(1+i%250))
}

// nodeSocket is where the i-th node's agent serves SDS.
func (p *Provider) nodeSocket(i int) string {
	if i == 0 {
		return filepath.Join(p.dir, "sds.sock")
	}
	return filepath.Join(p.dir, "sds-"+strconv.Itoa(i)+".sock")
}

// startAgents starts the agents of the nodes listed, or of every node, at
// once, and returns when all serve.
func (p *Provider) startAgents(ctx context.Context, nodes []int) error {
	if nodes == nil {
		for i := range p.nodes {
			nodes = append(nodes, i)
		}
	}
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for k, i := range nodes {
		wg.Go(func() {
			started, err := p.startAgent(ctx, i)
			if err != nil {
				errs[k] = fmt.Errorf("the agent of node %s: %w", nodeName(i), err)
				return
			}
			p.agents[i] = started
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// meshConfigs reads the CA's and the agent's configurations from the
// command lines install renders for this provider's tuning, parsed by the
// binaries' own flags, so that the in-process mesh runs as install runs it.
// The CA always runs the file-mount controller (idle until a namespace opts
// in) and the agent always runs (in file-mount mode nothing connects to it).
// The caller then points listeners, the socket and the root file at this
// machine.
func (p *Provider) meshConfigs() (ca.Config, agent.Config, []runtime.Object, error) {
	render := deploy.DefaultOptions()
	render.Image, render.FileMount = "meshcert/meshcert:local", true
	// The kubelet emulation brings a changed Secret into its pods within 200 ms.
	render.FileMountPropagation = time.Second
	render.WorkloadCertTTL, render.MaxConcurrentSignings = p.tuning.WorkloadTTL, p.tuning.MaxConcurrentSignings
	render.TokenVerification = p.tuning.TokenVerification
	objects := deploy.Render(render)

	caCfg := ca.DefaultConfig()
	args, err := deploy.Args(objects, mesh.CAName)
	if err != nil {
		return ca.Config{}, agent.Config{}, nil, err
	}
	fs := pflag.NewFlagSet(mesh.CAName, pflag.ContinueOnError)
	caCfg.AddFlags(fs)
	p.caArgs = append(args, "--file-mount-exclude", metav1.NamespaceSystem+","+CANamespace)
	if err := fs.Parse(p.caArgs); err != nil {
		return ca.Config{}, agent.Config{}, nil, fmt.Errorf("install's CA arguments: %w", err)
	}
	// The CA's Service; each replica listens on an address of its own.
	if caCfg.Listen, err = FreeAddr(); err != nil {
		return ca.Config{}, agent.Config{}, nil, err
	}
	caCfg.Logger = p.log.With("component", "ca")

	agentCfg := agent.DefaultConfig()
	if args, err = deploy.Args(objects, mesh.AgentName); err != nil {
		return ca.Config{}, agent.Config{}, nil, err
	}
	fs = pflag.NewFlagSet(mesh.AgentName, pflag.ContinueOnError)
	agentCfg.AddFlags(fs)
	p.agentArgs = args
	if err := fs.Parse(args); err != nil {
		return ca.Config{}, agent.Config{}, nil, fmt.Errorf("install's agent arguments: %w", err)
	}
	return caCfg, agentCfg, objects, nil
}

// grantMesh applies what install grants the mesh (its service accounts,
// RBAC and admission policies) but not its Deployment, DaemonSet and
// Service, which run in this process: the CA and the agent then hold the
// rights install gives them, and no more.
func (p *Provider) grantMesh(ctx context.Context, objects []runtime.Object) error {
	var grants []runtime.Object
	for _, obj := range objects {
		switch obj.(type) {
		case *appsv1.Deployment, *appsv1.DaemonSet, *corev1.Service, *corev1.Namespace:
		default:
			grants = append(grants, obj)
		}
	}
	clients := &cluster.Clients{Config: p.cluster.Config, Client: p.cluster.Client}
	if err := install.Apply(ctx, clients, grants, io.Discard); err != nil {
		return fmt.Errorf("grant the mesh install's rights: %w", err)
	}
	return nil
}

// as returns the cluster's configuration acting as the mesh's service
// account name, with the user extras its token would carry.
func (p *Provider) as(name string, extra map[string][]string) *rest.Config {
	config := rest.CopyConfig(p.cluster.Config)
	config.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + CANamespace + ":" + name, Extra: extra}
	return config
}

// ComponentConfig acts as the in-process CA or agent does: as its service
// account, the agent with the node its token would be bound to.
func (p *Provider) ComponentConfig(_ context.Context, component, workloadName string) (*rest.Config, error) {
	switch component {
	case mesh.CAName:
		return p.as(mesh.CAName, nil), nil
	case mesh.AgentName:
		node := 0
		if workloadName != "" {
			w, err := p.get(workloadName)
			if err != nil {
				return nil, err
			}
			node = w.node
		}
		return p.agentConfig(node), nil
	}
	return nil, fmt.Errorf("no mesh component %q: use %s or %s", component, mesh.CAName, mesh.AgentName)
}

// agentConfig acts as the agent of the i-th node: the kubelet binds the
// agent's token to its pod, and so to its node.
func (p *Provider) agentConfig(i int) *rest.Config {
	return p.as(mesh.AgentName, map[string][]string{deploy.NodeNameExtra: {nodeName(i)}})
}

// RestartAgent kills every node's agent at once, or with workload set the
// agent of its node, which closes their streams and forgets their keys,
// and starts new ones on the same sockets.
func (p *Provider) RestartAgent(ctx context.Context, workloadName string) error {
	var nodes []int
	if workloadName != "" {
		w, err := p.get(workloadName)
		if err != nil {
			return err
		}
		nodes = []int{w.node}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.agents) == 0 {
		return errors.New("no node agent runs: install the mesh in sds mode first")
	}
	var wg sync.WaitGroup
	for i, a := range p.agents {
		if nodes == nil || slices.Contains(nodes, i) {
			wg.Go(a.Kill)
		}
	}
	wg.Wait()
	if err := p.startAgents(ctx, nodes); err != nil {
		return fmt.Errorf("restart the node agents: %w", err)
	}
	return nil
}

// ScrapeCA reads the metrics of the CA's first live replica.
func (p *Provider) ScrapeCA(ctx context.Context) ([]byte, error) {
	p.mu.Lock()
	var addr string
	if len(p.replicas) > 0 {
		addr = p.replicas[0].MonitoringAddr()
	}
	p.mu.Unlock()
	if addr == "" {
		return nil, errors.New("the CA is stopped")
	}
	return provider.Scrape(ctx, addr)
}

// ScrapeAgent reads the metrics of the first node's agent.
func (p *Provider) ScrapeAgent(ctx context.Context) ([]byte, error) {
	p.mu.Lock()
	var agent component
	if len(p.agents) > 0 {
		agent = p.agents[0]
	}
	p.mu.Unlock()
	if agent == nil {
		return nil, errors.New("no node agent runs: install the mesh first")
	}
	return provider.Scrape(ctx, agent.MonitoringAddr())
}

// MonitoringTargets are the monitoring addresses of the running CA
// replicas and of the node agent, by component, for a Prometheus to scrape.
// They change when a replica or the agent is replaced.
func (p *Provider) MonitoringTargets() map[string][]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	targets := map[string][]string{mesh.CAName: {}, mesh.AgentName: {}}
	for _, r := range p.replicas {
		targets[mesh.CAName] = append(targets[mesh.CAName], r.MonitoringAddr())
	}
	for _, a := range p.agents {
		targets[mesh.AgentName] = append(targets[mesh.AgentName], a.MonitoringAddr())
	}
	return targets
}

// StartCA starts the CA's replicas behind its Service, as scaling its
// Deployment up would.
func (p *Provider) StartCA(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.replicas) < max(p.tuning.CAReplicas, 1) {
		replica, err := p.startCAReplica(ctx, p.started)
		if err != nil {
			return err
		}
		p.started++
		p.replicas = append(p.replicas, replica)
		p.caService.setBackends(p.backends())
	}
	return nil
}

func (p *Provider) backends() []string {
	addrs := make([]string, 0, len(p.replicas))
	for _, r := range p.replicas {
		addrs = append(addrs, r.addr)
	}
	return addrs
}

// StopCA kills every CA replica, as if its pods were gone.
func (p *Provider) StopCA(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.caService != nil {
		p.caService.setBackends(nil)
	}
	for _, r := range p.replicas {
		r.Kill()
	}
	p.replicas = nil
	return nil
}

// RestartAPIServer restarts the control-plane process: the API server,
// etcd and the controllers stop and start again on the same data, keys and
// port.
func (p *Provider) RestartAPIServer(ctx context.Context) error { return p.cluster.Restart(ctx) }

// KillCALeader kills the replica holding the leader lease, as a crash of
// its pod, and starts a replacement as the Deployment would. It returns the
// killed replica's identity.
func (p *Provider) KillCALeader(ctx context.Context) (string, error) {
	holder, err := provider.CALeader(ctx, p.cluster.Client)
	if err != nil {
		return "", err
	}
	p.mu.Lock()
	i := slices.IndexFunc(p.replicas, func(r *caReplica) bool { return r.identity == holder })
	if i < 0 {
		p.mu.Unlock()
		return "", fmt.Errorf("the leader lease names %q, which is no running replica", holder)
	}
	killed := p.replicas[i]
	p.replicas = slices.Delete(p.replicas, i, i+1)
	p.caService.setBackends(p.backends())
	p.mu.Unlock()
	killed.Kill()
	return holder, p.StartCA(ctx)
}

// Deploy creates the workload's pod and plays the kubelet for it.
func (p *Provider) Deploy(ctx context.Context, spec provider.WorkloadSpec) error {
	client := p.cluster.Client
	if err := provider.PrepareWorkload(ctx, client, &spec, p.mode); err != nil {
		return err
	}
	p.mu.Lock()
	node := p.deployed % p.nodes
	p.deployed++
	p.mu.Unlock()
	podSpec := corev1.PodSpec{
		ServiceAccountName: spec.ServiceAccount, NodeName: nodeName(node),
		Containers: []corev1.Container{{Name: "workload", Image: "meshcert/meshcert:local"}},
	}
	if spec.Path == provider.MeshFileMount {
		filemount.MountSecret(&podSpec)
	} else {
		podSpec.Volumes = append(podSpec.Volumes, provider.ProjectedTokenVolume("meshcert-token", Audience))
	}
	created, err := client.CoreV1().Pods(spec.Namespace).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: spec.Name}, Spec: podSpec}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	dir := filepath.Join(p.dir, "pods", spec.Namespace, spec.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var source workload.Source
	if spec.Path == provider.MeshFileMount {
		certs := filepath.Join(dir, "certs")
		p.mountSecret(spec.Namespace, filemount.SecretName(spec.ServiceAccount), certs)
		source = &workload.Files{Dir: certs}
	} else {
		tokenFile := filepath.Join(dir, "token")
		project := p.projectToken
		if spec.Token != "" {
			project = func(ctx context.Context, pod *corev1.Pod, file string) error {
				return p.badToken(ctx, pod, spec.Token, file)
			}
		}
		if err := project(ctx, created, tokenFile); err != nil {
			p.setPodStatus(ctx, created, corev1.PodFailed, "FailedMount", err.Error())
			return err
		}
		sds := &workload.SDS{Socket: p.nodeSocket(node), TokenFile: tokenFile, Node: spec.Name}
		source = sds
		p.mu.Lock()
		if p.held != nil {
			source = heldSource{SDS: sds, gate: p.held}
		}
		p.mu.Unlock()
	}
	w, err := workload.Start(p.ctx, spec.Name, source, spec.Allow)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.pods[spec.Name] = &pod{spec: spec, node: node, w: w}
	p.mu.Unlock()
	p.setPodStatus(ctx, created, corev1.PodRunning, "", "")
	return nil
}

func (p *Provider) setPodStatus(ctx context.Context, created *corev1.Pod, phase corev1.PodPhase, reason, message string) {
	created = created.DeepCopy()
	created.Status.Phase, created.Status.Reason, created.Status.Message = phase, reason, message
	if _, err := p.cluster.Client.CoreV1().Pods(created.Namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		p.log.Warn("pod status update failed", "pod", created.Name, "error", err)
	}
}

func (p *Provider) get(name string) (*pod, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	w, ok := p.pods[name]
	if !ok {
		return nil, fmt.Errorf("no workload %q has been deployed", name)
	}
	return w, nil
}

// Status reads what a workload holds.
func (p *Provider) Status(_ context.Context, name string) (workload.Status, error) {
	w, err := p.get(name)
	if err != nil {
		return workload.Status{}, err
	}
	return w.w.Status(), nil
}

// Tune sets certificate lifetimes, the CA bound and its replicas before
// InstallMesh.
func (p *Provider) Tune(t provider.Tuning) { p.tuning = t }

// DeletePod deletes a workload's pod object; the workload keeps running, as
// a process would until the kubelet killed it.
func (p *Provider) DeletePod(ctx context.Context, name string) error {
	w, err := p.get(name)
	if err != nil {
		return err
	}
	return p.cluster.Client.CoreV1().Pods(w.spec.Namespace).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
}

// Pod reads a workload's pod.
func (p *Provider) Pod(ctx context.Context, name string) (*corev1.Pod, error) {
	w, err := p.get(name)
	if err != nil {
		return nil, err
	}
	return p.cluster.Client.CoreV1().Pods(w.spec.Namespace).Get(ctx, name, metav1.GetOptions{})
}

// Call has one workload call another.
func (p *Provider) Call(ctx context.Context, from, to string) (string, error) {
	a, err := p.get(from)
	if err != nil {
		return "", err
	}
	b, err := p.get(to)
	if err != nil {
		return "", err
	}
	return a.w.Call(ctx, b.w.Addr())
}

// StartTraffic makes from call to every interval.
func (p *Provider) StartTraffic(_ context.Context, from, to string, interval time.Duration) error {
	a, err := p.get(from)
	if err != nil {
		return err
	}
	b, err := p.get(to)
	if err != nil {
		return err
	}
	a.w.StartTraffic(b.w.Addr(), interval)
	return nil
}

// StopTraffic stops from's calls and reports its counts.
func (p *Provider) StopTraffic(_ context.Context, from string) (workload.Status, error) {
	a, err := p.get(from)
	if err != nil {
		return workload.Status{}, err
	}
	a.w.StopTraffic()
	return a.w.Status(), nil
}

// Kubeconfig is the cluster's kubeconfig file.
func (p *Provider) Kubeconfig() string { return p.cluster.Kubeconfig }

// RESTConfig is the cluster's client configuration.
func (p *Provider) RESTConfig() *rest.Config { return p.cluster.Config }

// Logs copies the mesh log and the control plane's log into dir.
func (p *Provider) Logs(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	copyFile := func(from, to string) error {
		in, err := os.Open(from)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(to)
		if err != nil {
			return err
		}
		defer out.Close()
		_, err = io.Copy(out, in)
		return err
	}
	err := copyFile(filepath.Join(p.dir, "mesh.log"), filepath.Join(dir, "mesh.log"))
	if p.cluster != nil {
		err = errors.Join(err, copyFile(filepath.Join(p.cluster.Dir(), "controlplane.log"), filepath.Join(dir, "controlplane.log")))
	}
	return err
}

// Down stops everything and removes what Up created.
func (p *Provider) Down() error {
	if p.cancel != nil {
		p.cancel()
	}
	for _, a := range p.agents {
		if a != nil {
			a.Kill()
		}
	}
	_ = p.StopCA(context.Background())
	if p.caService != nil {
		p.caService.close()
	}
	var err error
	if p.cluster != nil {
		err = p.cluster.Stop()
	}
	if p.logFile != nil {
		p.logFile.Close()
	}
	return errors.Join(err, os.RemoveAll(p.dir))
}

// Socket is the SDS socket of the first node's agent.
func (p *Provider) Socket() string { return p.nodeSocket(0) }

// RootFile is the CA root bundle as the agent sees it.
func (p *Provider) RootFile() string { return p.rootFile }

// CAAddress is the CA's gRPC address.
func (p *Provider) CAAddress() string { return p.caCfg.Listen }

// PodDir is where the kubelet emulation lays out a workload's files.
func (p *Provider) PodDir(namespace, name string) string {
	return filepath.Join(p.dir, "pods", namespace, name)
}

var _ provider.Provider = (*Provider)(nil)
