// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/meshcert/kubectl-meshcert/core/agent"
	"github.com/meshcert/kubectl-meshcert/core/pki"
)

// The targets issue 16 set, as ratios to Istio in the same run.
const (
	TargetReviewRatio    = 2.5
	TargetLocalRatio     = 4.0
	TargetCPURatio       = 0.3
	TargetFanOutRatio    = 0.25
	TargetRSSStreamRatio = 0.5
)

// find returns the CA run of server at concurrency c.
func (r *Report) find(server string, c int) (CARun, bool) {
	i := slices.IndexFunc(r.CA, func(run CARun) bool { return run.Server == server && run.Concurrency == c })
	if i < 0 {
		return CARun{}, false
	}
	return r.CA[i], true
}

func (r *Report) sds(server string, streams int) (SDSRun, bool) {
	i := slices.IndexFunc(r.SDS, func(run SDSRun) bool { return run.Server == server && run.Streams == streams })
	if i < 0 {
		return SDSRun{}, false
	}
	return r.SDS[i], true
}

func (r *Report) concurrencies() []int {
	var out []int
	for _, run := range r.CA {
		if !slices.Contains(out, run.Concurrency) {
			out = append(out, run.Concurrency)
		}
	}
	return out
}

func (r *Report) streamCounts() []int {
	var out []int
	for _, run := range r.SDS {
		if !slices.Contains(out, run.Streams) {
			out = append(out, run.Streams)
		}
	}
	return out
}

// Target is one of the targets, judged on this run. Floor is the
// same ratio for the floor server of this run, the best any implementation
// could reach here, and Reachable whether that meets the target.
type Target struct {
	What      string
	Measured  string
	Met       bool
	Floor     string
	Reachable bool
}

