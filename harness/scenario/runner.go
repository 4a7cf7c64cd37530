// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package scenario

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/meshcert/kubectl-meshcert/harness/provider"
)

// DefaultStepTimeout bounds a step that names no timeout.
const DefaultStepTimeout = 30 * time.Second

// Runner runs scenarios on fresh providers.
type Runner struct {
	NewProvider func() provider.Provider
	// Profile, when set, runs only that profile of each scenario.
	Profile string
	Out     io.Writer
	// LogDir receives the logs of failed scenarios.
	LogDir string
}

// Result is one scenario run on one profile.
type Result struct {
	Scenario string
	Profile  string
	Provider string
	Duration time.Duration
	Err      error
	// Logs is the directory of the provider's logs of a failed run, when
	// it could write them.
	Logs string
}

// Run runs every scenario on each of its profiles and prints progress.
func (r *Runner) Run(ctx context.Context, scenarios []*Scenario) []Result {
	var results []Result
	for _, s := range scenarios {
		for _, profile := range s.Profiles {
			if r.Profile != "" && profile != r.Profile {
				continue
			}
			results = append(results, r.runOne(ctx, s, profile))
		}
	}
	passed, failed := 0, 0
	for _, res := range results {
		if res.Err != nil {
			failed++
		} else {
			passed++
		}
	}
	fmt.Fprintf(r.Out, "%d passed, %d failed\n", passed, failed)
	return results
}

func (r *Runner) runOne(ctx context.Context, s *Scenario, profile string) (res Result) {
	p := r.NewProvider()
	res = Result{Scenario: s.Name, Profile: profile, Provider: p.Name()}
	sc, scaled := s.Scale[p.Name()]
	if scaled {
		fmt.Fprintf(r.Out, "[%s/%s] numbers scaled on %s: %s\n", s.Name, profile, p.Name(), strings.Join(strings.Fields(sc.Why), " "))
	}
	start := time.Now()
	defer func() {
		res.Duration = time.Since(start)
		if res.Err != nil && r.LogDir != "" {
			dir := filepath.Join(r.LogDir, s.Name+"-"+profile)
			if err := p.Logs(dir); err == nil {
				res.Logs = dir
				fmt.Fprintf(r.Out, "[%s/%s] logs in %s\n", s.Name, profile, res.Logs)
			}
		}
		if err := p.Down(); err != nil && res.Err == nil {
			res.Err = fmt.Errorf("tear down: %w", err)
		}
		verdict := "PASS"
		if res.Err != nil {
			verdict = "FAIL: " + res.Err.Error()
		}
		fmt.Fprintf(r.Out, "[%s/%s] %s (%s)\n", s.Name, profile, verdict, res.Duration.Round(time.Millisecond))
	}()

	if t, ok := p.(provider.Tuner); ok {
		ttl := s.WorkloadTTL.Duration
		if sc.WorkloadTTL.Duration > 0 {
			ttl = sc.WorkloadTTL.Duration
		}
		t.Tune(provider.Tuning{WorkloadTTL: ttl, MaxConcurrentSignings: s.MaxConcurrentSignings, CAReplicas: s.CAReplicas, TokenVerification: s.TokenVerification})
	}
	if err := p.Up(ctx, profile); err != nil {
		res.Err = fmt.Errorf("bring up a %s cluster: %w", profile, err)
		return res
	}
	if _, err := p.InstallMesh(ctx, s.Mesh); err != nil {
		res.Err = fmt.Errorf("install the mesh (%s): %w", s.Mesh, err)
		return res
	}
	fmt.Fprintf(r.Out, "[%s/%s] cluster up, mesh %s installed (%s)\n", s.Name, profile, s.Mesh, time.Since(start).Round(time.Millisecond))
	ctx = withMarks(ctx)
	for i, step := range s.Steps {
		timeout := step.Timeout.Duration
		if timeout == 0 {
			timeout = DefaultStepTimeout
		}
		action := step.Action
		if scaled {
			if sc.Timeouts > 0 {
				timeout = time.Duration(float64(timeout) * sc.Timeouts)
				if st, ok := action.(stretched); ok {
					action = st.stretched(sc.Timeouts)
				}
			}
			if c, ok := action.(counted); ok && sc.Counts > 0 {
				action = c.scaled(sc.Counts)
			}
		}
		stepCtx, cancel := context.WithTimeout(ctx, timeout)
		began := time.Now()
		err := action.Run(stepCtx, p)
		cancel()
		status := "ok"
		if err != nil {
			status = "FAILED: " + err.Error()
		}
		fmt.Fprintf(r.Out, "[%s/%s] step %d/%d %s (line %d) %s in %s\n", s.Name, profile, i+1, len(s.Steps), step.Kind, step.Line,
			status, time.Since(began).Round(time.Millisecond))
		if err != nil {
			res.Err = fmt.Errorf("%s:%d: step %d (%s): %w", s.File, step.Line, i+1, step.Kind, err)
			return res
		}
	}
	return res
}

