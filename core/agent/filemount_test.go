// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package agent_test

import (
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshcert/kubectl-meshcert/core/agent"
	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/core/pki"
	"github.com/meshcert/kubectl-meshcert/core/pki/pkitest"
)

// atomicWriter lays files out as the kubelet mounts a Secret: a timestamped
// directory, a ..data symlink to it, and a symlink per key into ..data. A
// write makes a new directory and swaps ..data in one rename.
type atomicWriter struct {
	t   *testing.T
	dir string
	gen int
}

func (w *atomicWriter) write(files map[string][]byte) {
	w.t.Helper()
	w.gen++
	ts := fmt.Sprintf("..2026_11_26_00_00_%02d.%d", w.gen, w.gen)
	require.NoError(w.t, os.Mkdir(filepath.Join(w.dir, ts), 0o755))
	for name, data := range files {
		require.NoError(w.t, os.WriteFile(filepath.Join(w.dir, ts, name), data, 0o644))
	}
	tmp := filepath.Join(w.dir, "..data_tmp")
	require.NoError(w.t, os.Symlink(ts, tmp))
	require.NoError(w.t, os.Rename(tmp, filepath.Join(w.dir, "..data")))
	for name := range files {
		link := filepath.Join(w.dir, name)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			require.NoError(w.t, os.Symlink(filepath.Join("..data", name), link))
		}
	}
}

func issuePair(t *testing.T, issuer *pkitest.CA, id string) (keyPEM, chainPEM []byte) {
	t.Helper()
	key, err := pki.GenerateKey(pki.ECDSAP256)
	require.NoError(t, err)
	u, err := url.Parse(id)
	require.NoError(t, err)
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	require.NoError(t, err)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: serial, URIs: []*url.URL{u}, NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, issuer.Cert, key.Public(), issuer.Key)
	require.NoError(t, err)
	keyPEM, err = pki.EncodePrivateKey(key)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return keyPEM, pki.EncodeCertificates(leaf)
}

func TestFileMountSurvivesSymlinkSwaps(t *testing.T) {
	root := pkitest.NewRoot(t)
	id := "spiffe://cluster.local/ns/legacy/sa/app"
	certDir := t.TempDir()
	w := &atomicWriter{t: t, dir: certDir}
	rootPEM := pki.EncodeCertificates(root.Cert)
	key, chain := issuePair(t, root, id)
	w.write(map[string][]byte{mesh.FilePrivateKey: key, mesh.FileCertChain: chain, mesh.FileRootCert: rootPEM})

	dir := shortTempDir(t)
	a := startAgent(t, func(c *agent.Config) {
		c.SocketPath = filepath.Join(dir, "sds.sock")
		c.CertDir = certDir
	})
	e := openStream(t, dialSDS(t, a.SocketPath()), t.Context(), agent.ResourceDefault, agent.ResourceRootCA)
	first := e.next(5 * time.Second)
	got := decode(t, first)
	require.Equal(t, id, got.id())
	require.Equal(t, string(key), string(got.keyPEM))
	e.ack(first)

	last := got
	for swap := 1; swap <= 3; swap++ {
		key, chain := issuePair(t, root, id)
		w.write(map[string][]byte{mesh.FilePrivateKey: key, mesh.FileCertChain: chain, mesh.FileRootCert: rootPEM})
		written := time.Now()
		resp := e.next(2 * time.Second)
		got := decode(t, resp)
		require.Equal(t, string(key), string(got.keyPEM), "swap %d", swap)
		require.NotEqual(t, last.chain[0].SerialNumber, got.chain[0].SerialNumber)
		t.Logf("swap %d pushed after %s", swap, time.Since(written).Round(time.Millisecond))
		e.ack(resp)
		last = got
	}

	// A mismatched pair and a half-written chain are refused; the last good
	// pair stays served.
	otherKey, _ := issuePair(t, root, id)
	_, goodChain := issuePair(t, root, id)
	refused := `meshcert_agent_file_loads_total{result="refused"}`
	w.write(map[string][]byte{mesh.FilePrivateKey: otherKey, mesh.FileCertChain: goodChain, mesh.FileRootCert: rootPEM})
	e.quietUntil("the mismatched pair is refused", counterAtLeast(t, a.MonitoringAddr(), refused, 1))
	w.write(map[string][]byte{mesh.FilePrivateKey: otherKey, mesh.FileCertChain: goodChain[:len(goodChain)/2], mesh.FileRootCert: rootPEM})
	e.quietUntil("the half-written chain is refused", counterAtLeast(t, a.MonitoringAddr(), refused, 2))
	report, err := agent.Inspect(t.Context(), agent.InspectOptions{SocketPath: a.SocketPath()})
	require.NoError(t, err)
	require.Equal(t, pki.Serial(last.chain[0]), report.Resources[0].Serial)
	require.Equal(t, float64(2), scrape(t, a.MonitoringAddr(), `meshcert_agent_file_loads_total{result="refused"}`))
	require.Equal(t, float64(4), scrape(t, a.MonitoringAddr(), `meshcert_agent_file_loads_total{result="loaded"}`))
}
