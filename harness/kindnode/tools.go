//go:build tools

// Package kindnode pins the Kubernetes v1.34 components that the offline kind
// node image is built from. Nothing here is imported by the project itself.
package kindnode

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubeadm"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"

	_ "go.etcd.io/etcd/server/v3/etcdmain"
	_ "sigs.k8s.io/cri-tools/cmd/crictl"
)
