// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package local

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
