// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package bench measures meshcert's CA and node agent beside Istio's own CA
// server and SDS server, on one embedded API server, with one load
// generator, and writes the figures as a report with plots. Istio's code
// runs as the istio-peer program, built by make bench from the nested
// module bench/istio.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/meshcert/kubectl-meshcert/core/ca"
	"github.com/meshcert/kubectl-meshcert/core/filemount"
	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/core/pki"
	"github.com/meshcert/kubectl-meshcert/harness/local"
	"github.com/meshcert/kubectl-meshcert/harness/provider"
	"github.com/meshcert/kubectl-meshcert/plugin/optin"
)

// The servers compared, as the report names them.
const (
	MeshcertReview = "meshcert, TokenReview per CSR"
	MeshcertCached = "meshcert, review cache"
	MeshcertLocal  = "meshcert, local verification"
	Istio          = "Istio CA"
	IstioQPS80     = "Istio CA at istiod's QPS 80"
	MeshcertAgent  = "meshcert agent"
	IstioAgent     = "Istio SDS server"
)

// Options is what a run measures.
type Options struct {
	// Binaries holds meshcert-ca, meshcert-agent and istio-peer.
	Binaries string
	// Concurrency is the callers of each CA load.
	Concurrency []int
	// Warmup and Duration are each CA load's unmeasured and measured parts.
	Warmup, Duration time.Duration
	// Workloads is how many service accounts' tokens the CA loads carry.
	Workloads int
	// Streams is the SDS stream counts measured; rotations are pushed to
	// each.
	Streams []int
	// RotationTTL is the workload certificate lifetime in the SDS part;
	// both agents rotate at half of it.
	RotationTTL time.Duration
	// Identities is how many identities the per-identity memory figure of
	// meshcert's agent is taken over.
	Identities int
	// FileMountServiceAccounts is how many service accounts the file-mount
	// controller writes Secrets for.
	FileMountServiceAccounts int
	// Progress receives a line per step.
	Progress io.Writer
}

// DefaultOptions are make bench's.
func DefaultOptions() Options {
	return Options{Concurrency: []int{8, 32, 128}, Warmup: time.Second, Duration: 4 * time.Second, Workloads: 100,
		Streams: []int{100, 1000}, RotationTTL: 20 * time.Second, Identities: 100, FileMountServiceAccounts: 1000,
		Progress: io.Discard}
}

// CARun is one CA load's result.
type CARun struct {
	Server      string
	Concurrency int
	LoadResult
}

// SDSRun is one SDS measurement: streams opened, how long they took to
// get their first certificate, and the span of a rotation's arrival over
// them.
type SDSRun struct {
	Server           string
	Streams          int
	OpenP50, OpenP99 time.Duration
	FanOut           time.Duration
}

// Report is one run's figures.
type Report struct {
	Started   time.Time
	Took      time.Duration
	Cores     int
	GoVersion string
	// Workloads is how many service accounts' tokens the CA loads carry.
	Workloads int
	// RotationTTL is the certificate lifetime in the SDS part.
	RotationTTL time.Duration
	CA          []CARun
	SigningRate map[pki.KeyAlgorithm]float64
	SDS         []SDSRun
	// RSSPerStream and RSSPerIdentity are in bytes, by server.
	RSSPerStream   map[string]float64
	RSSPerIdentity map[string]float64
	// FileMount is the time until every service account had its Secret.
	FileMount         time.Duration
	FileMountAccounts int
	// Fleet is the fleet benchmark's runs, when it ran with the report.
	Fleet        []FleetRun
	FleetOptions FleetOptions
}

type run struct {
	o        Options
	p        *local.Provider
	dir      string
	requests []Request
	report   *Report
}

func (r *run) step(format string, args ...any) {
	fmt.Fprintf(r.o.Progress, "==> [%s] %s\n", time.Now().Format(time.TimeOnly), fmt.Sprintf(format, args...))
}

