// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package filemount_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/meshcert/kubectl-meshcert/core/filemount"
	"github.com/meshcert/kubectl-meshcert/harness/localcluster"
)

// BenchmarkThousandServiceAccounts creates 1,000 ServiceAccounts in an
// opted-in namespace and times until every Secret exists, then counts the
// API writes of resyncs when nothing changed.
func BenchmarkThousandServiceAccounts(b *testing.B) {
	client := clusterFor(b, localcluster.ProfileLegacy).Client
	const n = 1000
	for range b.N {
		r := startController(b, client, newAuthority(b), func(o *filemount.Options) {
			o.Resync = time.Second
			o.WriteQPS, o.WriteBurst = 1000, 1000
		})
		ns := namespace(b, client, true)
		start := time.Now()
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		for i := range n {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				_, err := client.CoreV1().ServiceAccounts(ns).Create(context.Background(),
					&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("sa-%04d", i)}}, metav1.CreateOptions{})
				if err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
		created := time.Since(start)
		require.NoError(b, wait.PollUntilContextTimeout(b.Context(), 50*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
			list, err := client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
			return err == nil && len(list.Items) >= n+1, err // the default ServiceAccount too
		}))
		allSecrets := time.Since(start)
		writes := r.writes()
		time.Sleep(3 * time.Second) // three resyncs of 1,001 ServiceAccounts
		b.ReportMetric(allSecrets.Seconds(), "s-until-all-secrets")
		b.ReportMetric(created.Seconds(), "s-to-create-serviceaccounts")
		b.ReportMetric((r.writes()-writes)/3, "writes/resync")
		r.stop()
	}
}