// eventually retries check every 200ms until it passes or ctx ends, and
// returns its last error that the end of ctx did not cause.
func eventually(ctx context.Context, check func() error) error {
	var last error
	for {
		err := check()
		if err == nil {
			return nil
		}
		// A check cut short by the timeout says less than the one before.
		if last == nil || ctx.Err() == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not within the step's timeout: %w", last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func names(name string, count int) []string {
	if count <= 1 {
		return []string{name}
	}
	out := make([]string, count)
	for i := range out {
		out[i] = name + "-" + strconv.Itoa(i)
	}
	return out
}

func runPlugin(ctx context.Context, p provider.Provider, pl *Plugin) error {
	stdout, stderr, code := provider.Plugin(ctx, p, pl.Args...)
	if code != pl.ExitCode {
		return fmt.Errorf("kubectl meshcert %s exited %d, want %d: %s", strings.Join(pl.Args, " "), code, pl.ExitCode, strings.TrimSpace(stderr))
	}
	for _, want := range pl.Contains {
		if !strings.Contains(stdout+stderr, want) {
			return fmt.Errorf("kubectl meshcert %s: output lacks %q", strings.Join(pl.Args, " "), want)
		}
	}
	if len(pl.JSON) == 0 {
		return nil
	}
	var doc any
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		return fmt.Errorf("kubectl meshcert %s did not print JSON: %w", strings.Join(pl.Args, " "), err)
	}
	for path, want := range pl.JSON {
		got, err := lookup(doc, path)
		if err != nil {
			return err
		}
		if fmt.Sprint(got) != want {
			return fmt.Errorf("%s is %v, want %s", path, got, want)
		}
	}
	return nil
}

// lookup follows a dotted path such as checks.0.status.
func lookup(doc any, path string) (any, error) {
	cur := doc
	for _, part := range strings.Split(path, ".") {
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[part]
			if !ok {
				return nil, fmt.Errorf("%s: no field %q", path, part)
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(v) {
				return nil, fmt.Errorf("%s: no element %q", path, part)
			}
			cur = v[i]
		default:
			return nil, fmt.Errorf("%s: cannot descend into %v", path, cur)
		}
	}
	return cur, nil
}

// WriteJUnit writes results as a JUnit XML report.
func WriteJUnit(path string, results []Result) error {
	type failure struct {
		Message string `xml:"message,attr"`
	}
	type testcase struct {
		Name      string   `xml:"name,attr"`
		Classname string   `xml:"classname,attr"`
		Time      string   `xml:"time,attr"`
		Failure   *failure `xml:"failure,omitempty"`
	}
	type suite struct {
		XMLName  xml.Name   `xml:"testsuite"`
		Name     string     `xml:"name,attr"`
		Tests    int        `xml:"tests,attr"`
		Failures int        `xml:"failures,attr"`
		Cases    []testcase `xml:"testcase"`
	}
	s := suite{Name: "meshcert-scenarios", Tests: len(results)}
	for _, r := range results {
		c := testcase{Name: r.Scenario + "/" + r.Profile, Classname: r.Provider, Time: fmt.Sprintf("%.3f", r.Duration.Seconds())}
		if r.Err != nil {
			c.Failure = &failure{Message: r.Err.Error()}
			s.Failures++
		}
		s.Cases = append(s.Cases, c)
	}
	data, err := xml.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append([]byte(xml.Header), data...), 0o644)
}