// Run brings up the embedded control plane with meshcert's CA and agent as
// programs, measures both and Istio's, and returns the report.
func Run(ctx context.Context, o Options) (*Report, error) {
	istioPeer := filepath.Join(o.Binaries, "istio-peer")
	if _, err := os.Stat(istioPeer); err != nil {
		return nil, fmt.Errorf("no %s: build Istio's peer with make bench (it compiles bench/istio): %w", istioPeer, err)
	}
	r := &run{o: o, report: &Report{Started: time.Now(), Cores: runtime.NumCPU(), GoVersion: runtime.Version(),
		Workloads: o.Workloads, RotationTTL: o.RotationTTL,
		SigningRate: map[pki.KeyAlgorithm]float64{}, RSSPerStream: map[string]float64{}, RSSPerIdentity: map[string]float64{}}}
	var err error
	if r.dir, err = os.MkdirTemp("", "meshcert-bench"); err != nil {
		return nil, err
	}
	defer os.RemoveAll(r.dir)
	r.step("starting the embedded control plane, meshcert's CA and its agent")
	r.p = local.New(local.WithBinaries(o.Binaries))
	defer func() { _ = r.p.Down() }()
	if err := r.p.Up(ctx, provider.ProfileBound); err != nil {
		return nil, err
	}
	// Local verification at install, so that the CA's role can watch what
	// it reads; each load below starts its own CA with its own setting.
	r.p.Tune(provider.Tuning{WorkloadTTL: o.RotationTTL, TokenVerification: ca.TokenVerificationLocal})
	if _, err := r.p.InstallMesh(ctx, provider.MeshSDS); err != nil {
		return nil, err
	}
	if r.requests, err = workloadRequests(ctx, r.p.Cluster().Client, "bench", local.NodeName, o.Workloads); err != nil {
		return nil, fmt.Errorf("the benchmark's workloads: %w", err)
	}
	for _, stage := range []func(context.Context) error{r.floor, r.caLoads, r.istioSDS, r.sdsFloor, r.meshcertAgent, r.fileMount} {
		if err := stage(ctx); err != nil {
			return r.report, err
		}
	}
	r.report.Took = time.Since(r.report.Started)
	return r.report, nil
}

func (r *run) floor(context.Context) error {
	r.step("the signing floor: parse, check and sign in this process on %d cores", runtime.NumCPU())
	for _, alg := range []pki.KeyAlgorithm{pki.ECDSAP256, pki.RSA2048} {
		rate, err := SigningFloor(r.requests[0].CSR, alg, 2*time.Second)
		if err != nil {
			return err
		}
		r.report.SigningRate[alg] = rate
	}
	return nil
}

func (r *run) meters(caPID int) map[string]Meter {
	return map[string]Meter{
		"ca-cpu":        CPUSeconds(caPID),
		"apiserver-cpu": CPUSeconds(r.p.Cluster().PID()),
		"reviews":       TokenReviews(r.p.Cluster().Client.Discovery().RESTClient()),
	}
}

// caUnderLoad is one CA the loads compare: its name in the report, its
// program, and where it answers.
type caUnderLoad struct {
	server string
	proc   interface {
		PID() int
		Kill()
	}
	target CATarget
}

// caLoads starts every CA compared, each a program of its own, then loads
// them in turn at each number of callers. The order rotates from one number
// to the next, so that no server is always the first loaded after the
// cluster was set up, nor always the last: each is measured in the same
// state of the machine as the others.
func (r *run) caLoads(ctx context.Context) error {
	servers, err := r.startCAs(ctx)
	defer func() {
		for _, s := range servers {
			s.proc.Kill()
		}
	}()
	if err != nil {
		return err
	}
	// The report lists each server's runs together, by number of callers.
	runs := make([][]CARun, len(servers))
	for i, c := range r.o.Concurrency {
		for _, k := range loadOrder(len(servers), i, len(r.o.Concurrency)) {
			s := servers[k]
			r.step("%s: %d callers", s.server, c)
			res, err := Load{Target: s.target, Requests: r.requests, Concurrency: c, Connections: 4,
				Warmup: r.o.Warmup, Duration: r.o.Duration, Meters: r.meters(s.proc.PID())}.Run(ctx)
			if err != nil {
				return fmt.Errorf("%s, %d callers: %w", s.server, c, err)
			}
			runs[k] = append(runs[k], CARun{Server: s.server, Concurrency: c, LoadResult: res})
		}
	}
	r.report.CA = slices.Concat(runs...)
	return nil
}

