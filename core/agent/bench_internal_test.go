// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"context"
	"crypto/x509"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	secretv3 "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	corev1 "k8s.io/api/core/v1"

	"github.com/meshcert/kubectl-meshcert/core/ca"
	"github.com/meshcert/kubectl-meshcert/core/caclient"
	"github.com/meshcert/kubectl-meshcert/harness/localcluster"
	"github.com/meshcert/kubectl-meshcert/harness/localcluster/localclustertest"
)

// replyClock wraps the real CA client and notes when each answer arrived,
// so that the benchmark can time the agent alone, from the CA's reply to the
// SDS push.
type replyClock struct {
	caclient.Client
	replies chan time.Time
}

func (r *replyClock) CreateCertificate(ctx context.Context, token string, csr []byte, ttl time.Duration) ([]*x509.Certificate, error) {
	chain, err := r.Client.CreateCertificate(ctx, token, csr, ttl)
	if err == nil {
		select {
		case r.replies <- time.Now():
		default:
		}
	}
	return chain, err
}

// BenchmarkRotationPush times a rotation from the moment the CA's answer
// reaches the agent: to the SDS response on one stream, and to the last of
// 1,000 streams of the identity.
func BenchmarkRotationPush(b *testing.B) {
	c, err := localcluster.Start(b.Context(), localcluster.Options{})
	require.NoError(b, err)
	defer func() { require.NoError(b, c.Stop()) }()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	caCfg := ca.DefaultConfig()
	caCfg.Namespace, caCfg.Listen, caCfg.MonitoringListen, caCfg.Logger = "default", "127.0.0.1:0", "127.0.0.1:0", quiet
	srv, err := ca.Start(b.Context(), caCfg, c.Config)
	require.NoError(b, err)
	defer srv.Stop()

	dir, err := os.MkdirTemp("", "sdsb")
	require.NoError(b, err)
	defer os.RemoveAll(dir)
	rootFile := filepath.Join(dir, "root.pem")
	require.NoError(b, os.WriteFile(rootFile, srv.RootBundlePEM(), 0o644))
	cfg := DefaultConfig()
	cfg.SocketPath, cfg.CAAddress, cfg.CAServerName, cfg.CARootFile = filepath.Join(dir, "sds.sock"), srv.Addr(), "localhost", rootFile
	cfg.MonitoringListen, cfg.Logger = "", quiet
	a, err := Start(b.Context(), cfg)
	require.NoError(b, err)
	defer a.Stop()
	clock := &replyClock{Client: a.cache.ca, replies: make(chan time.Time, 1)}
	a.cache.ca = clock

	tok := localclustertest.Token(b, c, "default", "default", "istio-ca", nil)
	ctx := metadata.AppendToOutgoingContext(b.Context(), "authorization", "Bearer "+tok)
	const id = "spiffe://cluster.local/ns/" + corev1.NamespaceDefault + "/sa/default"

	for _, streams := range []int{1, 1000} {
		b.Run(map[int]string{1: "one-stream", 1000: "1000-streams"}[streams], func(b *testing.B) {
			var conns []*grpc.ClientConn
			pushed := make(chan time.Time, streams)
			var ready sync.WaitGroup
			for i := range streams {
				if i%10 == 0 {
					conn, err := grpc.NewClient("unix://"+cfg.SocketPath, grpc.WithTransportCredentials(insecure.NewCredentials()))
					require.NoError(b, err)
					conns = append(conns, conn)
				}
				stream, err := secretv3.NewSecretDiscoveryServiceClient(conns[len(conns)-1]).StreamSecrets(ctx)
				require.NoError(b, err)
				require.NoError(b, stream.Send(&discovery.DiscoveryRequest{Node: &corev3.Node{Id: "bench"}, ResourceNames: []string{ResourceDefault}}))
				ready.Add(1)
				go func() {
					first := true
					for {
						if _, err := stream.Recv(); err != nil {
							return
						}
						if first {
							first = false
							ready.Done()
							continue
						}
						pushed <- time.Now()
					}
				}()
			}
			ready.Wait()
			for len(clock.replies) > 0 {
				<-clock.replies
			}
			var toFirst, toLast time.Duration
			b.ResetTimer()
			for range b.N {
				require.True(b, a.RotateIdentity(id))
				replied := <-clock.replies
				var last time.Time
				for i := range streams {
					at := <-pushed
					if i == 0 {
						toFirst += at.Sub(replied)
					}
					last = at
				}
				toLast += last.Sub(replied)
			}
			b.StopTimer()
			b.ReportMetric(float64(toFirst.Microseconds())/float64(b.N)/1000, "ms-reply-to-first-push")
			b.ReportMetric(float64(toLast.Microseconds())/float64(b.N)/1000, "ms-reply-to-last-push")
			for _, conn := range conns {
				conn.Close()
			}
		})
	}
}
