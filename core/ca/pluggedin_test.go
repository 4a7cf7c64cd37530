// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package ca_test

import (
	"context"
	"crypto/x509"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshcert/kubectl-meshcert/core/ca"
	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/core/pki"
	"github.com/meshcert/kubectl-meshcert/core/pki/pkitest"
	"github.com/meshcert/kubectl-meshcert/harness/localcluster/localclustertest"
)

func createCACerts(t *testing.T, ns string, data map[string][]byte) {
	t.Helper()
	ensureNamespace(t, ns)
	_, err := boundCluster(t).Client.CoreV1().Secrets(ns).Create(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: ca.PluggedInSecretName},
		Data:       data,
	}, metav1.CreateOptions{})
	require.NoError(t, err)
}

func TestPluggedInCA(t *testing.T) {
	root := pkitest.NewRoot(t)
	intermediate := root.NewIntermediate(t)
	ns := localclustertest.UniqueName("plugged")
	createCACerts(t, ns, map[string][]byte{
		ca.KeyCACert:       pki.EncodeCertificates(intermediate.Cert),
		ca.KeyCAKey:        intermediate.KeyPEM(t),
		mesh.FileRootCert:  pki.EncodeCertificates(root.Cert),
		mesh.FileCertChain: pki.EncodeCertificates(intermediate.Chain()...),
	})
	srv := startCA(t, ns)
	require.Equal(t, ca.SourcePluggedIn, srv.Source())
	require.True(t, srv.Authority().SigningRoot().Equal(root.Cert))

	_, err := boundCluster(t).Client.CoreV1().Secrets(ns).Get(t.Context(), ca.RootSecretName, metav1.GetOptions{})
	require.Error(t, err, "with cacerts present no self-signed root is created")

	wl := localclustertest.UniqueName("wl")
	workload(t, wl, "app")
	tok := projectedToken(t, wl, "app", "istio-ca", nil)
	_, csr := newCSR(t, "spiffe://cluster.local/ns/"+wl+"/sa/app")
	resp, err := create(t.Context(), dial(t, srv), tok, csr, 0)
	require.NoError(t, err)
	chain := decodeChain(t, resp)
	require.Len(t, chain, 3, "leaf, intermediate, root")
	require.True(t, chain[1].Equal(intermediate.Cert))
	require.True(t, chain[2].Equal(root.Cert))
	verified, err := pki.Verify(chain, []*x509.Certificate{root.Cert}, time.Now())
	require.NoError(t, err)
	require.True(t, verified.Equal(root.Cert))
}

func TestPluggedInCARefusesToStart(t *testing.T) {
	root := pkitest.NewRoot(t)
	intermediate := root.NewIntermediate(t)
	otherRoot := pkitest.NewRoot(t, pkitest.WithCommonName("other root"))
	expired := root.NewIntermediate(t, pkitest.WithValidity(time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour)))

	tests := map[string]struct {
		data    map[string][]byte
		wantErr string
	}{
		"key does not match the certificate": {
			data: map[string][]byte{
				ca.KeyCACert:      pki.EncodeCertificates(intermediate.Cert),
				ca.KeyCAKey:       otherRoot.KeyPEM(t),
				mesh.FileRootCert: pki.EncodeCertificates(root.Cert),
			},
			wantErr: "the CA key does not match the CA certificate",
		},
		"chain does not verify to the root": {
			data: map[string][]byte{
				ca.KeyCACert:      pki.EncodeCertificates(intermediate.Cert),
				ca.KeyCAKey:       intermediate.KeyPEM(t),
				mesh.FileRootCert: pki.EncodeCertificates(otherRoot.Cert),
			},
			wantErr: "the CA certificate chain does not verify to the root",
		},
		"expired intermediate": {
			data: map[string][]byte{
				ca.KeyCACert:      pki.EncodeCertificates(expired.Cert),
				ca.KeyCAKey:       expired.KeyPEM(t),
				mesh.FileRootCert: pki.EncodeCertificates(root.Cert),
			},
			wantErr: "the certificate expired at",
		},
		"missing key": {
			data: map[string][]byte{
				ca.KeyCACert:      pki.EncodeCertificates(intermediate.Cert),
				mesh.FileRootCert: pki.EncodeCertificates(root.Cert),
			},
			wantErr: "key ca-key.pem is missing",
		},
		"truncated root": {
			data: map[string][]byte{
				ca.KeyCACert:      pki.EncodeCertificates(intermediate.Cert),
				ca.KeyCAKey:       intermediate.KeyPEM(t),
				mesh.FileRootCert: pki.EncodeCertificates(root.Cert)[:100],
			},
			wantErr: "root-cert.pem: invalid PEM",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ns := localclustertest.UniqueName("bad-cacerts")
			createCACerts(t, ns, tc.data)
			cfg := ca.DefaultConfig()
			cfg.Namespace, cfg.Listen, cfg.MonitoringListen = ns, "127.0.0.1:0", "127.0.0.1:0"
			cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
			_, err := ca.Start(context.Background(), cfg, boundCluster(t).Config)
			require.ErrorContains(t, err, tc.wantErr)
			require.ErrorContains(t, err, "plugged-in CA Secret "+ns+"/cacerts")
			require.ErrorContains(t, err, "fix or delete the Secret")
		})
	}
}
