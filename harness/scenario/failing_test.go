// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package scenario

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"

	"github.com/meshcert/kubectl-meshcert/harness/provider"
	"github.com/meshcert/kubectl-meshcert/harness/workload"
)

// brokenMesh is a provider whose cluster comes up and whose every later
// answer is the failure a step must notice: workloads hold nothing, calls
// and CA moves fail, traffic fails, and the cluster cannot be reached.
type brokenMesh struct{ provider.Provider }

var errBroken = errors.New("broken on purpose")

func (brokenMesh) Name() string                                            { return "broken" }
func (brokenMesh) Up(context.Context, string) error                        { return nil }
func (brokenMesh) Down() error                                             { return nil }
func (brokenMesh) Logs(string) error                                       { return errBroken }
func (brokenMesh) InstallMesh(_ context.Context, m string) (string, error) { return m, nil }
func (brokenMesh) Kubeconfig() string                                      { return "/nonexistent/kubeconfig" }
func (brokenMesh) RESTConfig() *rest.Config                                { return &rest.Config{Host: "https://127.0.0.1:1"} }
func (brokenMesh) Deploy(context.Context, provider.WorkloadSpec) error     { return errBroken }
func (brokenMesh) Status(_ context.Context, name string) (workload.Status, error) {
	return workload.Status{Name: name}, nil
}
func (brokenMesh) Call(context.Context, string, string) (string, error) { return "", errBroken }
func (brokenMesh) StartTraffic(context.Context, string, string, time.Duration) error {
	return errBroken
}
func (brokenMesh) StopTraffic(_ context.Context, from string) (workload.Status, error) {
	return workload.Status{Name: from, CallsFailed: 1}, nil
}
func (brokenMesh) DeletePod(context.Context, string) error                   { return errBroken }
func (brokenMesh) StopCA(context.Context) error                              { return errBroken }
func (brokenMesh) StartCA(context.Context) error                             { return errBroken }
func (brokenMesh) TryTakeOverSocket(context.Context, string) (string, error) { return "", errBroken }
func (brokenMesh) ComponentConfig(context.Context, string, string) (*rest.Config, error) {
	return nil, errBroken
}

// Every kind of step can fail: fed a provider that gives each the answer
// it must refuse, every step fails its scenario. A new step kind needs a
// row here.
func TestEveryStepKindCanFail(t *testing.T) {
	failing := map[string]string{
		"deploy":           "deploy: {name: a, namespace: n}",
		"expectCert":       "expectCert: {workload: a}",
		"expectCall":       "expectCall: {from: a, to: b}",
		"expectError":      "expectError: {workload: a, contains: [refused]}",
		"plugin":           "plugin: {args: [inspect, ca]}",
		"waitRotation":     "waitRotation: {workload: a, count: 1}",
		"stopCA":           "stopCA: {}",
		"startCA":          "startCA: {}",
		"rotateRoot":       "rotateRoot: {phase: prepare}",
		"deleteSecret":     "deleteSecret: {namespace: n, name: s}",
		"deletePod":        "deletePod: {workload: a}",
		"startTraffic":     "startTraffic: {from: a, to: b}",
		"stopTraffic":      "stopTraffic: {from: a}",
		"expectAccess":     "expectAccess: {as: meshcert-agent, denied: [get secrets]}",
		"expectSocketHeld": "expectSocketHeld: {namespace: n}",
		"expectCAMetric":   "expectCAMetric: {name: meshcert_ca_csr_total, atLeast: 1}",
		"restartAgent":     "restartAgent: {}",
		"killCALeader":     "killCALeader: {}",
		"restartAPIServer": "restartAPIServer: {}",
		"expectPlacement":  "expectPlacement: {workloads: [a]}",
		"deleteTokenPod":   "deleteTokenPod: {workload: a}",
	}
	for _, kind := range ActionKinds() {
		if kind == "sleep" {
			continue // a wait has nothing to check
		}
		step, ok := failing[kind]
		require.True(t, ok, "step kind %s has no failing example here", kind)
		t.Run(kind, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), kind+".yaml")
			require.NoError(t, os.WriteFile(path, []byte("name: fails\nprofiles: [bound]\nmesh: sds\nsteps:\n- "+step+"\n  timeout: 300ms\n"), 0o644))
			s, err := Load(path)
			require.NoError(t, err)
			var out bytes.Buffer
			r := &Runner{NewProvider: func() provider.Provider { return brokenMesh{} }, Out: &out, LogDir: t.TempDir()}
			results := r.Run(t.Context(), []*Scenario{s})
			require.Len(t, results, 1)
			require.Error(t, results[0].Err, "a %s step passed against a broken provider: %s", kind, out.String())
			require.Contains(t, out.String(), "0 passed, 1 failed")
		})
	}
}

func (brokenMesh) ScrapeCA(context.Context) ([]byte, error) {
	return []byte("# TYPE meshcert_ca_csr_total counter\nmeshcert_ca_csr_total 0\n"), nil
}

func (brokenMesh) RestartAgent(context.Context, string) error { return errBroken }

func (brokenMesh) Pod(context.Context, string) (*corev1.Pod, error) { return nil, errBroken }

func (brokenMesh) KillCALeader(context.Context) (string, error) { return "", errBroken }

func (brokenMesh) RestartAPIServer(context.Context) error { return errBroken }
