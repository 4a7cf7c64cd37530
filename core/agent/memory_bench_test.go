// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package agent_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	secretv3 "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/meshcert/kubectl-meshcert/core/agent"
	"github.com/meshcert/kubectl-meshcert/harness/localcluster/localclustertest"
)

// BenchmarkAgentMemory runs the real meshcert-agent binary as its own
// process (GOGC=1, so that the heap in use is close to the live heap) and
// reads its /metrics: the heap and resident memory added by 1,000 streams of
// one identity, then by 1,000 identities of one stream each.
func BenchmarkAgentMemory(b *testing.B) {
	dir := shortTempDir(b)
	binary := filepath.Join(dir, "meshcert-agent")
	build := exec.Command("go", "build", "-o", binary, "github.com/meshcert/kubectl-meshcert/cmd/meshcert-agent")
	out, err := build.CombinedOutput()
	require.NoError(b, err, string(out))

	caNS := localclustertest.UniqueName("ca")
	srv := startCA(b, caNS, "127.0.0.1:0")
	rootFile := filepath.Join(dir, "root.pem")
	require.NoError(b, os.WriteFile(rootFile, srv.RootBundlePEM(), 0o644))
	socket := filepath.Join(dir, "sds.sock")
	monitoring := "127.0.0.1:" + freePort(b)
	cmd := exec.Command(binary, "--sds-socket", socket, "--ca-address", srv.Addr(), "--ca-server-name", "localhost",
		"--ca-root-file", rootFile, "--monitoring-listen", monitoring)
	cmd.Env = append(os.Environ(), "GOGC=1")
	require.NoError(b, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	require.NoError(b, wait.PollUntilContextTimeout(b.Context(), 50*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		_, err := os.Stat(socket)
		return err == nil, nil
	}))

	// The heap and the goroutine stacks are both the agent's own memory.
	measure := func() (heap, rss float64) {
		time.Sleep(time.Second)
		heap, rss = 1e18, 1e18
		for range 3 {
			heap = min(heap, scrape(b, monitoring, "go_memstats_heap_inuse_bytes")+scrape(b, monitoring, "go_memstats_stack_inuse_bytes"))
			rss = min(rss, scrape(b, monitoring, "process_resident_memory_bytes"))
			time.Sleep(200 * time.Millisecond)
		}
		return heap, rss
	}
	const n = 1000
	open := func(tokens []string) {
		var client secretv3.SecretDiscoveryServiceClient
		for i, tok := range tokens {
			if i%10 == 0 {
				client = dialSDS(b, socket)
			}
			e := openStream(b, client, withToken(context.Background(), tok), agent.ResourceDefault, agent.ResourceRootCA)
			e.next(30 * time.Second)
		}
	}

	ns := localclustertest.UniqueName("mem")
	heap0, rss0 := measure()
	one := workloadToken(b, ns, "shared", "istio-ca")
	same := make([]string, n)
	for i := range same {
		same[i] = one
	}
	open(same)
	heap1, rss1 := measure()
	b.ReportMetric((heap1-heap0)/n, "heap+stack-B/stream")
	b.ReportMetric((rss1-rss0)/n, "rss-B/stream")

	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = workloadToken(b, ns, fmt.Sprintf("sa-%d", i), "istio-ca")
	}
	open(tokens)
	heap2, rss2 := measure()
	b.ReportMetric((heap2-heap1)/n, "heap+stack-B/identity+stream")
	b.ReportMetric((rss2-rss1)/n, "rss-B/identity+stream")
	b.ReportMetric((heap2-heap1)/n-(heap1-heap0)/n, "heap+stack-B/identity")
	require.Equal(b, float64(2*n), scrape(b, monitoring, "meshcert_agent_open_streams"))
	require.Equal(b, float64(n+1), scrape(b, monitoring, "meshcert_agent_identities"))
	b.Logf("goroutines: %.0f", scrape(b, monitoring, "go_goroutines"))
	b.Logf("stacks: %.1f MiB", scrape(b, monitoring, "go_memstats_stack_inuse_bytes")/(1<<20))
	b.Logf("heap and stacks in use: %.1f MiB idle, %.1f MiB with %d streams, %.1f MiB with %d more identities", heap0/(1<<20), heap1/(1<<20), n, heap2/(1<<20), n)
}