// loadOrder is the order in which n servers are loaded in round i of
// rounds: each once, starting from a server further along in each round.
func loadOrder(n, i, rounds int) []int {
	order := make([]int, n)
	for j := range order {
		order[j] = (i*n/rounds + j) % n
	}
	return order
}

// startCAs starts meshcert's CA in its three settings, with its admission
// limits lifted as Istio has none, Istio's CA at istiod's client QPS and at
// none, and the review floor. It returns those it started, also on error.
func (r *run) startCAs(ctx context.Context) ([]caUnderLoad, error) {
	r.step("starting the CAs compared: meshcert's in three settings, Istio's at two client limits, the review floor")
	root, err := os.ReadFile(r.p.RootFile())
	if err != nil {
		return nil, err
	}
	unbounded := []string{"--max-concurrent-signings=100000", "--max-concurrent-authentications=100000",
		"--max-concurrent-authentications-per-peer=100000", "--kube-api-qps=0"}
	var servers []caUnderLoad
	for i, setting := range []struct {
		server string
		args   []string
	}{
		{MeshcertReview, []string{"--token-verification=" + ca.TokenVerificationReview, "--token-review-cache-ttl=0"}},
		{MeshcertCached, []string{"--token-verification=" + ca.TokenVerificationReview}},
		{MeshcertLocal, []string{"--token-verification=" + ca.TokenVerificationLocal}},
	} {
		proc, err := r.p.StartCAProcess(ctx, "bench-ca-"+strconv.Itoa(i), append(unbounded, setting.args...)...)
		if err != nil {
			return servers, err
		}
		servers = append(servers, caUnderLoad{setting.server, proc, CATarget{Addr: proc.Addr, RootPEM: root, ServerName: "localhost"}})
	}
	istioPeer, harness := filepath.Join(r.o.Binaries, "istio-peer"), filepath.Join(r.o.Binaries, "meshcert-harness")
	for _, peer := range []struct {
		server, name, binary string
		args                 []string
	}{
		{IstioQPS80, "istio-ca-80", istioPeer, []string{"ca", "--qps", "80"}},
		{Istio, "istio-ca", istioPeer, []string{"ca", "--qps", "0"}},
		{ReviewFloor, "floor-ca", harness, []string{"bench-floor", "ca"}},
	} {
		proc, target, err := r.startPeerCA(ctx, peer.name, peer.binary, peer.args...)
		if err != nil {
			return servers, fmt.Errorf("%s: %w", peer.server, err)
		}
		servers = append(servers, caUnderLoad{peer.server, proc, target})
	}
	return servers, nil
}

// startPeerCA runs a CA program, named name in its files, with the CA's
// service account as meshcert's CA runs, and waits for the serving root it
// writes.
func (r *run) startPeerCA(ctx context.Context, name, binary string, args ...string) (*peerProcess, CATarget, error) {
	kubeconfig, err := r.p.ComponentKubeconfig(mesh.CAName)
	if err != nil {
		return nil, CATarget{}, err
	}
	addr, err := local.FreeAddr()
	if err != nil {
		return nil, CATarget{}, err
	}
	rootFile := r.peerRootFile(name)
	proc, err := startPeer(binary, filepath.Join(r.dir, name+".log"),
		append(args, "--listen", addr, "--kubeconfig", kubeconfig, "--root-out", rootFile)...)
	if err != nil {
		return nil, CATarget{}, err
	}
	if err := proc.awaitFile(ctx, rootFile); err != nil {
		proc.Kill()
		return nil, CATarget{}, err
	}
	root, err := os.ReadFile(rootFile)
	if err != nil {
		proc.Kill()
		return nil, CATarget{}, err
	}
	return proc, CATarget{Addr: addr, RootPEM: root, ServerName: "localhost"}, nil
}

// peerRootFile is where the peer CA named name writes its serving root.
func (r *run) peerRootFile(name string) string {
	return filepath.Join(r.dir, name+"-root.pem")
}

