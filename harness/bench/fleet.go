// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/meshcert/kubectl-meshcert/core/agent"
	"github.com/meshcert/kubectl-meshcert/core/ca"
	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/harness/local"
	"github.com/meshcert/kubectl-meshcert/harness/provider"
)

// FleetOptions is a fleet benchmark: Workloads of ServiceAccounts (spread
// over Namespaces) on Nodes simulated nodes, for each token verification
// mode and CA replica count.
type FleetOptions struct {
	Binaries        string
	Workloads       int
	ServiceAccounts int
	Namespaces      int
	Nodes           int
	Verifications   []string
	Replicas        []int
	// Timeout bounds each phase.
	Timeout  time.Duration
	Progress io.Writer
}

// DefaultFleetOptions are the issue's: 5,000 workloads of 500 service
// accounts on 50 nodes, both modes, one and two replicas.
func DefaultFleetOptions() FleetOptions {
	return FleetOptions{Workloads: 5000, ServiceAccounts: 500, Namespaces: 10, Nodes: 50,
		Verifications: []string{ca.TokenVerificationReview, ca.TokenVerificationLocal}, Replicas: []int{1, 2},
		Timeout: 15 * time.Minute, Progress: io.Discard}
}

// The fleet's phases.
const (
	PhaseMassStart    = "mass start"
	PhaseAgentRestart = "every agent restarted"
)

// FleetRun is one phase of one setting: how long until every workload was
// served, what the CA and the API server did meanwhile, and the peaks of
// memory.
type FleetRun struct {
	Verification string
	Replicas     int
	Phase        string
	Workloads    int
	Took         time.Duration
	// Served is how many workloads held a new certificate at the end.
	Served int
	// CSRs, ResourceExhausted and TokenReviews are counted over the phase.
	CSRs, ResourceExhausted, TokenReviews float64
	// APIServerCPU, CACPU and AgentCPU are CPU seconds used over the
	// phase: the CA's summed over its replicas, the agents' over every
	// agent, including those started during it.
	APIServerCPU, CACPU, AgentCPU float64
	// PeakCARSS is the largest replica's; PeakAgentRSS the largest agent's.
	PeakCARSS, PeakAgentRSS float64
}

// PerSecond is n over the phase.
func (r FleetRun) PerSecond(n float64) float64 { return n / r.Took.Seconds() }

// RunFleet runs every setting on a fresh control plane each.
func RunFleet(ctx context.Context, o FleetOptions) ([]FleetRun, error) {
	var runs []FleetRun
	for _, verification := range o.Verifications {
		for _, replicas := range o.Replicas {
			got, err := runFleet(ctx, o, verification, replicas)
			runs = append(runs, got...)
			if err != nil {
				return runs, fmt.Errorf("%s, %d CA replicas: %w", verification, replicas, err)
			}
		}
	}
	return runs, nil
}

func runFleet(ctx context.Context, o FleetOptions, verification string, replicas int) ([]FleetRun, error) {
	step := func(format string, args ...any) {
		fmt.Fprintf(o.Progress, "==> [%s] fleet, %s, %d CA replicas: %s\n", time.Now().Format(time.TimeOnly), verification, replicas, fmt.Sprintf(format, args...))
	}
	step("starting the control plane, the CA and %d agents", o.Nodes)
	p := local.New(local.WithBinaries(o.Binaries), local.WithNodes(o.Nodes), local.WithHeldWorkloads())
	defer func() { _ = p.Down() }()
	if err := p.Up(ctx, provider.ProfileBound); err != nil {
		return nil, err
	}
	// The agents retry as installed agents do, so that a refused CSR waits
	// as long as in a cluster.
	installed := agent.DefaultConfig()
	p.Tune(provider.Tuning{TokenVerification: verification, CAReplicas: replicas,
		AgentRetryBase: installed.RetryBase, AgentRetryMax: installed.RetryMax})
	if _, err := p.InstallMesh(ctx, provider.MeshSDS); err != nil {
		return nil, err
	}
	step("creating %d pods and their tokens (held back from their agents)", o.Workloads)
	names, err := deployFleet(ctx, p, o)
	if err != nil {
		return nil, err
	}
	var runs []FleetRun
	for _, phase := range []string{PhaseMassStart, PhaseAgentRestart} {
		step("%s: waiting until every workload is served", phase)
		run, err := measurePhase(ctx, p, names, o.Timeout, func() error {
			if phase == PhaseMassStart {
				p.ReleaseWorkloads()
				return nil
			}
			return p.RestartAgent(ctx, "")
		})
		run.Verification, run.Replicas, run.Phase = verification, replicas, phase
		runs = append(runs, run)
		if err != nil {
			return runs, fmt.Errorf("%s: %w", phase, err)
		}
		step("%s: %d workloads served in %s", phase, run.Served, run.Took.Round(100*time.Millisecond))
	}
	return runs, nil
}

