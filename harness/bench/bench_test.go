// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/big"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	secretv3 "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	pb "istio.io/api/security/v1alpha1"

	"github.com/meshcert/kubectl-meshcert/core/agent"
	"github.com/meshcert/kubectl-meshcert/core/pki"
	"github.com/meshcert/kubectl-meshcert/core/pki/pkitest"
)

// fakeCA answers every third call with ResourceExhausted and the others
// with a chain, counting the calls it served.
type fakeCA struct {
	pb.UnimplementedIstioCertificateServiceServer
	calls atomic.Int64
}

func (f *fakeCA) CreateCertificate(context.Context, *pb.IstioCertificateRequest) (*pb.IstioCertificateResponse, error) {
	if f.calls.Add(1)%3 == 0 {
		return nil, status.Error(codes.ResourceExhausted, "busy")
	}
	return &pb.IstioCertificateResponse{CertChain: []string{"chain"}}, nil
}

func startFakeCA(t *testing.T, ca *fakeCA) CATarget {
	root := pkitest.NewRoot(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root.Cert, key.Public(), root.Key)
	require.NoError(t, err)
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})))
	pb.RegisterIstioCertificateServiceServer(srv, ca)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return CATarget{Addr: ln.Addr().String(), RootPEM: pki.EncodeCertificates(root.Cert), ServerName: "localhost"}
}

func TestLoadCountsAnswersAndFailuresByCode(t *testing.T) {
	ca := &fakeCA{}
	served := func(context.Context) (float64, error) { return float64(ca.calls.Load()), nil }
	res, err := Load{Target: startFakeCA(t, ca), Requests: []Request{{Token: "t", CSR: "c"}}, Concurrency: 4, Connections: 2,
		Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond, Meters: map[string]Meter{"served": served}}.Run(t.Context())
	require.NoError(t, err)
	require.Positive(t, res.Calls)
	failed := res.Failed[codes.ResourceExhausted]
	require.Positive(t, failed, "refused calls are counted by their code")
	require.InDelta(t, 2.0, float64(res.Calls)/float64(failed), 0.2, "two answers for each refusal")
	require.InDelta(t, float64(res.Calls+failed), res.Metered["served"], 8, "the meter grew by the calls of the measured interval, not of the warm-up")
	require.LessOrEqual(t, res.P50, res.P99)
	require.InDelta(t, float64(res.Calls)/0.3, res.PerSecond(), 1)
}

func TestLoadFailsWhenNothingIsAnswered(t *testing.T) {
	_, err := Load{Target: CATarget{Addr: "127.0.0.1:1", RootPEM: pki.EncodeCertificates(pkitest.NewRoot(t).Cert), ServerName: "localhost"},
		Requests: []Request{{}}, Concurrency: 1, Duration: 10 * time.Millisecond}.Run(t.Context())
	require.ErrorContains(t, err, "the first call to 127.0.0.1:1 failed")
}

// fakeSDS answers each stream's request, then pushes to every open stream
// each time push is signalled; with endStream set, it ends the streams
// instead.
type fakeSDS struct {
	secretv3.UnimplementedSecretDiscoveryServiceServer
	mu        sync.Mutex
	listeners []chan struct{}
	endStream bool
}

func (f *fakeSDS) StreamSecrets(stream grpc.BidiStreamingServer[discovery.DiscoveryRequest, discovery.DiscoveryResponse]) error {
	if _, err := stream.Recv(); err != nil {
		return err
	}
	if err := stream.Send(&discovery.DiscoveryResponse{VersionInfo: "1", Nonce: "1"}); err != nil {
		return err
	}
	pushed := make(chan struct{}, 1)
	f.mu.Lock()
	f.listeners = append(f.listeners, pushed)
	f.mu.Unlock()
	go func() {
		for {
			if _, err := stream.Recv(); err != nil {
				return
			}
		}
	}()
	select {
	case <-pushed:
	case <-stream.Context().Done():
		return nil
	}
	if f.endStream {
		return status.Error(codes.Unavailable, "going away")
	}
	if err := stream.Send(&discovery.DiscoveryResponse{VersionInfo: "2", Nonce: "2"}); err != nil {
		return err
	}
	<-stream.Context().Done()
	return nil
}

