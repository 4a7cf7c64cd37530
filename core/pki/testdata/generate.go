// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build ignore

// This program writes the PEM fixtures in this directory. Run it from
// core/pki with `go run testdata/generate.go`; the fixtures are committed,
// so tests never generate them.
//
// Validity windows are fixed dates, and the tests judge them at a fixed time,
// so the fixtures do not age.
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
	"log"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

var (
	start = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	end   = time.Date(2125, 1, 1, 0, 0, 0, 0, time.UTC)
)

func main() {
	rootAKey := ecKey()
	rootA := issue(&x509.Certificate{Subject: pkix.Name{Organization: []string{"meshcert"}, CommonName: "root A"}, IsCA: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true}, nil, rootAKey, rootAKey.Public())
	interKey := ecKey()
	inter := issue(&x509.Certificate{Subject: pkix.Name{Organization: []string{"meshcert"}, CommonName: "intermediate A"}, IsCA: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true}, rootA, rootAKey, interKey.Public())
	rootBKey := ecKey()
	rootB := issue(&x509.Certificate{Subject: pkix.Name{Organization: []string{"meshcert"}, CommonName: "root B"}, IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}, nil, rootBKey, rootBKey.Public())

	spiffe, _ := url.Parse("spiffe://cluster.local/ns/shop/sa/cart")
	leafKey := ecKey()
	leaf := issue(&x509.Certificate{URIs: []*url.URL{spiffe},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}, inter, interKey, leafKey.Public())

	expiredKey := ecKey()
	expired := issue(&x509.Certificate{URIs: []*url.URL{spiffe}, NotBefore: start, NotAfter: start.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature}, inter, interKey, expiredKey.Public())

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	check(err)
	rsaLeaf := issue(&x509.Certificate{URIs: []*url.URL{spiffe}, KeyUsage: x509.KeyUsageDigitalSignature}, rootA, rootAKey, rsaKey.Public())

	chain := append(certPEM(leaf), certPEM(inter)...)
	write("root-a.pem", certPEM(rootA))
	write("root-b.pem", certPEM(rootB))
	write("bundle-ab.pem", append(certPEM(rootA), certPEM(rootB)...))
	write("chain-a.pem", chain)
	write("key-a.pem", pkcs8(leafKey))
	write("key-other.pem", pkcs8(ecKey()))
	write("expired-chain.pem", append(certPEM(expired), certPEM(inter)...))
	write("truncated-chain.pem", chain[:len(chain)-200])
	write("rsa-leaf.pem", certPEM(rsaLeaf))
	write("rsa-key-pkcs1.pem", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}))
	ecDER, err := x509.MarshalECPrivateKey(leafKey)
	check(err)
	write("key-a-sec1.pem", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}))
}

func ecKey() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	check(err)
	return k
}

func issue(tmpl, parent *x509.Certificate, parentKey crypto.Signer, pub crypto.PublicKey) *x509.Certificate {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	check(err)
	tmpl.SerialNumber = serial
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore, tmpl.NotAfter = start, end
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	check(err)
	c, err := x509.ParseCertificate(der)
	check(err)
	return c
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func pkcs8(k crypto.Signer) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	check(err)
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func write(name string, data []byte) {
	check(os.WriteFile(filepath.Join("testdata", name), data, 0o644))
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