// deployFleet deploys the workloads 32 at a time, each of a service
// account drawn at random (seeded, so every run places the same), and
// returns their names.
func deployFleet(ctx context.Context, p *local.Provider, o FleetOptions) ([]string, error) {
	rng := rand.New(rand.NewPCG(16, 5000))
	specs := make([]provider.WorkloadSpec, o.Workloads)
	for i := range specs {
		sa := rng.IntN(o.ServiceAccounts)
		specs[i] = provider.WorkloadSpec{Name: fmt.Sprintf("w-%05d", i), Namespace: fmt.Sprintf("fleet-%02d", sa%o.Namespaces),
			ServiceAccount: fmt.Sprintf("sa-%03d", sa)}
	}
	errs := make([]error, len(specs))
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i, spec := range specs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = p.Deploy(ctx, spec)
		})
	}
	wg.Wait()
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	return names, errors.Join(errs...)
}

// fleetCounters are the cumulative figures a phase is measured by.
type fleetCounters struct {
	csrs, exhausted, reviews, apiCPU, caCPU float64
	// agentCPU is by process ID: agents restarted during a phase are new
	// processes, which used nothing before it.
	agentCPU map[int]float64
}

// agentCPUSince is the CPU the agents running now used since c was read.
func (c fleetCounters) agentCPUSince(before fleetCounters) float64 {
	var sum float64
	for pid, cpu := range c.agentCPU {
		sum += cpu - before.agentCPU[pid]
	}
	return sum
}

func readFleetCounters(ctx context.Context, p *local.Provider) (fleetCounters, error) {
	var c fleetCounters
	for _, addr := range p.MonitoringTargets()[mesh.CAName] {
		text, err := provider.Scrape(ctx, addr)
		if err != nil {
			return c, err
		}
		csrs, err := provider.MetricSum(text, "meshcert_ca_csr_total", map[string]string{"result": "success"})
		if err != nil {
			return c, err
		}
		exhausted, err := provider.MetricSum(text, "meshcert_ca_csr_total", map[string]string{"result": "resource_exhausted"})
		if err != nil {
			return c, err
		}
		c.csrs, c.exhausted = c.csrs+csrs, c.exhausted+exhausted
	}
	var err error
	if c.reviews, err = TokenReviews(p.Cluster().Client.Discovery().RESTClient())(ctx); err != nil {
		return c, err
	}
	if c.apiCPU, err = CPUSeconds(p.Cluster().PID())(ctx); err != nil {
		return c, err
	}
	pids := p.PIDs()
	for _, pid := range pids[mesh.CAName] {
		st, err := stat(pid)
		if err != nil {
			return c, err
		}
		c.caCPU += st.CPUTime()
	}
	c.agentCPU = map[int]float64{}
	for _, pid := range pids[mesh.AgentName] {
		st, err := stat(pid)
		if err != nil {
			return c, err
		}
		c.agentCPU[pid] = st.CPUTime()
	}
	return c, nil
}

// measurePhase records how many certificates each workload holds, starts
// the phase, and waits until each holds one more, sampling the CA's and the
// agents' memory every 250 ms.
func measurePhase(ctx context.Context, p *local.Provider, names []string, timeout time.Duration, start func() error) (FleetRun, error) {
	run := FleetRun{Workloads: len(names)}
	held := make([]int, len(names))
	for i, name := range names {
		s, err := p.Status(ctx, name)
		if err != nil {
			return run, err
		}
		held[i] = s.Certificates
	}
	before, err := readFleetCounters(ctx, p)
	if err != nil {
		return run, err
	}
	sampling, stopSampling := context.WithCancel(ctx)
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			pids := p.PIDs()
			for _, pid := range pids[mesh.CAName] {
				if rss, err := RSS(pid); err == nil {
					run.PeakCARSS = max(run.PeakCARSS, rss)
				}
			}
			for _, pid := range pids[mesh.AgentName] {
				if rss, err := RSS(pid); err == nil {
					run.PeakAgentRSS = max(run.PeakAgentRSS, rss)
				}
			}
			select {
			case <-sampling.Done():
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	})
	began := time.Now()
	err = start()
	deadline := time.After(timeout)
	for err == nil {
		run.Served = 0
		for i, name := range names {
			if s, statusErr := p.Status(ctx, name); statusErr == nil && s.Certificates > held[i] {
				run.Served++
			}
		}
		if run.Served == len(names) {
			break
		}
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-deadline:
			err = fmt.Errorf("%d of %d workloads served after %s", run.Served, len(names), timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
	run.Took = time.Since(began)
	stopSampling()
	sampler.Wait()
	after, readErr := readFleetCounters(ctx, p)
	if readErr != nil {
		return run, errors.Join(err, readErr)
	}
	run.CSRs, run.ResourceExhausted = after.csrs-before.csrs, after.exhausted-before.exhausted
	run.TokenReviews, run.APIServerCPU = after.reviews-before.reviews, after.apiCPU-before.apiCPU
	run.CACPU, run.AgentCPU = after.caCPU-before.caCPU, after.agentCPUSince(before)
	return run, err
}