func (f *fakeSDS) push() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range f.listeners {
		l <- struct{}{}
	}
}

func TestStreamsWaitForAPushToEach(t *testing.T) {
	for name, tc := range map[string]struct {
		endStream bool
		wantErr   string
	}{
		"every stream gets the push": {},
		"a stream ends instead":      {endStream: true, wantErr: "ended before the push"},
	} {
		t.Run(name, func(t *testing.T) {
			sds := &fakeSDS{endStream: tc.endStream}
			socket := filepath.Join(t.TempDir(), "sds.sock")
			ln, err := net.Listen("unix", socket)
			require.NoError(t, err)
			srv := grpc.NewServer()
			secretv3.RegisterSecretDiscoveryServiceServer(srv, sds)
			go func() { _ = srv.Serve(ln) }()
			defer srv.Stop()

			streams, err := OpenStreams(t.Context(), SDSTarget{Socket: socket, Token: "t"}, 20, 5)
			require.NoError(t, err)
			defer streams.Close()
			require.Len(t, streams.OpenLatencies(), 20)
			require.Positive(t, streams.OpenLatencies()[0])
			sds.push()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			fanOut, err := streams.AwaitPush(ctx)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Less(t, fanOut, 10*time.Second)
		})
	}
}

func TestTargetsJudgeRatiosToIstio(t *testing.T) {
	run := func(server string, calls int, caCPU, reviews float64) CARun {
		return CARun{Server: server, Concurrency: 8, LoadResult: LoadResult{Calls: calls, Elapsed: time.Second,
			Metered: map[string]float64{"ca-cpu": caCPU, "reviews": reviews}}}
	}
	for name, tc := range map[string]struct {
		review, local, floor CARun
		met, reachable       []bool
	}{
		"all met": {review: run(MeshcertReview, 1000, 0.25, 1000), local: run(MeshcertLocal, 1600, 0.3, 0),
			floor: run(ReviewFloor, 1200, 0.1, 1200), met: []bool{true, true, true}, reachable: []bool{true, true, true}},
		"too slow, too costly, and a review with local verification": {review: run(MeshcertReview, 900, 0.9, 900),
			local: run(MeshcertLocal, 1600, 0.3, 1), floor: run(ReviewFloor, 1200, 0.1, 1200),
			met: []bool{false, false, false}, reachable: []bool{true, true, true}},
		"out of the floor's reach too": {review: run(MeshcertReview, 700, 0.7, 700), local: run(MeshcertLocal, 1600, 0.3, 0),
			floor: run(ReviewFloor, 800, 0.8, 800), met: []bool{false, false, true}, reachable: []bool{false, false, true}},
	} {
		t.Run(name, func(t *testing.T) {
			r := &Report{CA: []CARun{tc.review, tc.local, tc.floor, run(Istio, 400, 1.0, 400)}}
			targets := r.Targets()
			require.Len(t, targets, len(tc.met))
			for i, target := range targets {
				require.Equal(t, tc.met[i], target.Met, target.What+": "+target.Measured)
				require.Equal(t, tc.reachable[i], target.Reachable, target.What+": floor "+target.Floor)
			}
		})
	}
}

