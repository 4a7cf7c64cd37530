// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package pki

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// Report describes a certificate chain for people and for JSON output. Field
// names are part of the plugin's stable output.
type Report struct {
	Subject     string    `json:"subject"`
	Issuer      string    `json:"issuer"`
	URISANs     []string  `json:"uriSANs,omitempty"`
	DNSNames    []string  `json:"dnsNames,omitempty"`
	SPIFFEID    string    `json:"spiffeID,omitempty"`
	Serial      string    `json:"serial"`
	NotBefore   time.Time `json:"notBefore"`
	NotAfter    time.Time `json:"notAfter"`
	Remaining   string    `json:"remaining"`
	Expired     bool      `json:"expired"`
	Fingerprint string    `json:"sha256Fingerprint"`
	KeyType     string    `json:"keyType"`
	IsCA        bool      `json:"isCA"`
	ChainLength int       `json:"chainLength"`

	// Verified is true when the chain verifies at the report's time to one
	// of the roots given; VerifiedRoot then names that root.
	Verified     bool        `json:"verified"`
	VerifiedRoot *RootReport `json:"verifiedRoot,omitempty"`
	VerifyError  string      `json:"verifyError,omitempty"`
}

// RootReport names one root certificate.
type RootReport struct {
	Subject     string    `json:"subject"`
	Fingerprint string    `json:"sha256Fingerprint"`
	NotAfter    time.Time `json:"notAfter"`
}

// Fingerprint is the SHA-256 of the certificate's DER, lower-case hex.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// Serial formats a certificate serial as colon-free lower-case hex.
func Serial(c *x509.Certificate) string {
	return FormatSerial(c.SerialNumber)
}

// FormatSerial writes a serial number as Serial does.
func FormatSerial(n *big.Int) string {
	return hex.EncodeToString(n.Bytes())
}

// Describe reports on chain (leaf first; intermediates follow) and verifies
// it at now against roots. With no roots, verification is not attempted and
// VerifyError says so.
func Describe(chain []*x509.Certificate, roots []*x509.Certificate, now time.Time) (Report, error) {
	if len(chain) == 0 {
		return Report{}, errors.New("no certificate to describe")
	}
	leaf := chain[0]
	r := Report{
		Subject:     leaf.Subject.String(),
		Issuer:      leaf.Issuer.String(),
		DNSNames:    leaf.DNSNames,
		Serial:      Serial(leaf),
		NotBefore:   leaf.NotBefore.UTC(),
		NotAfter:    leaf.NotAfter.UTC(),
		Expired:     !now.Before(leaf.NotAfter),
		Fingerprint: Fingerprint(leaf),
		KeyType:     KeyType(leaf.PublicKey),
		IsCA:        leaf.IsCA,
		ChainLength: len(chain),
	}
	r.Remaining = Remaining(leaf.NotAfter, now)
	for _, u := range leaf.URIs {
		r.URISANs = append(r.URISANs, u.String())
		if u.Scheme == "spiffe" && r.SPIFFEID == "" {
			r.SPIFFEID = u.String()
		}
	}

	root, err := Verify(chain, roots, now)
	switch {
	case len(roots) == 0:
		r.VerifyError = "no root bundle given"
	case err != nil:
		r.VerifyError = err.Error()
	default:
		r.Verified = true
		r.VerifiedRoot = &RootReport{Subject: root.Subject.String(), Fingerprint: Fingerprint(root), NotAfter: root.NotAfter.UTC()}
	}
	return r, nil
}

// Verify checks that chain (leaf first) leads to one of roots at now, for
// any key usage, and returns the root it reached.
func Verify(chain []*x509.Certificate, roots []*x509.Certificate, now time.Time) (*x509.Certificate, error) {
	if len(chain) == 0 {
		return nil, errors.New("empty chain")
	}
	if len(roots) == 0 {
		return nil, errors.New("empty root bundle")
	}
	rootPool := x509.NewCertPool()
	for _, root := range roots {
		rootPool.AddCert(root)
	}
	intermediates := x509.NewCertPool()
	for _, c := range chain[1:] {
		if !isSelfSigned(c) {
			intermediates.AddCert(c)
		}
	}
	chains, err := chain[0].Verify(x509.VerifyOptions{
		Roots:         rootPool,
		Intermediates: intermediates,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, explainVerifyError(err, chain[0], now)
	}
	verified := chains[0]
	return verified[len(verified)-1], nil
}

func isSelfSigned(c *x509.Certificate) bool {
	return c.CheckSignatureFrom(c) == nil
}

func explainVerifyError(err error, leaf *x509.Certificate, now time.Time) error {
	var invalid x509.CertificateInvalidError
	if errors.As(err, &invalid) && invalid.Reason == x509.Expired {
		if now.After(leaf.NotAfter) {
			return fmt.Errorf("the certificate expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
		}
		return fmt.Errorf("a certificate in the chain is outside its validity period at %s: %v", now.UTC().Format(time.RFC3339), err)
	}
	var unknown x509.UnknownAuthorityError
	if errors.As(err, &unknown) {
		return fmt.Errorf("the chain does not lead to any root in the bundle (issuer %q): %v", leaf.Issuer.String(), err)
	}
	return err
}

// Remaining formats the time left until notAfter in its two largest units,
// such as "2d3h" or "4m10s", or "expired".
func Remaining(notAfter, now time.Time) string {
	left := notAfter.Sub(now).Truncate(time.Second)
	if left <= 0 {
		return "expired"
	}
	units := []struct {
		size time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}}
	var b strings.Builder
	shown := 0
	for _, u := range units {
		n := left / u.size
		if n == 0 && shown == 0 {
			continue
		}
		left -= n * u.size
		if n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
		}
		if shown++; shown == 2 {
			break
		}
	}
	return b.String()
}
