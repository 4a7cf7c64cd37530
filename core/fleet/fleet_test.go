// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package fleet_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshcert/kubectl-meshcert/core/fleet"
	"github.com/meshcert/kubectl-meshcert/harness/localcluster/localclustertest"
)

func TestMain(m *testing.M) { localclustertest.Main(m) }

// countingTransport counts the pod list requests that reach the API server,
// and those of them that ask for metadata only.
type countingTransport struct {
	next                      http.RoundTripper
	podLists, metadataListing *atomic.Int32
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/pods") {
		c.podLists.Add(1)
		if strings.Contains(r.Header.Get("Accept"), "as=PartialObjectMetadataList") {
			c.metadataListing.Add(1)
		}
	}
	return c.next.RoundTrip(r)
}

// TestCollectPagesAndLeavesFinishedPodsOut lists the served pods' metadata
// in pages on a real API server, which also leaves finished pods out by
// their phase, and pods no agent labels as served by their labels.
func TestCollectPagesAndLeavesFinishedPodsOut(t *testing.T) {
	c := localclustertest.Bound(t)
	ns := localclustertest.UniqueName("fleet")
	localclustertest.EnsureNamespace(t, c, ns)
	now := time.Now()
	for i := range 6 {
		pod := localclustertest.Pod(t, c, ns, fmt.Sprintf("web-%d", i), "default", "")
		require.NoError(t, fleet.MarkServed(pod, fleet.SDSReport{SPIFFEID: "spiffe://cluster.local/ns/" + ns + "/sa/default", Serial: fmt.Sprintf("%02x", i),
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Duration(i+1) * time.Hour)}))
		if i == 5 {
			delete(pod.Labels, fleet.LabelServed) // a report, but no agent's label
		}
		pod, err := c.Client.CoreV1().Pods(ns).Update(t.Context(), pod, metav1.UpdateOptions{})
		require.NoError(t, err)
		if i == 4 {
			pod.Status.Phase = corev1.PodSucceeded
			_, err = c.Client.CoreV1().Pods(ns).UpdateStatus(t.Context(), pod, metav1.UpdateOptions{})
			require.NoError(t, err)
		}
	}
	unserved := localclustertest.Pod(t, c, ns, "unserved", "default", "")
	unserved.Labels = map[string]string{fleet.LabelServed: fleet.LabelServedValue} // the label, but no report
	_, err := c.Client.CoreV1().Pods(ns).Update(t.Context(), unserved, metav1.UpdateOptions{})
	require.NoError(t, err)

	var podLists, metadataListing atomic.Int32
	config := rest.CopyConfig(c.Config)
	config.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return countingTransport{next: rt, podLists: &podLists, metadataListing: &metadataListing}
	})
	client, err := kubernetes.NewForConfig(config)
	require.NoError(t, err)
	cluster, err := fleet.NewCluster(client, config)
	require.NoError(t, err)
	ws, err := fleet.CollectSelected(t.Context(), cluster, ns, fleet.Selection{PodPageSize: 2}, nil, now)
	require.NoError(t, err)
	var names []string
	for _, w := range ws {
		names = append(names, w.Name)
	}
	require.Equal(t, []string{"web-0", "web-1", "web-2", "web-3"}, names, "soonest expiry first; the finished pod, the unlabelled one and the one without a report are left out")
	require.Equal(t, "02", ws[2].Serial, "the report is read from the pod's metadata")
	// The server pages before its field filter: five labelled pods, three pages.
	require.GreaterOrEqual(t, podLists.Load(), int32(2), "pods are listed in pages")
	require.Equal(t, podLists.Load(), metadataListing.Load(), "every pod list asks for metadata only")
}
