// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package kind

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
)

// bridgeConfig is the node image's bridge CNI configuration with the
// node's own pod subnet.
const bridgeConfig = `{
  "cniVersion": "0.4.0",
  "name": "meshcert-bridge",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "%s"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`

// routePods does for a cluster of several nodes what kindnetd would: each
// node's bridge hands out addresses from the pod subnet the controller
// manager gave the node, and every node routes the other nodes' subnets to
// them. (The node image's bridge gives every node the whole range, so pods
// on two nodes could share an address and could not reach each other.)
// The pods that started before, such as CoreDNS, are replaced.
func routePods(ctx context.Context, cl *Cluster) error {
	if len(cl.nodes) < 2 {
		return nil
	}
	list, err := cl.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	type route struct{ subnet, via string }
	routes := map[string]route{}
	for _, n := range list.Items {
		r := route{subnet: n.Spec.PodCIDR}
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP && !strings.Contains(a.Address, ":") {
				r.via = a.Address
			}
		}
		if r.subnet == "" || r.via == "" {
			return fmt.Errorf("node %s has no pod subnet or internal IPv4 address (podCIDR %q)", n.Name, r.subnet)
		}
		routes[n.Name] = r
	}
	for _, node := range cl.nodes {
		own, ok := routes[node.String()]
		if !ok {
			return fmt.Errorf("kind node %s is no Node of the cluster", node)
		}
		conf := fmt.Sprintf(bridgeConfig, own.subnet)
		if err := node.Command("sh", "-c", "cat > /etc/cni/net.d/10-bridge.conflist").SetStdin(strings.NewReader(conf)).Run(); err != nil {
			return fmt.Errorf("write the bridge configuration on %s: %w", node, err)
		}
		// The bridge keeps the gateway address of the old range; the
		// plugin refuses a bridge whose address differs from its own.
		_ = node.Command("ip", "link", "delete", "cni0").Run()
		for name, r := range routes {
			if name == node.String() {
				continue
			}
			if err := runOn(node, "ip", "route", "replace", r.subnet, "via", r.via); err != nil {
				return err
			}
		}
	}
	return replaceEarlyPods(ctx, cl)
}

func runOn(node nodes.Node, command string, args ...string) error {
	var stderr bytes.Buffer
	if err := node.Command(command, args...).SetStderr(&stderr).Run(); err != nil {
		return fmt.Errorf("%s %s on %s: %w: %s", command, strings.Join(args, " "), node, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// replaceEarlyPods deletes the pod-network pods of kube-system, whose
// addresses came from the old configuration, and waits for their
// replacements to be ready.
func replaceEarlyPods(ctx context.Context, cl *Cluster) error {
	pods := cl.Client.CoreV1().Pods(metav1.NamespaceSystem)
	list, err := pods.List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	old := map[string]bool{}
	for _, pod := range list.Items {
		if pod.Spec.HostNetwork {
			continue
		}
		old[string(pod.UID)] = true
		if err := pods.Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
			return err
		}
	}
	return wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		list, err := pods.List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		for _, pod := range list.Items {
			if pod.Spec.HostNetwork {
				continue
			}
			if old[string(pod.UID)] || !podReady(&pod) {
				return false, nil
			}
		}
		return true, nil
	})
}
