// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

// clusterFiles are the credentials one cluster is started with. Every key is
// generated afresh per cluster, and read back when the cluster's directory
// is started again, so that tokens and clients stay valid across a restart.
type clusterFiles struct {
	servingCert, servingKey string
	clientCA                string
	adminCert, adminKey     string
	saKey, saPub            string
	userTokens              string
	userToken               string

	servingBundle    []byte
	adminCertPEM     []byte
	adminKeyPEM      []byte
	serviceAccountCA []byte
}

func writeClusterFiles(dir string) (*clusterFiles, error) {
	f := clusterFilesIn(dir)
	if _, err := os.Stat(f.userTokens); err == nil {
		return f, f.read()
	}
	f.userToken = rand.Text()
	return f, f.write()
}

func clusterFilesIn(dir string) *clusterFiles {
	return &clusterFiles{
		servingCert: filepath.Join(dir, "apiserver.crt"),
		servingKey:  filepath.Join(dir, "apiserver.key"),
		clientCA:    filepath.Join(dir, "client-ca.crt"),
		adminCert:   filepath.Join(dir, "admin.crt"),
		adminKey:    filepath.Join(dir, "admin.key"),
		saKey:       filepath.Join(dir, "sa.key"),
		saPub:       filepath.Join(dir, "sa.pub"),
		userTokens:  filepath.Join(dir, "user-tokens.csv"),
	}
}

// read loads the files a previous start of the cluster wrote; the user
// tokens file is written last, so that its presence means all are there.
func (f *clusterFiles) read() error {
	var err error
	if f.servingBundle, err = os.ReadFile(f.servingCert); err != nil {
		return err
	}
	f.serviceAccountCA = f.servingBundle
	if f.adminCertPEM, err = os.ReadFile(f.adminCert); err != nil {
		return err
	}
	if f.adminKeyPEM, err = os.ReadFile(f.adminKey); err != nil {
		return err
	}
	tokens, err := os.ReadFile(f.userTokens)
	if err != nil {
		return err
	}
	token, _, ok := strings.Cut(string(tokens), ",")
	if !ok {
		return fmt.Errorf("%s holds no token: remove the directory and start afresh", f.userTokens)
	}
	f.userToken = token
	return nil
}

func (f *clusterFiles) write() error {
	servingBundle, servingKey, err := certutil.GenerateSelfSignedCertKey("127.0.0.1", []net.IP{net.IPv4(127, 0, 0, 1)}, []string{"localhost"})
	if err != nil {
		return fmt.Errorf("generate serving certificate: %w", err)
	}
	f.servingBundle = servingBundle
	f.serviceAccountCA = servingBundle

	clientCAKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	clientCA, err := certutil.NewSelfSignedCACert(certutil.Config{CommonName: "meshcert-controlplane-client-ca"}, clientCAKey)
	if err != nil {
		return fmt.Errorf("generate client CA: %w", err)
	}
	adminKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	adminCert, err := signClientCert(clientCA, clientCAKey, adminKey.Public(), pkix.Name{CommonName: "meshcert-admin", Organization: []string{"system:masters"}})
	if err != nil {
		return fmt.Errorf("generate admin certificate: %w", err)
	}
	f.adminCertPEM = pem.EncodeToMemory(&pem.Block{Type: certutil.CertificateBlockType, Bytes: adminCert})
	if f.adminKeyPEM, err = keyutil.MarshalPrivateKeyToPEM(adminKey); err != nil {
		return err
	}

	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	saKeyPEM, err := keyutil.MarshalPrivateKeyToPEM(saKey)
	if err != nil {
		return err
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(saKey.Public())
	if err != nil {
		return err
	}

	writes := []struct {
		path string
		data []byte
	}{
		{f.servingCert, servingBundle},
		{f.servingKey, servingKey},
		{f.clientCA, pem.EncodeToMemory(&pem.Block{Type: certutil.CertificateBlockType, Bytes: clientCA.Raw})},
		{f.adminCert, f.adminCertPEM},
		{f.adminKey, f.adminKeyPEM},
		{f.saKey, saKeyPEM},
		{f.saPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPubDER})},
		// A static token for an ordinary user, so that tests can present a
		// token the API server authenticates but that is no service account's.
		// Written last: see read.
		{f.userTokens, []byte(f.userToken + `,alice,alice-uid,"developers"` + "\n")},
	}
	for _, w := range writes {
		if err := os.WriteFile(w.path, w.data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func signClientCert(ca *x509.Certificate, caKey crypto.Signer, pub crypto.PublicKey, subject pkix.Name) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      subject,
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	return x509.CreateCertificate(rand.Reader, tmpl, ca, pub, caKey)
}
