// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package local

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/harness/provider"
)

func TestAtomicWriterLayout(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, atomicWrite(dir, 1, map[string][]byte{"key.pem": []byte("one")}))
	first, err := os.Readlink(filepath.Join(dir, "..data"))
	require.NoError(t, err)
	require.NoError(t, atomicWrite(dir, 2, map[string][]byte{"key.pem": []byte("two")}))
	second, err := os.Readlink(filepath.Join(dir, "..data"))
	require.NoError(t, err)
	require.NotEqual(t, first, second, "each write gets a new directory")
	require.NoDirExists(t, filepath.Join(dir, first), "the old directory is removed after the swap")
	link, err := os.Readlink(filepath.Join(dir, "key.pem"))
	require.NoError(t, err)
	require.Equal(t, filepath.Join("..data", "key.pem"), link)
	data, err := os.ReadFile(filepath.Join(dir, "key.pem"))
	require.NoError(t, err)
	require.Equal(t, "two", string(data))
}

func TestKubeletEmulation(t *testing.T) {
	p := New()
	require.NoError(t, p.Up(t.Context(), provider.ProfileBound))
	defer func() { require.NoError(t, p.Down()) }()
	mode, err := p.InstallMesh(t.Context(), provider.MeshAuto)
	require.NoError(t, err)
	require.Equal(t, provider.MeshSDS, mode, "auto asks check, which recommends sds on bound")
	require.NoError(t, p.Deploy(t.Context(), provider.WorkloadSpec{Name: "web", Namespace: "kubelet"}))

	pod, err := p.Cluster().Client.CoreV1().Pods("kubelet").Get(t.Context(), "web", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, corev1.PodRunning, pod.Status.Phase)
	require.Equal(t, NodeName, pod.Spec.NodeName)
	token, err := os.ReadFile(filepath.Join(p.PodDir("kubelet", "web"), "token"))
	require.NoError(t, err)
	require.NotEmpty(t, token, "the projected token is written for the workload")
}

func TestNodesHaveAgentsOfTheirOwn(t *testing.T) {
	p := New(WithNodes(2))
	require.NoError(t, p.Up(t.Context(), provider.ProfileBound))
	defer func() { require.NoError(t, p.Down()) }()
	_, err := p.InstallMesh(t.Context(), provider.MeshSDS)
	require.NoError(t, err)
	for _, name := range []string{"first", "second"} {
		require.NoError(t, p.Deploy(t.Context(), provider.WorkloadSpec{Name: name, Namespace: "nodes"}))
	}
	served := func(name string, certificates int) func() bool {
		return func() bool {
			s, err := p.Status(t.Context(), name)
			return err == nil && s.Certificates >= certificates
		}
	}
	for _, name := range []string{"first", "second"} {
		require.Eventually(t, served(name, 1), 30*time.Second, 50*time.Millisecond, "%s is never served", name)
	}
	first, err := p.Pod(t.Context(), "first")
	require.NoError(t, err)
	second, err := p.Pod(t.Context(), "second")
	require.NoError(t, err)
	require.Equal(t, NodeName, first.Spec.NodeName)
	require.Equal(t, NodeName+"-1", second.Spec.NodeName, "workloads are spread across the nodes in turn")
	agents := p.MonitoringTargets()[mesh.AgentName]
	require.Len(t, agents, 2, "each node runs its own agent")

	require.NoError(t, p.RestartAgent(t.Context(), "second"))
	require.Eventually(t, served("second", 2), 30*time.Second, 50*time.Millisecond,
		"the restarted agent forgot its key, so the workload on its node gets a new certificate")
	restarted := p.MonitoringTargets()[mesh.AgentName]
	require.Equal(t, agents[0], restarted[0], "the first node's agent was left running")
	require.NotEqual(t, agents[1], restarted[1], "the second node's agent was replaced")
	s, err := p.Status(t.Context(), "first")
	require.NoError(t, err)
	require.Equal(t, 1, s.Certificates, "the workload on the other node kept its certificate")
}
