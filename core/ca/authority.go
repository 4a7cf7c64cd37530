// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package ca is the mesh certificate authority: it authenticates workloads
// by their service-account tokens (TokenReview), signs SPIFFE certificates
// over Istio's CSR API, keeps its root in a Secret, and publishes the root
// bundle to every namespace.
package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"slices"
	"time"

	"github.com/meshcert/kubectl-meshcert/core/identity"
	"github.com/meshcert/kubectl-meshcert/core/pki"
)

// RootTTL is the lifetime of a self-signed root.
const RootTTL = 10 * 365 * 24 * time.Hour

// backdate is how far before "now" a certificate's validity starts, to
// absorb clock skew between the CA and its peers.
const backdate = time.Minute

// Authority signs certificates with one signing key. Its signing
// certificate is a root, or an intermediate under a plugged-in root.
type Authority struct {
	signer crypto.Signer
	// signingChain runs from the signing certificate up to, but not
	// including, the root.
	signingChain []*x509.Certificate
	// roots is the bundle workloads trust; roots[0] is the root the signing
	// chain leads to.
	roots []*x509.Certificate
	now   func() time.Time
	// workloadLeaves issues workload certificates without x509's check of
	// each signature, when the key is one in this process; nil otherwise.
	workloadLeaves *pki.URILeafIssuer
	// issuersPEM is the chain above a leaf, PEM-encoded, root last.
	issuersPEM []string
}

// NewAuthority checks that key belongs to signingChain[0], that it may sign
// certificates, and that the chain verifies to one of roots, and returns an
// Authority that signs with it.
func NewAuthority(key crypto.Signer, signingChain, roots []*x509.Certificate, now func() time.Time) (*Authority, error) {
	if now == nil {
		now = time.Now
	}
	if len(signingChain) == 0 {
		return nil, errors.New("no signing certificate")
	}
	if len(roots) == 0 {
		return nil, errors.New("no root certificate")
	}
	signing := signingChain[0]
	if !pki.KeyMatches(key, signing.PublicKey) {
		return nil, fmt.Errorf("the CA key does not match the CA certificate %q (fingerprint %s)", signing.Subject, pki.Fingerprint(signing))
	}
	if !signing.IsCA || signing.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("the CA certificate %q is not a CA certificate with the certSign key usage", signing.Subject)
	}
	var chain []*x509.Certificate
	for _, c := range signingChain {
		if !isSelfSignedRoot(c) {
			chain = append(chain, c)
		}
	}
	root, err := pki.Verify(signingChain, roots, now())
	if err != nil {
		return nil, fmt.Errorf("the CA certificate chain does not verify to the root: %w", err)
	}
	ordered := []*x509.Certificate{root}
	for _, r := range roots {
		if !r.Equal(root) {
			ordered = append(ordered, r)
		}
	}
	a := &Authority{signer: key, signingChain: chain, roots: ordered, now: now}
	a.workloadLeaves = a.newWorkloadLeafIssuer()
	for _, c := range append(slices.Clip(chain), root) {
		a.issuersPEM = append(a.issuersPEM, string(pki.EncodeCertificates(c)))
	}
	return a, nil
}

// referenceIdentity names the reference certificate whose shape every
// workload certificate takes.
var referenceIdentity = identity.ID{TrustDomain: "reference.invalid", Namespace: "reference", ServiceAccount: "reference"}

// newWorkloadLeafIssuer has x509 sign a reference workload certificate and
// returns an issuer of certificates of its shape, or nil when the key is not
// one whose signatures may go unchecked.
func (a *Authority) newWorkloadLeafIssuer() *pki.URILeafIssuer {
	switch a.signer.(type) {
	case *ecdsa.PrivateKey, *rsa.PrivateKey:
	default:
		return nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil
	}
	chain, err := a.sign(key.Public(), time.Hour, workloadTemplate(referenceIdentity))
	if err != nil {
		return nil
	}
	li, err := pki.NewURILeafIssuer(chain[0], a.signer)
	if err != nil {
		return nil
	}
	return li
}

// NewSelfSignedRoot makes an ECDSA P-256 root valid for RootTTL.
func NewSelfSignedRoot(org string, now time.Time) (crypto.Signer, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{org}, CommonName: org + " root " + now.UTC().Format("2006-01-02T15:04:05Z")},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(RootTTL),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return key, cert, nil
}

// Roots returns the trusted root bundle, the signing root first.
func (a *Authority) Roots() []*x509.Certificate { return a.roots }

// SigningRoot returns the root the signing chain leads to.
func (a *Authority) SigningRoot() *x509.Certificate { return a.roots[0] }

// SigningCertificate returns the certificate whose key signs.
func (a *Authority) SigningCertificate() *x509.Certificate {
	if len(a.signingChain) > 0 {
		return a.signingChain[0]
	}
	return a.roots[0]
}

// SignWorkload issues a workload certificate for id to pub, valid for ttl,
// and returns the chain leaf first and root last.
func (a *Authority) SignWorkload(pub crypto.PublicKey, id identity.ID, ttl time.Duration) ([]*x509.Certificate, error) {
	issued, err := a.issueWorkload(pub, id, ttl)
	if err != nil {
		return nil, err
	}
	return a.chainFor(issued.der)
}

