// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package agent_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/meshcert/kubectl-meshcert/core/agent"
	"github.com/meshcert/kubectl-meshcert/core/fleet"
	"github.com/meshcert/kubectl-meshcert/core/pki"
	"github.com/meshcert/kubectl-meshcert/harness/localcluster/localclustertest"
)

func TestReportsToPodsAndHonoursRotateRequests(t *testing.T) {
	c := boundCluster(t)
	m := startMesh(t, func(cfg *agent.Config) {
		cfg.Kube = c.Config
		cfg.NodeName = "node-a"
	})
	ns := localclustertest.UniqueName("report")
	workloadToken(t, ns, "web", "istio-ca")
	pod := localclustertest.Pod(t, c, ns, "web-0", "web", "node-a")
	tok := localclustertest.Token(t, c, ns, "web", "istio-ca", pod)

	e := openStream(t, dialSDS(t, m.agent.SocketPath()), withToken(t.Context(), tok), agent.ResourceDefault)
	firstPush := e.next(10 * time.Second)
	first := decode(t, firstPush)

	// Pushed, not yet answered.
	waitReport(t, ns, pod.Name, func(r fleet.SDSReport) bool {
		return r.Serial == pki.Serial(first.chain[0]) && r.Envoy == fleet.EnvoyWarming
	})
	e.ack(firstPush)
	report := waitReport(t, ns, pod.Name, func(r fleet.SDSReport) bool { return r.Envoy == fleet.EnvoyActive })
	require.Equal(t, "spiffe://cluster.local/ns/"+ns+"/sa/web", report.SPIFFEID)
	require.Equal(t, pki.Fingerprint(m.ca.Authority().SigningRoot()), report.ChainsToRoot)
	require.Equal(t, []string{report.ChainsToRoot}, report.RootFingerprints)
	require.Equal(t, "node-a", report.Node)
	require.False(t, report.RotationDue.IsZero())

	patch := []byte(`{"metadata":{"annotations":{"` + fleet.AnnotationRotate + `":"2026-11-26T12:00:00Z"}}}`)
	_, err := c.Client.CoreV1().Pods(ns).Patch(t.Context(), pod.Name, "application/merge-patch+json", patch, metav1.PatchOptions{})
	require.NoError(t, err)
	secondPush := e.next(10 * time.Second)
	second := decode(t, secondPush)
	require.NotEqual(t, first.chain[0].SerialNumber, second.chain[0].SerialNumber, "the rotate request re-keys the pod's identity without a restart")
	waitReport(t, ns, pod.Name, func(r fleet.SDSReport) bool { return r.Serial == pki.Serial(second.chain[0]) })
	e.nack(secondPush, firstPush.VersionInfo, "Failed to load certificate chain")
	nacked := waitReport(t, ns, pod.Name, func(r fleet.SDSReport) bool { return r.Envoy == fleet.EnvoyNacked })
	require.Equal(t, "Failed to load certificate chain", nacked.EnvoyDetail)
	pods, err := c.Client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
	require.NoError(t, err)
	w := fleet.FromSDSReport(&pods.Items[0], nacked, "", time.Now())
	require.Equal(t, "Envoy rejected the last push (NACK): Failed to load certificate chain", w.Problem, "inspect and check see the NACK as a problem")
	// The agent records the request after it has asked for the new
	// certificate, so the record may follow the new report.
	require.Eventually(t, func() bool {
		got, err := c.Client.CoreV1().Pods(ns).Get(t.Context(), pod.Name, metav1.GetOptions{})
		return err == nil && got.Annotations[fleet.AnnotationRotated] == "2026-11-26T12:00:00Z"
	}, 10*time.Second, 50*time.Millisecond, "the agent records the rotate request it honoured")
}

func waitReport(t *testing.T, ns, pod string, ok func(fleet.SDSReport) bool) fleet.SDSReport {
	t.Helper()
	var report fleet.SDSReport
	require.NoError(t, wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		p, err := boundCluster(t).Client.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		r, found, err := fleet.ParseSDSReport(p)
		if !found || err != nil {
			return false, err
		}
		report = r
		return ok(r), nil
	}), "no matching report on pod %s/%s", ns, pod)
	return report
}
