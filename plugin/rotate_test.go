// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package plugin_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	secretv3 "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/utils/ptr"

	"github.com/meshcert/kubectl-meshcert/core/agent"
	"github.com/meshcert/kubectl-meshcert/core/ca"
	"github.com/meshcert/kubectl-meshcert/core/filemount"
	"github.com/meshcert/kubectl-meshcert/core/fleet"
	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/harness/localcluster"
	"github.com/meshcert/kubectl-meshcert/harness/localcluster/localclustertest"
	"github.com/meshcert/kubectl-meshcert/plugin"
)

// sdsWorkload is a pod served over SDS by an in-process node agent whose
// root bundle file follows the root ConfigMap, as a kubelet projects it.
func sdsWorkload(t *testing.T, c *localcluster.Cluster, srv *ca.Server, ns string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "sds")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	rootFile := filepath.Join(dir, "root-cert.pem")
	require.NoError(t, os.WriteFile(rootFile, srv.RootBundlePEM(), 0o644))
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	go func() {
		for ctx.Err() == nil {
			if cm, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, ca.RootConfigMapName, metav1.GetOptions{}); err == nil {
				// Replaced whole, as the kubelet's atomic writer does: the
				// agent never reads a half-written file.
				if os.WriteFile(rootFile+".new", []byte(cm.Data[mesh.FileRootCert]), 0o644) == nil {
					_ = os.Rename(rootFile+".new", rootFile)
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	cfg := agent.DefaultConfig()
	cfg.SocketPath, cfg.CAAddress, cfg.CAServerName, cfg.CARootFile = filepath.Join(dir, "sds.sock"), srv.Addr(), "localhost", rootFile
	cfg.MonitoringListen, cfg.Kube, cfg.NodeName = "", c.Config, "node-a"
	cfg.FilePollInterval, cfg.RetryBase, cfg.RetryMax = 100*time.Millisecond, 100*time.Millisecond, time.Second
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := agent.Start(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(a.Stop)

	serviceAccount(t, c, ns, "api")
	pod := localclustertest.Pod(t, c, ns, "api-0", "api", "node-a")
	// Its SDS report must not outlive the test: root rotations in later
	// tests of the shared cluster would wait for it.
	t.Cleanup(func() {
		_ = c.Client.CoreV1().Pods(ns).Delete(context.Background(), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	})
	tok := localclustertest.Token(t, c, ns, "api", "istio-ca", pod)
	conn, err := grpc.NewClient("unix://"+cfg.SocketPath, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	stream, err := secretv3.NewSecretDiscoveryServiceClient(conn).StreamSecrets(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok))
	require.NoError(t, err)
	require.NoError(t, stream.Send(&discovery.DiscoveryRequest{Node: &corev3.Node{Id: "api-0"}, ResourceNames: []string{agent.ResourceDefault, agent.ResourceRootCA}}))
	_, err = stream.Recv()
	require.NoError(t, err)
	go func() {
		for {
			if _, err := stream.Recv(); err != nil {
				return
			}
		}
	}()
}

type rootStatus struct {
	Phase       string `json:"phase"`
	SigningRoot struct {
		Fingerprint string `json:"sha256Fingerprint"`
	} `json:"signingRoot"`
	Bundle []struct {
		Fingerprint string `json:"sha256Fingerprint"`
	} `json:"bundle"`
	Blockers []string `json:"blockers"`
}

func waitNoBlockers(t *testing.T, c *localcluster.Cluster, caNS string) rootStatus {
	t.Helper()
	var st rootStatus
	err := wait.PollUntilContextTimeout(t.Context(), 300*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		runJSON(t, c, &st, "rotate", "root", "status", "--ca-namespace", caNS)
		return len(st.Blockers) == 0, nil
	})
	require.NoError(t, err, "blockers remain: %v", st.Blockers)
	return st
}

func TestRotateSecretPodAndRoot(t *testing.T) {
	c := clusterFor(t, localcluster.ProfileBound)
	srv, caNS := meshCA(t, c)
	ns := namespace(t, c, map[string]string{filemount.LabelNamespaceOptIn: filemount.OptInValue})
	serviceAccount(t, c, ns, "web")
	before := waitSecret(t, c, ns, "meshcert.web")
	waitConfigMap(t, c, ns)
	sdsWorkload(t, c, srv, ns)

	r := run(t, c, "", "rotate", "secret", "meshcert.web", "-n", ns)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "secret/"+ns+"/meshcert.web rotated")
	after := waitSecret(t, c, ns, "meshcert.web")
	require.NotEqual(t, string(before.Data[mesh.FileCertChain]), string(after.Data[mesh.FileCertChain]))

	all := run(t, c, "", "rotate", "secret", "--all", "-n", ns, "-o", "json")
	require.Equal(t, 0, all.code, all.stderr)
	require.Contains(t, all.stdout, ns+"/meshcert.web")
	byLabel := run(t, c, "", "rotate", "secret", "-l", "meshcert.io/service-account=web", "-A", "--wait=false")
	require.Equal(t, 0, byLabel.code, byLabel.stderr)
	require.Equal(t, "secret/"+ns+"/meshcert.web rotated\n", byLabel.stdout, "-l selects the Secrets by their labels")
	byField := run(t, c, "", "rotate", "secret", "--field-selector", "metadata.name=meshcert.web", "-n", ns, "--wait=false")
	require.Equal(t, 0, byField.code, byField.stderr)
	require.Equal(t, "secret/"+ns+"/meshcert.web rotated\n", byField.stdout)
	unmatched := run(t, c, "", "rotate", "secret", "-l", "meshcert.io/service-account=nobody", "-n", ns)
	require.Equal(t, 0, unmatched.code, unmatched.stderr)
	require.Equal(t, "No file-mount Secrets found.\n", unmatched.stdout)
	podField := run(t, c, "", "rotate", "secret", "--field-selector", "spec.nodeName=node-a", "-n", ns)
	require.Equal(t, 1, podField.code)
	require.Contains(t, podField.stderr, `--field-selector "spec.nodeName=node-a"`)
	require.Contains(t, podField.stderr, "Secrets select by metadata.name")

	var rekeyed struct {
		OldSerial string `json:"oldSerial"`
		Served    struct {
			Serial string `json:"serial"`
		} `json:"served"`
	}
	require.NoError(t, wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		p, err := c.Client.CoreV1().Pods(ns).Get(ctx, "api-0", metav1.GetOptions{})
		return err == nil && p.Annotations[fleet.AnnotationSDS] != "" && p.Labels[fleet.LabelServed] == fleet.LabelServedValue, nil
	}), "the agent reports the SDS pod and labels it as served")
	runJSON(t, c, &rekeyed, "rotate", "pod", "api-0", "-n", ns)
	require.NotEqual(t, rekeyed.OldSerial, rekeyed.Served.Serial, "rotate pod re-keys without a restart")

	// -l re-keys the pods the API server selects.
	_, err := c.Client.CoreV1().Pods(ns).Patch(t.Context(), "api-0", types.MergePatchType, []byte(`{"metadata":{"labels":{"app":"api"}}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	var selected struct {
		Kind  string `json:"kind"`
		Items []struct {
			Metadata  struct{ Name string } `json:"metadata"`
			OldSerial string                `json:"oldSerial"`
			Served    struct {
				Serial string `json:"serial"`
			} `json:"served"`
		} `json:"items"`
	}
	runJSON(t, c, &selected, "rotate", "pod", "-l", "app=api", "-n", ns)
	require.Equal(t, "PodRotationList", selected.Kind)
	require.Len(t, selected.Items, 1)
	require.Equal(t, "api-0", selected.Items[0].Metadata.Name)
	require.Equal(t, rekeyed.Served.Serial, selected.Items[0].OldSerial)
	require.NotEqual(t, selected.Items[0].OldSerial, selected.Items[0].Served.Serial, "each selected pod is re-keyed")
	none := run(t, c, "", "rotate", "pod", "-l", "app=nothing", "-n", ns)
	require.Equal(t, 1, none.code)
	require.Contains(t, none.stderr, `no pod in `+ns+` with labels "app=nothing" and fields "" is served over SDS by a node agent`)
	onNode := run(t, c, "", "rotate", "pod", "--field-selector", "spec.nodeName=node-a", "-n", ns, "-o", "name")
	require.Equal(t, 0, onNode.code, onNode.stderr)
	require.Equal(t, "podrotation.meshcert.io/api-0\n", onNode.stdout, "every served pod on the node")
	elsewhere := run(t, c, "", "rotate", "pod", "--field-selector", "spec.nodeName=no-such-node", "-A")
	require.Equal(t, 1, elsewhere.code)
	require.Contains(t, elsewhere.stderr, `no pod in any namespace with labels "" and fields "spec.nodeName=no-such-node"`)

	wrongPhase := run(t, c, "", "rotate", "root", "--phase", "activate", "--ca-namespace", caNS)
	require.Equal(t, 1, wrongPhase.code)
	require.Contains(t, wrongPhase.stderr, "no root rotation is under way: start one with --phase prepare")

	var initial rootStatus
	runJSON(t, c, &initial, "rotate", "root", "status", "--ca-namespace", caNS)
	oldRoot := initial.SigningRoot.Fingerprint

	dry := run(t, c, "", "rotate", "root", "--phase", "prepare", "--dry-run", "--ca-namespace", caNS)
	require.Equal(t, 0, dry.code, dry.stderr)
	require.Contains(t, dry.stdout, "dry run, nothing changed")
	var unchanged rootStatus
	runJSON(t, c, &unchanged, "rotate", "root", "status", "--ca-namespace", caNS)
	require.Equal(t, "none", unchanged.Phase)

	// status -w prints the phase, then again when prepare changes it.
	watchCtx, stopWatching := context.WithCancel(context.Background())
	defer stopWatching()
	watched := &syncBuffer{}
	watchExited := make(chan int, 1)
	go func() {
		root := plugin.NewRootCommand("kubectl-meshcert", genericiooptions.IOStreams{In: strings.NewReader(""), Out: watched, ErrOut: io.Discard})
		root.SetArgs([]string{"--kubeconfig", c.Kubeconfig, "rotate", "root", "status", "-w", "-o", "jsonpath={.phase}{\"\\n\"}", "--ca-namespace", caNS})
		watchExited <- plugin.Execute(watchCtx, root)
	}()
	require.Eventually(t, func() bool { return watched.String() == "none\n" }, 30*time.Second, 50*time.Millisecond, "-w prints the status first")

	var prepared rootStatus
	runJSON(t, c, &prepared, "rotate", "root", "--phase", "prepare", "--ca-namespace", caNS)
	require.Equal(t, "prepared", prepared.Phase)
	require.Eventually(t, func() bool { return strings.HasPrefix(watched.String(), "none\nprepared\n") }, 30*time.Second, 50*time.Millisecond,
		"-w prints the status again when the phase changes: %q", watched)
	stopWatching()
	require.Equal(t, plugin.ExitInterrupted, <-watchExited)
	require.Len(t, prepared.Bundle, 2)
	require.Equal(t, oldRoot, prepared.SigningRoot.Fingerprint, "prepare does not change the signing root")
	again := run(t, c, "", "rotate", "root", "--phase", "prepare", "--ca-namespace", caNS)
	require.Contains(t, again.stderr, "already prepared: continue with --phase activate")

	// The Secrets hold the new root at once, but the kubelets may take
	// --file-mount-propagation to bring it into the pods: activate waits.
	var waiting rootStatus
	require.NoError(t, wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		runJSON(t, c, &waiting, "rotate", "root", "status", "--ca-namespace", caNS)
		return slices.ContainsFunc(waiting.Blockers, func(b string) bool {
			return strings.Contains(b, "meshcert.web (file-mount) changed; the kubelets may bring it into its pods as late as")
		}), nil
	}), "no blocker for an undelivered Secret: %v", waiting.Blockers)
	early := run(t, c, "", "rotate", "root", "--phase", "activate", "--ca-namespace", caNS)
	require.NotEqual(t, 0, early.code, "activate is refused while a Secret may be undelivered")
	// With --wait it waits out the 3 s the kubelets may take, then activates.
	waited := run(t, c, "", "rotate", "root", "--phase", "activate", "--wait", "60s", "--ca-namespace", caNS, "-o", "json")
	require.Equal(t, 0, waited.code, waited.stderr)
	require.Regexp(t, `waiting: \d+ blocker\(s\): .*secret `+ns+`/meshcert\.web \(file-mount\) changed`, waited.stderr)
	var activated rootStatus
	require.NoError(t, json.Unmarshal([]byte(waited.stdout), &activated))
	require.Equal(t, "activated", activated.Phase)
	require.NotEqual(t, oldRoot, activated.SigningRoot.Fingerprint)

	waitNoBlockers(t, c, caNS)
	var finished rootStatus
	runJSON(t, c, &finished, "rotate", "root", "--phase", "finish", "--ca-namespace", caNS)
	require.Equal(t, "none", finished.Phase)
	require.Len(t, finished.Bundle, 1)
	require.Equal(t, activated.SigningRoot.Fingerprint, finished.Bundle[0].Fingerprint)

	// Every workload ends on the new root alone.
	var fleetReport struct {
		Workloads []struct {
			Name                string   `json:"name"`
			ChainsTo            string   `json:"chainsTo"`
			ChainsToCurrentRoot bool     `json:"chainsToCurrentRoot"`
			TrustedRoots        []string `json:"trustedRoots"`
		} `json:"items"`
	}
	require.NoError(t, wait.PollUntilContextTimeout(t.Context(), 300*time.Millisecond, 20*time.Second, true, func(context.Context) (bool, error) {
		runJSON(t, c, &fleetReport, "inspect", "-n", ns, "--ca-namespace", caNS)
		for _, w := range fleetReport.Workloads {
			if !w.ChainsToCurrentRoot || len(w.TrustedRoots) != 1 {
				return false, nil
			}
		}
		return len(fleetReport.Workloads) >= 2, nil
	}), "workloads did not all move to the new root alone: %+v", fleetReport.Workloads)
}
