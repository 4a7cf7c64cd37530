// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func leafTemplate(serial *big.Int, notBefore, notAfter time.Time, uri string) *x509.Certificate {
	u, _ := url.Parse(uri)
	return &x509.Certificate{
		SerialNumber: serial, NotBefore: notBefore, NotAfter: notAfter, URIs: []*url.URL{u},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
}

func testIssuer(t *testing.T, key crypto.Signer) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{Organization: []string{"test"}, CommonName: "test root"},
		NotBefore: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2070, 1, 1, 0, 0, 0, 0, time.UTC),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return cert
}

// TestURILeafIssuerMatchesX509 requires every leaf to be the certificate
// x509.CreateCertificate makes from the same template, byte for byte up to
// the signature, and to verify under its issuer.
func TestURILeafIssuerMatchesX509(t *testing.T) {
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	rsa2048, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	leafP256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	highBit, _ := new(big.Int).SetString("80000000000000000000000000000001", 16)
	now := time.Date(2026, 12, 3, 1, 2, 3, 456789000, time.UTC)
	ref := leafTemplate(big.NewInt(1), now, now.Add(time.Hour), "spiffe://reference/ns/a/sa/b")

	for name, tc := range map[string]struct {
		issuerKey      crypto.Signer
		noIssuerKeyID  bool
		leafKey        crypto.PublicKey
		serial         *big.Int
		from, to       time.Time
		uri            string
		wantSignatures x509.SignatureAlgorithm
	}{
		"P-256 issuer, P-256 leaf": {issuerKey: p256, leafKey: leafP256.Public(), serial: big.NewInt(42), from: now, to: now.Add(24 * time.Hour),
			uri: "spiffe://cluster.local/ns/default/sa/app", wantSignatures: x509.ECDSAWithSHA256},
		"serial with its high bit set": {issuerKey: p256, leafKey: leafP256.Public(), serial: highBit, from: now, to: now.Add(time.Hour),
			uri: "spiffe://cluster.local/ns/default/sa/app", wantSignatures: x509.ECDSAWithSHA256},
		"issuer without a key ID": {issuerKey: p256, noIssuerKeyID: true, leafKey: leafP256.Public(), serial: big.NewInt(1), from: now, to: now.Add(time.Hour),
			uri: "spiffe://cluster.local/ns/default/sa/app", wantSignatures: x509.ECDSAWithSHA256},
		"P-384 issuer, RSA leaf": {issuerKey: p384, leafKey: rsa2048.Public(), serial: big.NewInt(99999), from: now, to: now.Add(time.Hour),
			uri: "spiffe://example.org/ns/x/sa/y", wantSignatures: x509.ECDSAWithSHA384},
		"RSA issuer, P-384 leaf": {issuerKey: rsa2048, leafKey: p384.Public(), serial: big.NewInt(3), from: now, to: now.Add(time.Hour),
			uri: "spiffe://example.org/ns/x/sa/y", wantSignatures: x509.SHA256WithRSA},
		"validity across 2050 (UTCTime to GeneralizedTime)": {issuerKey: p256, leafKey: leafP256.Public(), serial: big.NewInt(5),
			from: time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC), to: time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC),
			uri: "spiffe://cluster.local/ns/default/sa/app", wantSignatures: x509.ECDSAWithSHA256},
		"long URI (long-form lengths)": {issuerKey: p256, leafKey: leafP256.Public(), serial: big.NewInt(6), from: now, to: now.Add(time.Hour),
			uri: "spiffe://cluster.local/ns/" + strings.Repeat("n", 63) + "/sa/" + strings.Repeat("s", 200), wantSignatures: x509.ECDSAWithSHA256},
	} {
		t.Run(name, func(t *testing.T) {
			issuer := testIssuer(t, tc.issuerKey)
			if tc.noIssuerKeyID {
				// x509 gives every CA it makes a key ID; a plugged-in
				// issuer may have none, and its leaves no authority key ID.
				issuer.SubjectKeyId = nil
			}
			refDER, err := x509.CreateCertificate(rand.Reader, ref, issuer, leafP256.Public(), tc.issuerKey)
			require.NoError(t, err)
			reference, err := x509.ParseCertificate(refDER)
			require.NoError(t, err)
			li, err := NewURILeafIssuer(reference, tc.issuerKey)
			require.NoError(t, err)

			tmpl := leafTemplate(tc.serial, tc.from, tc.to, tc.uri)
			wantDER, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, tc.leafKey, tc.issuerKey)
			require.NoError(t, err)
			want, err := x509.ParseCertificate(wantDER)
			require.NoError(t, err)

			der, err := li.Issue(tc.leafKey, tc.serial, tc.from, tc.to, tmpl.URIs[0])
			require.NoError(t, err)
			got, err := x509.ParseCertificate(der)
			require.NoError(t, err)
			require.Equal(t, want.RawTBSCertificate, got.RawTBSCertificate)
			require.Equal(t, tc.wantSignatures, got.SignatureAlgorithm)
			require.NoError(t, got.CheckSignatureFrom(issuer))
		})
	}
}

func TestURILeafIssuerRefuses(t *testing.T) {
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	issuer := testIssuer(t, p256)
	now := time.Now()
	sign := func(tmpl *x509.Certificate) *x509.Certificate {
		der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, p256.Public(), p256)
		require.NoError(t, err)
		cert, err := x509.ParseCertificate(der)
		require.NoError(t, err)
		return cert
	}
	reference := sign(leafTemplate(big.NewInt(1), now, now.Add(time.Hour), "spiffe://a/ns/b/sa/c"))
	twoSANs := leafTemplate(big.NewInt(1), now, now.Add(time.Hour), "spiffe://a/ns/b/sa/c")
	twoSANs.DNSNames = []string{"example.org"}

	for name, tc := range map[string]struct {
		reference *x509.Certificate
		signer    crypto.Signer
		want      string
	}{
		"a signer x509 must check":       {reference: reference, signer: edKey, want: "only in-memory ECDSA and RSA keys"},
		"a reference with a DNS SAN too": {reference: sign(twoSANs), signer: p256, want: "exactly one SAN, a URI"},
		"a reference without SANs": {reference: sign(&x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: now, NotAfter: now.Add(time.Hour)}),
			signer: p256, want: "exactly one SAN, a URI"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewURILeafIssuer(tc.reference, tc.signer)
			require.ErrorContains(t, err, tc.want)
		})
	}

	li, err := NewURILeafIssuer(reference, p256)
	require.NoError(t, err)
	_, err = li.Issue(p256.Public(), big.NewInt(2), now, now.Add(time.Hour), &url.URL{Scheme: "spiffe", Opaque: "//a/ns/é/sa/c"})
	require.ErrorContains(t, err, "not ASCII")
}
