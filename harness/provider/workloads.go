// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package provider

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/meshcert/kubectl-meshcert/core/fleet"
	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/core/preflight"
	"github.com/meshcert/kubectl-meshcert/plugin"
	"github.com/meshcert/kubectl-meshcert/plugin/optin"
)

// TokenExpirySeconds is what workload tokens ask for: the API server's
// minimum for TokenRequest.
const TokenExpirySeconds = 600

// MeshTokenFile is the file name of a workload's mesh token in its volume.
const MeshTokenFile = "istio-token"

// ProjectedTokenVolume is a volume named name that asks the kubelet for the
// pod's service-account token for audience, as MeshTokenFile.
func ProjectedTokenVolume(name, audience string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		DefaultMode: ptr.To[int32](0o440),
		Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
			Audience: audience, ExpirationSeconds: ptr.To[int64](TokenExpirySeconds), Path: MeshTokenFile}}},
	}}}
}

// PrepareWorkload fills in spec's defaults (the installed mesh's path, a
// service account named after the workload) and creates its namespace and
// its service account, which may exist already. A workload on the
// file-mount path gets its namespace opted in as `kubectl meshcert
// file-mount enable` does.
func PrepareWorkload(ctx context.Context, client kubernetes.Interface, spec *WorkloadSpec, installedPath string) error {
	if spec.Path == "" {
		spec.Path = installedPath
	}
	if spec.ServiceAccount == "" {
		spec.ServiceAccount = spec.Name
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: spec.Namespace}}
	if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	if spec.Path == MeshFileMount {
		if err := optin.Enable(ctx, client, mesh.DefaultNamespace, spec.Namespace); err != nil {
			return err
		}
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: spec.ServiceAccount}}
	if _, err := client.CoreV1().ServiceAccounts(spec.Namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// RunPlugin runs kubectl meshcert in-process against the cluster of
// kubeconfig, and returns what it printed and its exit code.
func RunPlugin(ctx context.Context, kubeconfig string, args ...string) (stdout, stderr string, code int) {
	streams, _, out, errOut := genericiooptions.NewTestIOStreams()
	root := plugin.NewRootCommand("kubectl-meshcert", streams)
	root.SetArgs(append([]string{"--kubeconfig", kubeconfig}, args...))
	code = plugin.Execute(ctx, root)
	return out.String(), errOut.String(), code
}

// ResolveMesh turns a scenario's mesh into the mode to install: auto asks
// the preflight which path the cluster supports, as `install --mode auto`
// does; none and the explicit modes stay as they are.
func ResolveMesh(ctx context.Context, config *rest.Config, mode string) (string, error) {
	if mode != MeshAuto {
		return mode, nil
	}
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return "", err
	}
	result, err := preflight.Run(ctx, fleet.Cluster{Client: client}, preflight.Options{Server: config.Host, Namespace: metav1.NamespaceDefault, Pre: true})
	if err != nil {
		return "", err
	}
	return mesh.ResolveMode(mode, result.TrustworthyJWT)
}