func TestReportNamesEveryServerAndRatio(t *testing.T) {
	r := &Report{Started: time.Now(), Cores: 2, GoVersion: "go", Workloads: 100, RotationTTL: 20 * time.Second,
		CA: []CARun{
			{Server: MeshcertReview, Concurrency: 8, LoadResult: LoadResult{Calls: 900, Elapsed: time.Second, Metered: map[string]float64{"ca-cpu": 0.9}}},
			{Server: Istio, Concurrency: 8, LoadResult: LoadResult{Calls: 300, Elapsed: time.Second, Metered: map[string]float64{"ca-cpu": 0.9}}},
		},
		SDS: []SDSRun{{Server: MeshcertAgent, Streams: 1000, FanOut: 30 * time.Millisecond},
			{Server: IstioAgent, Streams: 1000, FanOut: 120 * time.Millisecond}, {Server: SDSFloor, Streams: 1000, FanOut: 60 * time.Millisecond}},
		RSSPerStream:   map[string]float64{MeshcertAgent: 20 << 10, IstioAgent: 40 << 10, SDSFloor: 36 << 10},
		RSSPerIdentity: map[string]float64{},
		SigningRate:    map[pki.KeyAlgorithm]float64{}}
	var out bytes.Buffer
	require.NoError(t, r.WriteMarkdown(&out, "v0.0.0-pinned"))
	text := out.String()
	require.Contains(t, text, "istio.io/istio v0.0.0-pinned")
	require.Contains(t, text, "| meshcert, TokenReview per CSR | 8 | 900 | 3.00 |")
	require.Contains(t, text, "| CSR/s with a TokenReview per CSR ≥ 2.5× Istio's, 8 callers | 3.00× (900 vs 300) | yes | not measured | — |")
	require.Contains(t, text, "| rotation fan-out to 1,000 streams ≤ 0.25× Istio's SDS server | 0.25× (30.0 ms vs 120.0 ms) | yes | 0.50× | no |")
	require.Contains(t, text, "| agent memory per stream ≤ 0.5× Istio's | 0.50× (20.0 KiB vs 40.0 KiB) | yes | 0.90× | no |")
	require.Contains(t, text, "| "+SDSFloor+" | 36.0 KiB | 0.90 |")
	require.NoError(t, r.WritePlots(t.TempDir()))
	require.False(t, strings.Contains(text, "## Fleet"), "no fleet section without a fleet run")
}

func TestFleetCountsTheCPUOfAgentsStartedDuringAPhase(t *testing.T) {
	tests := map[string]struct {
		before, after map[int]float64
		want          float64
	}{
		"the same agents":             {before: map[int]float64{1: 2, 2: 3}, after: map[int]float64{1: 5, 2: 4}, want: 4},
		"every agent restarted":       {before: map[int]float64{1: 2, 2: 3}, after: map[int]float64{3: 1.5, 4: 0.5}, want: 2},
		"one agent restarted":         {before: map[int]float64{1: 2, 2: 3}, after: map[int]float64{1: 2.5, 3: 1}, want: 1.5},
		"no agent before or after it": {before: map[int]float64{}, after: map[int]float64{}, want: 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := fleetCounters{agentCPU: tc.after}.agentCPUSince(fleetCounters{agentCPU: tc.before})
			require.InDelta(t, tc.want, got, 1e-9)
		})
	}
}

func TestFleetTableShowsEveryProcessGroupsCPU(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, WriteFleetMarkdown(&out, DefaultFleetOptions(), []FleetRun{{
		Verification: "tokenreview", Replicas: 2, Phase: PhaseMassStart, Workloads: 10, Served: 10, Took: 10 * time.Second,
		CSRs: 10, APIServerCPU: 4.31, CACPU: 3.5, AgentCPU: 12, PeakCARSS: 100 << 20, PeakAgentRSS: 60 << 20,
	}}))
	require.Contains(t, out.String(), "| tokenreview | 2 | mass start | 10/10 | 10s | 10 | 1 | 0 | 0 | 4.3 / 3.5 / 12.0 s | 100 MiB | 60 MiB |")
	installed := agent.DefaultConfig()
	require.Contains(t, strings.Join(strings.Fields(out.String()), " "),
		fmt.Sprintf("agents retry as installed ones do (%s doubling to %s,", installed.RetryBase, installed.RetryMax))
}

func TestEveryRoundLoadsEachServerOnceFromAnotherStart(t *testing.T) {
	const servers, rounds = 6, 3
	firsts := map[int]bool{}
	for i := range rounds {
		order := loadOrder(servers, i, rounds)
		require.ElementsMatch(t, []int{0, 1, 2, 3, 4, 5}, order)
		firsts[order[0]] = true
	}
	require.Len(t, firsts, rounds, "each round starts from another server")
}
