// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package prometheus runs a real Prometheus server (Debian's package, or any
// prometheus on PATH) against the harness's components: it scrapes the
// targets it is given every second, evaluates a rules file every second,
// and answers queries and the state of its alerts.
package prometheus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"
)

// Server is a running Prometheus.
type Server struct {
	addr    string
	dir     string
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has exited, with exitErr set
	exitErr error
	targets string
}

// Alert is one alert as Prometheus reports it.
type Alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
	Value       string            `json:"value"`
}

// Binary is the Prometheus server to run: prometheus on PATH.
func Binary() (string, error) {
	path, err := exec.LookPath("prometheus")
	if err != nil {
		return "", errors.New("prometheus is not installed: run make prometheus (Debian's prometheus package)")
	}
	return path, nil
}

// Start runs Prometheus in dir with rules, scraping targets (job name to
// host:port addresses) every second, and waits until it is ready.
func Start(ctx context.Context, dir string, rules []byte, targets map[string][]string) (*Server, error) {
	binary, err := Binary()
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	s := &Server{addr: addr, dir: dir, targets: filepath.Join(dir, "targets.json"), exited: make(chan struct{})}
	if err := s.SetTargets(targets); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), rules, 0o644); err != nil {
		return nil, err
	}
	config, err := yaml.Marshal(map[string]any{
		"global":     map[string]any{"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s"},
		"rule_files": []string{"rules.yaml"},
		"scrape_configs": []any{map[string]any{
			"job_name":        "meshcert",
			"file_sd_configs": []any{map[string]any{"files": []string{s.targets}, "refresh_interval": "1s"}},
		}},
	})
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), config, 0o644); err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(binary, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	s.cmd.Dir, s.cmd.Stdout, s.cmd.Stderr = dir, log, log
	if err := s.cmd.Start(); err != nil {
		_ = log.Close()
		return nil, fmt.Errorf("start prometheus: %w", err)
	}
	go func() {
		s.exitErr = s.cmd.Wait()
		_ = log.Close()
		close(s.exited)
	}()
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		select {
		case <-s.exited:
			return false, fmt.Errorf("prometheus exited: %v (see %s)", s.exitErr, log.Name())
		default:
		}
		_, err := s.get(ctx, "/-/ready", nil)
		return err == nil, nil
	})
	if err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// SetTargets replaces what Prometheus scrapes; it notices within a second.
func (s *Server) SetTargets(targets map[string][]string) error {
	type group struct {
		Targets []string          `json:"targets"`
		Labels  map[string]string `json:"labels"`
	}
	jobs := make([]string, 0, len(targets))
	for job := range targets {
		jobs = append(jobs, job)
	}
	sort.Strings(jobs)
	groups := []group{}
	for _, job := range jobs {
		groups = append(groups, group{Targets: targets[job], Labels: map[string]string{"component": job}})
	}
	data, err := json.Marshal(groups)
	if err != nil {
		return err
	}
	tmp := s.targets + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, s.targets)
}

// Stop stops Prometheus.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Addr is Prometheus's host:port.
func (s *Server) Addr() string { return s.addr }

// Alerts returns the pending and firing alerts.
func (s *Server) Alerts(ctx context.Context) ([]Alert, error) {
	var data struct {
		Alerts []Alert `json:"alerts"`
	}
	return data.Alerts, s.api(ctx, "/api/v1/alerts", nil, &data)
}

// Sample is one series of an instant query's answer.
type Sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// Query evaluates expr now. A query that does not parse is an error naming
// Prometheus's reason.
func (s *Server) Query(ctx context.Context, expr string) ([]Sample, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := s.api(ctx, "/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		return nil, err
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("%s: a %s, not a vector", expr, data.ResultType)
	}
	var samples []Sample
	return samples, json.Unmarshal(data.Result, &samples)
}

// MetricNames lists the names of every series Prometheus holds.
func (s *Server) MetricNames(ctx context.Context) ([]string, error) {
	var names []string
	return names, s.api(ctx, "/api/v1/label/__name__/values", nil, &names)
}

func (s *Server) api(ctx context.Context, path string, query url.Values, into any) error {
	body, err := s.get(ctx, path, query)
	if err != nil {
		return err
	}
	var answer struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if answer.Status != "success" {
		return fmt.Errorf("%s: %s", path, answer.Error)
	}
	return json.Unmarshal(answer.Data, into)
}

func (s *Server) get(ctx context.Context, path string, query url.Values) ([]byte, error) {
	u := url.URL{Scheme: "http", Host: s.addr, Path: path, RawQuery: query.Encode()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("%s: %s: %s", path, resp.Status, body)
	}
	return body, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
