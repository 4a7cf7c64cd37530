// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
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
// for its key with a root key of alg (without the check x509 makes of every
// signature it makes; see pki.URILeafIssuer). It returns certificates per
// second.
func SigningFloor(csrPEM string, alg pki.KeyAlgorithm, d time.Duration) (float64, error) {
	signer, err := newFloorSigner(alg)
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
				if _, err := signer.sign(csr.Raw); err != nil {
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

// floorSigner does the signing floor's work for one CSR.
type floorSigner struct {
	root   *x509.Certificate
	leaves *pki.URILeafIssuer
}

func newFloorSigner(alg pki.KeyAlgorithm) (*floorSigner, error) {
	rootKey, err := pki.GenerateKey(alg)
	if err != nil {
		return nil, err
	}
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "floor"}, IsCA: true,
		BasicConstraintsValid: true, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		return nil, err
	}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	uri, err := url.Parse("spiffe://floor/ns/floor/sa/floor")
	if err != nil {
		return nil, err
	}
	reference := &x509.Certificate{SerialNumber: big.NewInt(1), URIs: []*url.URL{uri}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, BasicConstraintsValid: true}
	if der, err = x509.CreateCertificate(rand.Reader, reference, root, rootKey.Public(), rootKey); err != nil {
		return nil, err
	}
	if reference, err = x509.ParseCertificate(der); err != nil {
		return nil, err
	}
	leaves, err := pki.NewURILeafIssuer(reference, rootKey)
	if err != nil {
		return nil, err
	}
	return &floorSigner{root: root, leaves: leaves}, nil
}

var maxSerial = new(big.Int).Lsh(big.NewInt(1), 128)

// sign parses csrDER, checks its signature, and signs a certificate for
// its key and first URI SAN.
func (f *floorSigner) sign(csrDER []byte) ([]byte, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, err
	}
	if len(csr.URIs) != 1 {
		return nil, errors.New("the CSR must carry one URI SAN")
	}
	serial, err := rand.Int(rand.Reader, maxSerial)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	return f.leaves.Issue(csr.PublicKey, serial, now, now.Add(24*time.Hour), csr.URIs[0])
}