// floor fills in t's floor from the floor's ratio x, judged as meets
// judges the measured one.
func (t Target) floor(x float64, meets func(float64) bool) Target {
	t.Floor, t.Reachable = fmt.Sprintf("%.2f×", x), meets(x)
	return t
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// Targets judges the run against the targets, at every concurrency
// for the CA's.
func (r *Report) Targets() []Target {
	var out []Target
	for _, c := range r.concurrencies() {
		istio, ok := r.find(Istio, c)
		if !ok {
			continue
		}
		floor, hasFloor := r.find(ReviewFloor, c)
		if review, ok := r.find(MeshcertReview, c); ok {
			atLeast := func(x float64) bool { return x >= TargetReviewRatio }
			x := ratio(review.PerSecond(), istio.PerSecond())
			t := Target{What: fmt.Sprintf("CSR/s with a TokenReview per CSR ≥ %.1f× Istio's, %d callers", TargetReviewRatio, c),
				Measured: fmt.Sprintf("%.2f× (%.0f vs %.0f)", x, review.PerSecond(), istio.PerSecond()), Met: atLeast(x)}
			if hasFloor {
				t = t.floor(ratio(floor.PerSecond(), istio.PerSecond()), atLeast)
			}
			out = append(out, t)
			atMost := func(x float64) bool { return x <= TargetCPURatio }
			cpu := ratio(review.Per("ca-cpu"), istio.Per("ca-cpu"))
			t = Target{What: fmt.Sprintf("CA CPU per certificate ≤ %.1f× Istio's, %d callers", TargetCPURatio, c),
				Measured: fmt.Sprintf("%.2f× (%.2f vs %.2f ms)", cpu, 1000*review.Per("ca-cpu"), 1000*istio.Per("ca-cpu")), Met: atMost(cpu)}
			if hasFloor {
				t = t.floor(ratio(floor.Per("ca-cpu"), istio.Per("ca-cpu")), atMost)
			}
			out = append(out, t)
		}
		if local, ok := r.find(MeshcertLocal, c); ok {
			x := ratio(local.PerSecond(), istio.PerSecond())
			out = append(out, Target{What: fmt.Sprintf("CSR/s with local verification ≥ %.0f× Istio's and no TokenReview, %d callers", TargetLocalRatio, c),
				Measured: fmt.Sprintf("%.2f× (%.0f vs %.0f), %.3f TokenReviews per CSR", x, local.PerSecond(), istio.PerSecond(), local.Per("reviews")),
				Met:      x >= TargetLocalRatio && local.Metered["reviews"] == 0, Floor: "—", Reachable: true})
		}
	}
	if ours, ok := r.sds(MeshcertAgent, 1000); ok {
		if istio, ok := r.sds(IstioAgent, 1000); ok {
			atMost := func(x float64) bool { return x <= TargetFanOutRatio }
			x := ratio(float64(ours.FanOut), float64(istio.FanOut))
			t := Target{What: fmt.Sprintf("rotation fan-out to 1,000 streams ≤ %.2f× Istio's SDS server", TargetFanOutRatio),
				Measured: fmt.Sprintf("%.2f× (%s vs %s)", x, ms(ours.FanOut), ms(istio.FanOut)), Met: atMost(x)}
			if floor, ok := r.sds(SDSFloor, 1000); ok {
				t = t.floor(ratio(float64(floor.FanOut), float64(istio.FanOut)), atMost)
			}
			out = append(out, t)
		}
	}
	if ours, istio := r.RSSPerStream[MeshcertAgent], r.RSSPerStream[IstioAgent]; ours != 0 && istio != 0 {
		atMost := func(x float64) bool { return x <= TargetRSSStreamRatio }
		x := ratio(ours, istio)
		t := Target{What: fmt.Sprintf("agent memory per stream ≤ %.1f× Istio's", TargetRSSStreamRatio),
			Measured: fmt.Sprintf("%.2f× (%s vs %s)", x, kib(ours), kib(istio)), Met: atMost(x)}
		if floor := r.RSSPerStream[SDSFloor]; floor != 0 {
			t = t.floor(ratio(floor, istio), atMost)
		}
		out = append(out, t)
	}
	return out
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
func kib(b float64) string      { return fmt.Sprintf("%.1f KiB", b/1024) }

// WriteMarkdown writes the report, every figure with its ratio to Istio's.
func (r *Report) WriteMarkdown(w io.Writer, istioVersion string) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# meshcert beside Istio: benchmark report")
	p("")
	p("Written by `make bench` on %s in %s (%d cores, %s). Istio's CA server and SDS server are `istio.io/istio %s`,",
		r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Took.Round(time.Second), r.Cores, r.GoVersion, istioVersion)
	p("wired as istiod and pilot-agent wire them (`bench/istio`), on the same embedded kube-apiserver, loaded by the same")
	p("generator (`harness/bench`). Every process is its own program; CPU is read from `/proc`, TokenReviews from the API")
	p("server's own `apiserver_request_total`. Figures from one run on a shared machine: compare ratios, not absolutes.")
	p("")
	p("## Targets")
	p("")
	p("The floor column is the same ratio for a floor server in the same run: a program that does only what no")
	p("implementation can skip (%s; %s), loaded and measured as the others were.", ReviewFloor, SDSFloor)
	p("Where the floor misses a target, a server that does more than the floor cannot be expected to meet it on this")
	p("machine's two cores; the floor is one run too, so read its margin rather than its yes or no.")
	p("")
	p("| target | measured | met | floor | reachable |")
	p("|---|---|---|---|---|")
	for _, t := range r.Targets() {
		floor, reachable := t.Floor, yesNo(t.Reachable)
		if floor == "" {
			floor, reachable = "not measured", "—"
		}
		p("| %s | %s | %s | %s | %s |", t.What, t.Measured, yesNo(t.Met), floor, reachable)
	}
	p("")
	p("## CreateCertificate")
	p("")
	p("Callers send the next request as soon as one is answered, over 4 TLS connections, each request the token and")
	p("ECDSA P-256 CSR of one of %d service accounts in turn (projected tokens bound to pods). meshcert's admission limits", r.Workloads)
	p("are lifted (Istio has none). Ratios are to Istio's CA with no client limit, at the same callers. Every CA runs")
	p("from the start, idle but for its own load; they are loaded in turn at each number of callers, the order rotating")
	p("from one number to the next, so that none is always measured first after the cluster's set-up, nor always last.")
	p("")
	p("![CSR/s](throughput.svg)")
	p("")
	p("| server | callers | CSR/s | ×Istio | p50 | p99 | CA CPU/cert | ×Istio | API-server CPU/cert | TokenReviews/cert | failed |")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, run := range r.CA {
		istio, _ := r.find(Istio, run.Concurrency)
		failed := 0
		for _, n := range run.Failed {
			failed += n
		}
		p("| %s | %d | %.0f | %.2f | %s | %s | %.2f ms | %.2f | %.2f ms | %.2f | %d |", run.Server, run.Concurrency, run.PerSecond(),
			ratio(run.PerSecond(), istio.PerSecond()), ms(run.P50), ms(run.P99), 1000*run.Per("ca-cpu"),
			ratio(run.Per("ca-cpu"), istio.Per("ca-cpu")), 1000*run.Per("apiserver-cpu"), run.Per("reviews"), failed)
	}
	p("")
	p("![CPU per certificate](cpu.svg)")
	p("")
	p("The signing floor, the least any CA does per CSR (parse, check the signature, sign), in one process on every core:")
	p("%.0f certificates/s with an ECDSA P-256 root (meshcert's default), %.0f with an RSA-2048 root (Istio's default).",
		r.SigningRate[pki.ECDSAP256], r.SigningRate[pki.RSA2048])
	p("The review floor (%q) is a program that answers each call with a TokenReview made as meshcert's", ReviewFloor)
	p("CA makes it (client-go, protobuf, no client limit), then the signing floor's work with an ECDSA P-256 root, and")
	p("nothing else: no metrics, no limits, no logs, no checks of the CSR's names. What it reaches is about the most")
	p("any CA that reviews every CSR could reach on this API server and these cores.")
	p("")
	p("## SDS")
	p("")
	p("An Envoy-style client (go-control-plane's types) opens each stream on its own connection over the agent's Unix")
	p("socket, asks for `default`, and ACKs. One stream is opened on a fresh agent (its open includes the first CSR); the")
	p("larger counts are opened 50 at a time right after a rotation, and the next three rotations (certificates of %s,", r.RotationTTL)
	p("renewed at half life by both) are pushed to all: fan-out is the span from the first stream's arrival to the")
	p("last's, the median of the three.")
	p("")
	p("![Rotation fan-out](sds.svg)")
	p("")
	p("| server | streams | open p50 | open p99 | rotation fan-out | ×Istio |")
	p("|---|---:|---:|---:|---:|---:|")
	for _, run := range r.SDS {
		istio, _ := r.sds(IstioAgent, run.Streams)
		fanOut, x := "—", "—"
		if run.Streams > 1 {
			fanOut, x = ms(run.FanOut), fmt.Sprintf("%.2f", ratio(float64(run.FanOut), float64(istio.FanOut)))
		}
		p("| %s | %d | %s | %s | %s | %s |", run.Server, run.Streams, ms(run.OpenP50), ms(run.OpenP99), fanOut, x)
	}
	p("")
	p("Resident memory, each agent its own process (growth of RSS while the largest count of streams opened, divided by it):")
	p("")
	p("| agent | per stream | ×Istio | per identity | ×Istio |")
	p("|---|---:|---:|---:|---:|")
	for _, server := range []string{MeshcertAgent, IstioAgent, SDSFloor} {
		p("| %s | %s | %.2f | %s | %.3f |", server, kib(r.RSSPerStream[server]), ratio(r.RSSPerStream[server], r.RSSPerStream[IstioAgent]),
			kib(r.RSSPerIdentity[server]), ratio(r.RSSPerIdentity[server], r.RSSPerIdentity[IstioAgent]))
	}
	p("")
	p("meshcert's per-identity figure is the growth of one agent serving one stream each for many identities; Istio runs")
	p("one agent per pod, so an identity costs a whole agent (its RSS after serving its streams). The floor is a bare")
	p("gRPC server (grpc-go, as both agents are) that keeps each stream and sends it one Secret, pushed anew at the")
	p("agents' rotation interval: its memory per stream is what gRPC's connection and stream cost, and its fan-out what")
	p("this client on this machine can see.")
	p("")
	p("## File mount")
	p("")
	p("%d service accounts created 16 at a time in a namespace opted in: every one had its key/cert Secret %s after the",
		r.FileMountAccounts, r.FileMount.Round(100*time.Millisecond))
	p("first was created, at the controller's default write limits. Istio has no counterpart since it dropped its")
	p("per-service-account Secrets.")
	p("")
	if len(r.Fleet) > 0 {
		p("## Fleet")
		p("")
		if err := WriteFleetMarkdown(&b, r.FleetOptions, r.Fleet); err != nil {
			return err
		}
		p("")
	}
	p("## Reproduce")
	p("")
	p("`make bench` builds `bin/istio-peer` from `bench/istio` (its own module; `make test` never builds it), runs the Go")
	p("benchmarks, then `bin/meshcert-harness bench --out bench`, which rewrites this file and its plots (`--fleet=false`")
	p("leaves the fleet out; `bin/meshcert-harness fleet` runs it alone, with flags for its size).")
	_, err := io.WriteString(w, b.String())
	return err
}

// WritePlots writes throughput.svg, cpu.svg and sds.svg into dir.
func (r *Report) WritePlots(dir string) error {
	servers := []string{MeshcertReview, MeshcertCached, MeshcertLocal, Istio, IstioQPS80, ReviewFloor}
	throughput, err := r.groupedBars("CreateCertificate throughput", "CSR/s", "callers", r.concurrencies(), servers,
		func(server string, c int) float64 {
			run, _ := r.find(server, c)
			return run.PerSecond()
		})
	if err != nil {
		return err
	}
	middle := r.concurrencies()[len(r.concurrencies())/2]
	cpu := plot.New()
	cpu.Title.Text = fmt.Sprintf("CPU per certificate, %d callers", middle)
	cpu.Y.Label.Text = "ms"
	var caCPU, apiCPU plotter.Values
	for _, s := range servers {
		run, _ := r.find(s, middle)
		caCPU, apiCPU = append(caCPU, 1000*run.Per("ca-cpu")), append(apiCPU, 1000*run.Per("apiserver-cpu"))
	}
	if err := addBars(cpu, []string{"CA", "API server"}, []plotter.Values{caCPU, apiCPU}); err != nil {
		return err
	}
	cpu.NominalX(shortNames(servers)...)
	several := slices.DeleteFunc(r.streamCounts(), func(n int) bool { return n < 2 })
	fanOut, err := r.groupedBars("Rotation fan-out", "ms from the first stream's push to the last's", "streams", several,
		[]string{MeshcertAgent, IstioAgent, SDSFloor}, func(server string, n int) float64 {
			run, _ := r.sds(server, n)
			return float64(run.FanOut) / float64(time.Millisecond)
		})
	if err != nil {
		return err
	}
	for name, p := range map[string]*plot.Plot{"throughput.svg": throughput, "cpu.svg": cpu, "sds.svg": fanOut} {
		if err := savePlot(p, filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

func shortNames(servers []string) []string {
	out := make([]string, len(servers))
	for i, s := range servers {
		out[i] = strings.NewReplacer("meshcert, ", "", "TokenReview per CSR", "review/CSR", " at istiod's QPS 80", " QPS 80",
			"local verification", "local", "review cache", "cached", ReviewFloor, "review floor").Replace(s)
	}
	return out
}

// groupedBars plots value for each series at each x, the series side by
// side.
func (r *Report) groupedBars(title, yLabel, xLabel string, xs []int, series []string, value func(string, int) float64) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text, p.Y.Label.Text, p.X.Label.Text = title, yLabel, xLabel
	values := make([]plotter.Values, len(series))
	for i, s := range series {
		for _, x := range xs {
			values[i] = append(values[i], value(s, x))
		}
	}
	if err := addBars(p, series, values); err != nil {
		return nil, err
	}
	labels := make([]string, len(xs))
	for i, x := range xs {
		labels[i] = fmt.Sprint(x)
	}
	p.NominalX(labels...)
	return p, nil
}

func addBars(p *plot.Plot, names []string, values []plotter.Values) error {
	width := vg.Points(100 / float64(len(names)))
	highest := 0.0
	for i, v := range values {
		for _, y := range v {
			highest = max(highest, y)
		}
		bars, err := plotter.NewBarChart(v, width)
		if err != nil {
			return err
		}
		bars.LineStyle.Width = 0
		bars.Color = plotutil.Color(i)
		bars.Offset = width * vg.Length(float64(i)-float64(len(values)-1)/2)
		p.Add(bars)
		p.Legend.Add(names[i], bars)
	}
	// Room above the bars for the legend, and half a group's width at
	// either end for the outer bars.
	p.Legend.Top, p.Legend.Left = true, true
	p.Y.Min, p.Y.Max = 0, 1.45*highest
	p.X.Min, p.X.Max = -0.5, float64(len(values[0]))-0.5
	return nil
}

func savePlot(p *plot.Plot, file string) error {
	canvas := vgsvg.New(8*vg.Inch, 4.5*vg.Inch)
	p.Draw(draw.New(canvas))
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := canvas.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// WriteFleetMarkdown writes the fleet's table.
func WriteFleetMarkdown(w io.Writer, o FleetOptions, runs []FleetRun) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("%d workloads of %d service accounts in %d namespaces on %d simulated nodes (one meshcert-agent program each, its own",
		o.Workloads, o.ServiceAccounts, o.Namespaces, o.Nodes)
	p("socket and node name), the CA's replicas as programs behind one Service, a fresh control plane per setting. Every")
	p("pod and its projected token exist before the start; the workloads are then let connect all at once. Then every")
	p("agent is killed and started again at once, which forgets every key. A phase ends when every workload holds a new")
	installed := agent.DefaultConfig()
	p("certificate; the CA's admission limits are install's defaults, and agents retry as installed ones do (%s doubling to",
		installed.RetryBase)
	p("%s, or when a ResourceExhausted answer says). CPU is seconds used over the phase: the API server's, the CA's (all",
		installed.RetryMax)
	p("replicas) and the agents' (all of them), out of the phase's length times %d cores.", runtime.NumCPU())
	p("")
	p("| verification | CA replicas | phase | served | time | CSRs | CSR/s | ResourceExhausted | TokenReviews/s | CPU: API server / CA / agents | peak CA RSS | peak agent RSS |")
	p("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range runs {
		p("| %s | %d | %s | %d/%d | %s | %.0f | %.0f | %.0f | %.0f | %.1f / %.1f / %.1f s | %.0f MiB | %.0f MiB |", r.Verification, r.Replicas, r.Phase,
			r.Served, r.Workloads, r.Took.Round(100*time.Millisecond), r.CSRs, r.PerSecond(r.CSRs), r.ResourceExhausted,
			r.PerSecond(r.TokenReviews), r.APIServerCPU, r.CACPU, r.AgentCPU, r.PeakCARSS/(1<<20), r.PeakAgentRSS/(1<<20))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
