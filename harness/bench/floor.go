// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshcert/kubectl-meshcert/core/pki"
)

// SigningFloor is the least work any CA does per CSR, on every core of this
// machine for d: parse the CSR, check its signature, and sign a certificate
// for its key with a root key of alg. It returns certificates per second.
func SigningFloor(csrPEM string, alg pki.KeyAlgorithm, d time.Duration) (float64, error) {
	rootKey, err := pki.GenerateKey(alg)
	if err != nil {
		return 0, err
	}
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "floor"}, IsCA: true,
		BasicConstraintsValid: true, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		return 0, err
	}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		return 0, err
	}
	csr, err := pki.DecodeCSR([]byte(csrPEM))
	if err != nil {
		return 0, err
	}
	var signed atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if err := signOnce(csr.Raw, root, rootKey); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				signed.Add(1)
			}
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, err
	}
	return float64(signed.Load()) / d.Seconds(), nil
}

var maxSerial = new(big.Int).Lsh(big.NewInt(1), 128)

func signOnce(csrDER []byte, root *x509.Certificate, rootKey crypto.Signer) error {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return err
	}
	if err := csr.CheckSignature(); err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, maxSerial)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, URIs: []*url.URL{csr.URIs[0]},
		NotBefore: time.Now(), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	_, err = x509.CreateCertificate(rand.Reader, tmpl, root, csr.PublicKey, rootKey)
	return err
}