// istioSDS measures Istio's SDS server, which asks Istio's CA.
func (r *run) istioSDS(ctx context.Context) error {
	r.step("%s: one identity, streams of %v", IstioAgent, r.o.Streams)
	const caName = "istio-ca-sds"
	istioCA, target, err := r.startPeerCA(ctx, caName, filepath.Join(r.o.Binaries, "istio-peer"), "ca", "--qps", "0")
	if err != nil {
		return err
	}
	defer istioCA.Kill()
	tokenFile := filepath.Join(r.dir, "istio-token")
	if err := os.WriteFile(tokenFile, []byte(r.requests[0].Token), 0o600); err != nil {
		return err
	}
	agentDir := filepath.Join(r.dir, "istio-agent")
	agent, err := startPeer(filepath.Join(r.o.Binaries, "istio-peer"), filepath.Join(r.dir, "istio-sds.log"),
		"sds", "--dir", agentDir, "--ca-address", target.Addr, "--ca-root-file", r.peerRootFile(caName), "--token-file", tokenFile,
		"--cert-ttl", r.o.RotationTTL.String())
	if err != nil {
		return err
	}
	defer agent.Kill()
	socket := filepath.Join(agentDir, "var/run/secrets/workload-spiffe-uds/socket")
	if err := agent.awaitFile(ctx, socket); err != nil {
		return err
	}
	perStream, err := r.sds(ctx, IstioAgent, SDSTarget{Socket: socket, Token: r.requests[0].Token}, agent.PID())
	if err != nil {
		return err
	}
	r.report.RSSPerStream[IstioAgent] = perStream
	// Istio runs an agent per pod: an identity costs a whole agent, here
	// the one that served the streams above.
	rss, err := RSS(agent.PID())
	r.report.RSSPerIdentity[IstioAgent] = rss
	return err
}

// sdsFloor measures the SDS floor as the agents were measured, a program
// of its own (meshcert-harness bench-floor sds).
func (r *run) sdsFloor(ctx context.Context) error {
	harness := filepath.Join(r.o.Binaries, "meshcert-harness")
	r.step("%s: streams of %v", SDSFloor, r.o.Streams)
	socket := filepath.Join(r.dir, "floor-sds.sock")
	floorSDS, err := startPeer(harness, filepath.Join(r.dir, "floor-sds.log"),
		"bench-floor", "sds", "--socket", socket, "--interval", (r.o.RotationTTL / 2).String())
	if err != nil {
		return err
	}
	defer floorSDS.Kill()
	if err := floorSDS.awaitFile(ctx, socket); err != nil {
		return err
	}
	perStream, err := r.sds(ctx, SDSFloor, SDSTarget{Socket: socket}, floorSDS.PID())
	r.report.RSSPerStream[SDSFloor] = perStream
	return err
}

// sds opens one stream on a fresh agent (its first certificate included),
// waits for a rotation, and right after each rotation opens the next count
// of Streams and takes the median fan-out of the three rotations after. It
// returns the agent's memory growth per stream over the largest count.
func (r *run) sds(ctx context.Context, server string, target SDSTarget, pid int) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*r.o.RotationTTL)
	defer cancel()
	probe, err := OpenStreams(ctx, target, 1, 1)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", server, err)
	}
	defer probe.Close()
	// The next counts are opened right after a rotation, so that the one
	// after reaches them all.
	if _, err := probe.AwaitPush(ctx); err != nil {
		return 0, fmt.Errorf("%s, 1 stream: %w", server, err)
	}
	first := probe.OpenLatencies()[0]
	r.report.SDS = append(r.report.SDS, SDSRun{Server: server, Streams: 1, OpenP50: first, OpenP99: first})
	var perStream float64
	for _, n := range r.o.Streams {
		before, err := RSS(pid)
		if err != nil {
			return 0, err
		}
		set, err := OpenStreams(ctx, target, n, 50)
		if err != nil {
			return 0, fmt.Errorf("%s, %d streams: %w", server, n, err)
		}
		after, err := RSS(pid)
		if err != nil {
			set.Close()
			return 0, err
		}
		perStream = (after - before) / float64(n)
		fanOut, err := medianPush(ctx, set, 3)
		latencies := set.OpenLatencies()
		set.Close()
		if err != nil {
			return 0, fmt.Errorf("%s, %d streams: %w", server, n, err)
		}
		r.report.SDS = append(r.report.SDS, SDSRun{Server: server, Streams: n,
			OpenP50: percentile(latencies, 0.5), OpenP99: percentile(latencies, 0.99), FanOut: fanOut})
	}
	return perStream, nil
}

