// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	pb "istio.io/api/security/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/meshcert/kubectl-meshcert/core/pki"
	"github.com/meshcert/kubectl-meshcert/core/token"
	"github.com/meshcert/kubectl-meshcert/harness/local"
	"github.com/meshcert/kubectl-meshcert/harness/localcluster/localclustertest"
)

func TestMain(m *testing.M) { localclustertest.Main(m) }

func awaitFile(t *testing.T, path string, served <-chan error) {
	t.Helper()
	require.NoError(t, wait.PollUntilContextTimeout(t.Context(), 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		select {
		case err := <-served:
			return false, err
		default:
		}
		_, err := os.Stat(path)
		return err == nil, nil
	}))
}

func TestReviewFloorAnswersOnlyWhatTheAPIServerAuthenticates(t *testing.T) {
	c := localclustertest.Bound(t)
	ns := localclustertest.UniqueName("floor")
	localclustertest.EnsureNamespace(t, c, ns)
	_, err := c.Client.CoreV1().ServiceAccounts(ns).Create(t.Context(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, metav1.CreateOptions{})
	require.NoError(t, err)

	addr, err := local.FreeAddr()
	require.NoError(t, err)
	rootFile := filepath.Join(t.TempDir(), "root.pem")
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- ServeReviewFloor(ctx, addr, c.Kubeconfig, rootFile) }()
	defer func() {
		cancel()
		require.NoError(t, <-served)
	}()
	awaitFile(t, rootFile, served)
	root, err := os.ReadFile(rootFile)
	require.NoError(t, err)
	conn, err := dialCA(CATarget{Addr: addr, RootPEM: root, ServerName: "localhost"})
	require.NoError(t, err)
	defer conn.Close()
	client := pb.NewIstioCertificateServiceClient(conn)
	key, err := pki.GenerateKey(pki.ECDSAP256)
	require.NoError(t, err)
	uri, err := url.Parse("spiffe://cluster.local/ns/" + ns + "/sa/app")
	require.NoError(t, err)
	csr, err := pki.NewCSR(key, uri)
	require.NoError(t, err)
	good := localclustertest.Token(t, c, ns, "app", token.DefaultAudience, nil)

	for name, tc := range map[string]struct {
		token, csr string
		wantCode   codes.Code
	}{
		"the mesh's audience": {token: good, csr: string(csr), wantCode: codes.OK},
		"another audience":    {token: localclustertest.Token(t, c, ns, "app", "vault", nil), csr: string(csr), wantCode: codes.Unauthenticated},
		"no token":            {csr: string(csr), wantCode: codes.Unauthenticated},
		"not a CSR":           {token: good, csr: "not a CSR", wantCode: codes.InvalidArgument},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+tc.token)
			resp, err := client.CreateCertificate(ctx, &pb.IstioCertificateRequest{Csr: tc.csr})
			require.Equal(t, tc.wantCode, status.Code(err), "%v", err)
			if err != nil {
				return
			}
			chain, err := pki.DecodeCertificates([]byte(strings.Join(resp.GetCertChain(), "")))
			require.NoError(t, err)
			require.Len(t, chain, 2)
			require.Equal(t, uri.String(), chain[0].URIs[0].String())
			require.True(t, pki.KeyMatches(key, chain[0].PublicKey))
			require.NoError(t, chain[0].CheckSignatureFrom(chain[1]))
		})
	}
}

func TestSDSFloorPushesToEveryStream(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "sds.sock")
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- ServeSDSFloor(ctx, socket, 200*time.Millisecond) }()
	defer func() {
		cancel()
		require.NoError(t, <-served)
	}()
	awaitFile(t, socket, served)
	streams, err := OpenStreams(t.Context(), SDSTarget{Socket: socket}, 20, 5)
	require.NoError(t, err)
	defer streams.Close()
	for range 2 {
		waitCtx, stop := context.WithTimeout(t.Context(), 10*time.Second)
		_, err := streams.AwaitPush(waitCtx)
		stop()
		require.NoError(t, err)
	}
}
