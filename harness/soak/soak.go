// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package soak runs the mesh for a long time on the local provider, with
// short-lived certificates, many workloads and steady traffic, and samples
// the memory and goroutines of the CA and the node agent, each its own
// process, to show that neither grows.
package soak

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/meshcert/kubectl-meshcert/harness/local"
	"github.com/meshcert/kubectl-meshcert/harness/provider"
)

// Options configure Run.
type Options struct {
	// Binaries is where meshcert-ca and meshcert-agent are.
	Binaries string
	// Duration is how long the mesh runs once every workload is served.
	Duration time.Duration
	// SampleEvery is how often both processes are sampled.
	SampleEvery time.Duration
	// Workloads is how many run, each with its own service account.
	Workloads int
	// WorkloadTTL is the certificates' lifetime.
	WorkloadTTL time.Duration
	// CallEvery is how often each workload calls the next one.
	CallEvery time.Duration
	// Progress receives a line per sample.
	Progress io.Writer
}

// DefaultOptions is the soak the issue asks for: an hour, 200 workloads,
// one-minute certificates, a sample every 30 s.
func DefaultOptions() Options {
	return Options{Duration: time.Hour, SampleEvery: 30 * time.Second, Workloads: 200, WorkloadTTL: time.Minute,
		CallEvery: 2 * time.Second, Progress: io.Discard}
}

// Validate says what is wrong with o and how to fix it.
func (o Options) Validate() error {
	var errs []error
	if o.Binaries == "" {
		errs = append(errs, errors.New("the directory of meshcert-ca and meshcert-agent is required: run `make build` and pass bin/"))
	}
	if o.Duration < 2*o.SampleEvery || o.SampleEvery <= 0 {
		errs = append(errs, fmt.Errorf("--duration %s must hold at least two samples of --sample-every %s", o.Duration, o.SampleEvery))
	}
	if o.Workloads < 2 {
		errs = append(errs, fmt.Errorf("--workloads %d: at least two, so that they can call each other", o.Workloads))
	}
	if o.WorkloadTTL <= 0 || o.CallEvery <= 0 {
		errs = append(errs, errors.New("--workload-cert-ttl and --call-every must be positive"))
	}
	return errors.Join(errs...)
}

// Run brings the mesh up, starts the workloads and their traffic, samples
// until Duration has passed, and returns the samples and the calls made.
// It fails when a call failed; a growth trend is judged by Analyze.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	p := local.New(local.WithBinaries(o.Binaries))
	defer func() { _ = p.Down() }()
	p.Tune(provider.Tuning{WorkloadTTL: o.WorkloadTTL})
	if err := p.Up(ctx, provider.ProfileBound); err != nil {
		return nil, err
	}
	if _, err := p.InstallMesh(ctx, provider.MeshSDS); err != nil {
		return nil, err
	}
	names := make([]string, o.Workloads)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for i := range names {
		names[i] = "soak-" + strconv.Itoa(i)
		g.Go(func() error {
			return p.Deploy(gctx, provider.WorkloadSpec{Name: names[i], Namespace: "soak", ServiceAccount: names[i]})
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("deploy the workloads: %w", err)
	}
	for i, name := range names {
		if err := p.StartTraffic(ctx, name, names[(i+1)%len(names)], o.CallEvery); err != nil {
			return nil, err
		}
	}
	report := &Report{Options: o}
	start := time.Now()
	ticker := time.NewTicker(o.SampleEvery)
	defer ticker.Stop()
	for {
		s, err := sample(ctx, p, names, time.Since(start))
		if err != nil {
			return report, err
		}
		report.Samples = append(report.Samples, s)
		fmt.Fprintf(o.Progress, "%s\n", s)
		if s.CallsFailed > 0 {
			return report, fmt.Errorf("%d call(s) failed by %s", s.CallsFailed, s.Elapsed)
		}
		if s.Elapsed >= o.Duration {
			return report, nil
		}
		select {
		case <-ctx.Done():
			return report, ctx.Err()
		case <-ticker.C:
		}
	}
}

// sample reads both processes' metrics and the workloads' call counts.
func sample(ctx context.Context, p *local.Provider, names []string, elapsed time.Duration) (Sample, error) {
	s := Sample{Elapsed: elapsed}
	caText, err := p.ScrapeCA(ctx)
	if err != nil {
		return s, fmt.Errorf("scrape the CA: %w", err)
	}
	agentText, err := p.ScrapeAgent(ctx)
	if err != nil {
		return s, fmt.Errorf("scrape the agent: %w", err)
	}
	for _, m := range []struct {
		text []byte
		name string
		into *float64
	}{
		{caText, "process_resident_memory_bytes", &s.CARSS},
		{caText, "go_goroutines", &s.CAGoroutines},
		{agentText, "process_resident_memory_bytes", &s.AgentRSS},
		{agentText, "go_goroutines", &s.AgentGoroutines},
		{caText, "meshcert_ca_csr_total", &s.CASigned},
	} {
		labels := map[string]string(nil)
		if m.name == "meshcert_ca_csr_total" {
			labels = map[string]string{"result": "success"}
		}
		if *m.into, err = provider.MetricSum(m.text, m.name, labels); err != nil {
			return s, err
		}
	}
	for _, name := range names {
		st, err := p.Status(ctx, name)
		if err != nil {
			return s, err
		}
		s.CallsOK += st.CallsOK
		s.CallsFailed += st.CallsFailed
	}
	return s, nil
}