// medianPush waits for rotations pushes to every stream and returns the
// median of their fan-outs.
func medianPush(ctx context.Context, set *Streams, rotations int) (time.Duration, error) {
	spans := make([]time.Duration, 0, rotations)
	for range rotations {
		span, err := set.AwaitPush(ctx)
		if err != nil {
			return 0, err
		}
		spans = append(spans, span)
	}
	slices.Sort(spans)
	return spans[len(spans)/2], nil
}

// meshcertAgent measures the provider's agent as Istio's SDS server was
// measured, then restarts it and opens one stream for each of Identities
// workloads, for its memory per identity.
func (r *run) meshcertAgent(ctx context.Context) error {
	r.step("%s: one identity, streams of %v; then %d identities", MeshcertAgent, r.o.Streams, r.o.Identities)
	if err := r.p.RestartAgent(ctx, ""); err != nil {
		return err
	}
	pid := r.p.PIDs()[mesh.AgentName][0]
	perStream, err := r.sds(ctx, MeshcertAgent, SDSTarget{Socket: r.p.Socket(), Token: r.requests[0].Token}, pid)
	if err != nil {
		return err
	}
	r.report.RSSPerStream[MeshcertAgent] = perStream

	if err := r.p.RestartAgent(ctx, ""); err != nil {
		return err
	}
	pid = r.p.PIDs()[mesh.AgentName][0]
	before, err := RSS(pid)
	if err != nil {
		return err
	}
	var sets []*Streams
	defer func() {
		for _, s := range sets {
			s.Close()
		}
	}()
	for _, req := range r.requests[:min(r.o.Identities, len(r.requests))] {
		set, err := OpenStreams(ctx, SDSTarget{Socket: r.p.Socket(), Token: req.Token}, 1, 1)
		if err != nil {
			return fmt.Errorf("%s, an identity's stream: %w", MeshcertAgent, err)
		}
		sets = append(sets, set)
	}
	after, err := RSS(pid)
	r.report.RSSPerIdentity[MeshcertAgent] = (after - before) / float64(len(sets))
	return err
}

// fileMount opts a namespace into the file-mount path as kubectl meshcert
// file-mount enable does, creates its service
// accounts 16 at a time, and times until each has its Secret, at the
// controller's default write limits.
func (r *run) fileMount(ctx context.Context) error {
	n := r.o.FileMountServiceAccounts
	r.step("file-mount: Secrets for %d service accounts", n)
	client := r.p.Cluster().Client
	const ns = "bench-file-mount"
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if err := optin.Enable(ctx, client, mesh.DefaultNamespace, ns); err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns))
	secrets := factory.Core().V1().Secrets().Informer()
	var mu sync.Mutex
	written := map[string]bool{}
	all := make(chan struct{})
	if _, err := secrets.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		s, ok := obj.(*corev1.Secret)
		if !ok {
			return
		}
		if _, ok := filemount.ServiceAccountOf(s.Name); !ok {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		written[s.Name] = true
		if len(written) == n+1 { // and the namespace's default service account
			close(all)
		}
	}}); err != nil {
		return err
	}
	stop := make(chan struct{})
	defer close(stop)
	factory.Start(stop)
	start := time.Now()
	errs := make([]error, n)
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_, errs[i] = client.CoreV1().ServiceAccounts(ns).Create(ctx,
				&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("sa-%04d", i)}}, metav1.CreateOptions{})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	select {
	case <-all:
	case <-time.After(10 * time.Minute):
		mu.Lock()
		defer mu.Unlock()
		return fmt.Errorf("file-mount: %d of %d Secrets after 10 minutes", len(written), n+1)
	case <-ctx.Done():
		return ctx.Err()
	}
	r.report.FileMount, r.report.FileMountAccounts = time.Since(start), n
	return nil
}