// IssuedChain is a workload certificate as the CA sends it.
type IssuedChain struct {
	// PEM is the chain, one certificate each, leaf first and root last.
	PEM      []string
	Serial   *big.Int
	NotAfter time.Time
}

// SignWorkloadPEM is SignWorkload for a caller that sends the chain on
// without reading it: the new leaf is not parsed back.
func (a *Authority) SignWorkloadPEM(pub crypto.PublicKey, id identity.ID, ttl time.Duration) (IssuedChain, error) {
	issued, err := a.issueWorkload(pub, id, ttl)
	if err != nil {
		return IssuedChain{}, err
	}
	chain := make([]string, 0, 1+len(a.issuersPEM))
	chain = append(chain, string(pem.EncodeToMemory(&pem.Block{Type: pki.BlockCertificate, Bytes: issued.der})))
	return IssuedChain{PEM: append(chain, a.issuersPEM...), Serial: issued.serial, NotAfter: issued.notAfter}, nil
}

type issuedLeaf struct {
	der      []byte
	serial   *big.Int
	notAfter time.Time
}

// issueWorkload signs a workload leaf through the leaf issuer when the key
// allows, and through x509.CreateCertificate otherwise.
func (a *Authority) issueWorkload(pub crypto.PublicKey, id identity.ID, ttl time.Duration) (issuedLeaf, error) {
	if a.workloadLeaves == nil {
		return a.signDER(pub, ttl, workloadTemplate(id))
	}
	serial, notBefore, notAfter, err := a.validity(ttl)
	if err != nil {
		return issuedLeaf{}, err
	}
	der, err := a.workloadLeaves.Issue(pub, serial, notBefore, notAfter, id.URL())
	if err != nil {
		return issuedLeaf{}, fmt.Errorf("sign certificate: %w", err)
	}
	return issuedLeaf{der: der, serial: serial, notAfter: notAfter}, nil
}

func workloadTemplate(id identity.ID) *x509.Certificate {
	return &x509.Certificate{
		URIs:        []*url.URL{id.URL()},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
}

// SignServing issues the CA's own TLS serving certificate.
func (a *Authority) SignServing(pub crypto.PublicKey, dnsNames []string, ips []net.IP, ttl time.Duration) ([]*x509.Certificate, error) {
	return a.sign(pub, ttl, &x509.Certificate{
		Subject:     pkix.Name{CommonName: dnsNames[0]},
		DNSNames:    dnsNames,
		IPAddresses: ips,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
}

func (a *Authority) sign(pub crypto.PublicKey, ttl time.Duration, tmpl *x509.Certificate) ([]*x509.Certificate, error) {
	issued, err := a.signDER(pub, ttl, tmpl)
	if err != nil {
		return nil, err
	}
	return a.chainFor(issued.der)
}

// signDER signs tmpl with x509.CreateCertificate.
func (a *Authority) signDER(pub crypto.PublicKey, ttl time.Duration, tmpl *x509.Certificate) (issuedLeaf, error) {
	serial, notBefore, notAfter, err := a.validity(ttl)
	if err != nil {
		return issuedLeaf{}, err
	}
	tmpl.SerialNumber, tmpl.NotBefore, tmpl.NotAfter = serial, notBefore, notAfter
	tmpl.BasicConstraintsValid = true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.SigningCertificate(), pub, a.signer)
	if err != nil {
		return issuedLeaf{}, fmt.Errorf("sign certificate: %w", err)
	}
	return issuedLeaf{der: der, serial: serial, notAfter: notAfter}, nil
}

// validity returns a new certificate's serial and validity for ttl.
func (a *Authority) validity(ttl time.Duration) (serial *big.Int, notBefore, notAfter time.Time, err error) {
	if ttl <= 0 {
		return nil, time.Time{}, time.Time{}, fmt.Errorf("certificate lifetime %s must be positive", ttl)
	}
	if serial, err = randomSerial(); err != nil {
		return nil, time.Time{}, time.Time{}, err
	}
	// Certificates carry whole seconds.
	now := a.now().UTC().Truncate(time.Second)
	notBefore, notAfter = now.Add(-backdate), now.Add(ttl)
	if issuer := a.SigningCertificate(); notAfter.After(issuer.NotAfter) {
		// A leaf never outlives its issuer.
		notAfter = issuer.NotAfter
	}
	return serial, notBefore, notAfter, nil
}

// chainFor returns the chain of the leaf der, leaf first and root last.
func (a *Authority) chainFor(der []byte) ([]*x509.Certificate, error) {
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	chain := make([]*x509.Certificate, 0, len(a.signingChain)+2)
	chain = append(chain, leaf)
	chain = append(chain, a.signingChain...)
	return append(chain, a.roots[0]), nil
}

func randomSerial() (*big.Int, error) {
	// 128 random bits, as RFC 5280 allows at most 20 octets and CAs are
	// asked for at least 64 bits of entropy.
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
}

func isSelfSignedRoot(c *x509.Certificate) bool {
	return c.IsCA && c.CheckSignatureFrom(c) == nil
}
