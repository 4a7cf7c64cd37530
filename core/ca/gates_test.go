// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package ca_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshcert/kubectl-meshcert/core/ca"
	"github.com/meshcert/kubectl-meshcert/core/fleet"
	"github.com/meshcert/kubectl-meshcert/harness/localcluster/localclustertest"
)

// sdsPod creates a pod whose node agent reports serving it a certificate
// that chains to chainsTo and trusts the roots trusted.
func sdsPod(t *testing.T, ns, name, chainsTo string, trusted ...string) {
	t.Helper()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}}}
	require.NoError(t, fleet.MarkServed(pod, fleet.SDSReport{SPIFFEID: "spiffe://cluster.local/ns/" + ns + "/sa/default", Serial: "1",
		NotAfter: time.Now().Add(time.Hour), ChainsToRoot: chainsTo, RootFingerprints: trusted}))
	_, err := boundCluster(t).Client.CoreV1().Pods(ns).Create(t.Context(), pod, metav1.CreateOptions{})
	require.NoError(t, err)
}

// The gates are core's: Activate and Finish refuse on their own while a
// workload would break, name every blocker, and run past them only when
// forced, saying which they overrode.
func TestRotationPhasesRefuseOnTheirOwn(t *testing.T) {
	c := boundCluster(t)
	caNS := localclustertest.UniqueName("gates")
	ensureNamespace(t, caNS)
	_, _, err := ca.LoadAuthority(t.Context(), c.Client, caNS, time.Now)
	require.NoError(t, err)
	ctx := t.Context()

	prepared, err := ca.PrepareRootRotation(ctx, c.Client, caNS, ca.PhaseOptions{})
	require.NoError(t, err)
	require.Empty(t, prepared.Blockers)
	st, _, err := ca.ReadRotationStatus(ctx, c.Client, caNS)
	require.NoError(t, err)
	oldRoot, newRoot := st.SigningRoot.Fingerprint, st.Next.Fingerprint

	// A workload that trusts only the old root blocks activate.
	workloads := localclustertest.UniqueName("workloads")
	ensureNamespace(t, workloads)
	sdsPod(t, workloads, "old-only", oldRoot, oldRoot)

	_, err = ca.ActivateRootRotation(ctx, localclustertest.Fleet(t, c), caNS, ca.PhaseOptions{})
	var blocked *ca.BlockedError
	require.True(t, errors.As(err, &blocked), "activate is refused without --force: %v", err)
	require.Equal(t, "activate", blocked.Phase)
	require.Contains(t, blocked.Blockers, "pod "+workloads+"/old-only (sds) does not trust the new root yet")
	require.ErrorContains(t, err, "refusing to activate")
	st, _, err = ca.ReadRotationStatus(ctx, c.Client, caNS)
	require.NoError(t, err)
	require.Equal(t, ca.PhasePrepared, st.Phase, "a refused phase writes nothing")

	dry, err := ca.ActivateRootRotation(ctx, localclustertest.Fleet(t, c), caNS, ca.PhaseOptions{Force: true, DryRun: true})
	require.NoError(t, err)
	require.Equal(t, ca.PhaseActivated, ca.RotationPhase(dry.Secret.Annotations[ca.AnnotationRotationPhase]))
	st, _, err = ca.ReadRotationStatus(ctx, c.Client, caNS)
	require.NoError(t, err)
	require.Equal(t, ca.PhasePrepared, st.Phase, "a dry run writes nothing")

	forced, err := ca.ActivateRootRotation(ctx, localclustertest.Fleet(t, c), caNS, ca.PhaseOptions{Force: true})
	require.NoError(t, err)
	require.Contains(t, forced.Blockers, "pod "+workloads+"/old-only (sds) does not trust the new root yet")
	require.GreaterOrEqual(t, forced.Rekeyed, 1, "activate asks SDS workloads to re-key")
	pod, err := c.Client.CoreV1().Pods(workloads).Get(ctx, "old-only", metav1.GetOptions{})
	require.NoError(t, err)
	require.NotEmpty(t, pod.Annotations[fleet.AnnotationRotate], "the pod was asked to re-key")

	// A certificate that still chains to the old root blocks finish.
	_, err = ca.FinishRootRotation(ctx, localclustertest.Fleet(t, c), caNS, ca.PhaseOptions{})
	require.True(t, errors.As(err, &blocked), "finish is refused without --force: %v", err)
	require.Equal(t, "finish", blocked.Phase)
	require.Contains(t, blocked.Blockers[0], "pod "+workloads+"/old-only (sds) still chains to the old root")

	// Once the workload moved to the new root, finish needs no force.
	sdsPod(t, workloads, "moved", newRoot, oldRoot, newRoot)
	require.NoError(t, c.Client.CoreV1().Pods(workloads).Delete(ctx, "old-only", metav1.DeleteOptions{}))
	finished, err := ca.FinishRootRotation(ctx, localclustertest.Fleet(t, c), caNS, ca.PhaseOptions{})
	require.NoError(t, err)
	require.Empty(t, finished.Blockers)
	st, _, err = ca.ReadRotationStatus(ctx, c.Client, caNS)
	require.NoError(t, err)
	require.Equal(t, ca.PhaseNone, st.Phase)
	require.Equal(t, newRoot, st.SigningRoot.Fingerprint)
}

// A replica whose leader election cannot be built would serve but never
// lead: it refuses to start and says why.
func TestMisconfiguredElectionRefusesToStart(t *testing.T) {
	ns := localclustertest.UniqueName("election")
	ensureNamespace(t, ns)
	_, err := ca.Start(t.Context(), caConfig(ns, func(c *ca.Config) { c.LeaseDuration, c.RenewDeadline = time.Second, 7*time.Second }), boundCluster(t).Config)
	require.ErrorContains(t, err, "leader election")
}
