// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package workload

import (
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshcert/kubectl-meshcert/core/agent"
	"github.com/meshcert/kubectl-meshcert/core/pki"
	"github.com/meshcert/kubectl-meshcert/core/pki/pkitest"
)

// mount writes a key/cert pair for id, issued by issuer, as files.
func mount(t *testing.T, issuer *pkitest.CA, roots []*x509.Certificate, id string) string {
	t.Helper()
	key, err := pki.GenerateKey(pki.ECDSAP256)
	require.NoError(t, err)
	u, err := url.Parse(id)
	require.NoError(t, err)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), URIs: []*url.URL{u},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, issuer.Cert, key.Public(), issuer.Key)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	keyPEM, err := pki.EncodePrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "key.pem"), keyPEM, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cert-chain.pem"), pki.EncodeCertificates(leaf), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "root-cert.pem"), pki.EncodeCertificates(roots...), 0o644))
	return dir
}

func start(t *testing.T, name, dir string, allow ...string) *Workload {
	t.Helper()
	w, err := Start(t.Context(), name, &Files{Dir: dir}, allow)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return w.Status().Identity != "" }, 5*time.Second, 50*time.Millisecond)
	return w
}

func TestMutualTLSWithSPIFFEAllowList(t *testing.T) {
	root := pkitest.NewRoot(t)
	other := pkitest.NewRoot(t, pkitest.WithCommonName("another mesh"))
	roots := []*x509.Certificate{root.Cert}
	const (
		idA = "spiffe://cluster.local/ns/shop/sa/a"
		idB = "spiffe://cluster.local/ns/shop/sa/b"
		idC = "spiffe://cluster.local/ns/shop/sa/c"
	)
	a := start(t, "a", mount(t, root, roots, idA), idB)
	b := start(t, "b", mount(t, root, roots, idB), idA)
	c := start(t, "c", mount(t, root, roots, idC))
	stranger := start(t, "stranger", mount(t, other, []*x509.Certificate{other.Cert, root.Cert}, idB))

	peer, err := a.Call(t.Context(), b.Addr())
	require.NoError(t, err)
	require.Equal(t, idB, peer)
	peer, err = b.Call(t.Context(), a.Addr())
	require.NoError(t, err)
	require.Equal(t, idA, peer)

	_, err = a.Call(t.Context(), c.Addr())
	require.ErrorContains(t, err, "peer "+idC+" is not allowed")
	_, err = a.Call(t.Context(), stranger.Addr())
	require.ErrorContains(t, err, "does not lead to any root", "a certificate from another root is refused even with an allowed ID")

	st := a.Status()
	require.Equal(t, idA, st.Identity)
	require.Equal(t, int64(1), st.CallsOK)
	require.Equal(t, int64(2), st.CallsFailed, st.LastCallErr)
	require.Contains(t, st.PeersSeen, idB)
	require.Equal(t, 1, st.Certificates)

	a.StartTraffic(b.Addr(), 10*time.Millisecond)
	require.Eventually(t, func() bool { return a.Status().CallsOK > st.CallsOK+5 }, 10*time.Second, 10*time.Millisecond,
		"traffic every 10ms must make calls")
	a.StopTraffic()
	after := a.Status()
	require.Equal(t, st.CallsFailed, after.CallsFailed)
}

func TestSDSRequestsAsTheAgentServes(t *testing.T) {
	require.Equal(t, []string{agent.ResourceDefault, agent.ResourceRootCA}, sdsResourceNames)
	require.Equal(t, agent.SecretTypeURL, secretTypeURL)
}
