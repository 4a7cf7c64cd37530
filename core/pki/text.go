// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package pki

import (
	"crypto/x509"
	"fmt"
	"io"
	"strings"
	"time"
)

// keyUsageNames are the names of x509.KeyUsage bits, as openssl prints them.
var keyUsageNames = []struct {
	bit  x509.KeyUsage
	name string
}{
	{x509.KeyUsageDigitalSignature, "Digital Signature"}, {x509.KeyUsageContentCommitment, "Non Repudiation"},
	{x509.KeyUsageKeyEncipherment, "Key Encipherment"}, {x509.KeyUsageDataEncipherment, "Data Encipherment"},
	{x509.KeyUsageKeyAgreement, "Key Agreement"}, {x509.KeyUsageCertSign, "Certificate Sign"},
	{x509.KeyUsageCRLSign, "CRL Sign"}, {x509.KeyUsageEncipherOnly, "Encipher Only"}, {x509.KeyUsageDecipherOnly, "Decipher Only"},
}

var extKeyUsageNames = map[x509.ExtKeyUsage]string{
	x509.ExtKeyUsageAny: "Any", x509.ExtKeyUsageServerAuth: "TLS Web Server Authentication",
	x509.ExtKeyUsageClientAuth: "TLS Web Client Authentication", x509.ExtKeyUsageCodeSigning: "Code Signing",
	x509.ExtKeyUsageEmailProtection: "E-mail Protection", x509.ExtKeyUsageTimeStamping: "Time Stamping",
	x509.ExtKeyUsageOCSPSigning: "OCSP Signing",
}

// KeyUsages names the key usages of c.
func KeyUsages(c *x509.Certificate) []string {
	var names []string
	for _, u := range keyUsageNames {
		if c.KeyUsage&u.bit != 0 {
			names = append(names, u.name)
		}
	}
	return names
}

// ExtKeyUsages names the extended key usages of c.
func ExtKeyUsages(c *x509.Certificate) []string {
	var names []string
	for _, u := range c.ExtKeyUsage {
		name, ok := extKeyUsageNames[u]
		if !ok {
			name = fmt.Sprintf("unknown (%d)", u)
		}
		names = append(names, name)
	}
	for _, oid := range c.UnknownExtKeyUsage {
		names = append(names, oid.String())
	}
	return names
}

// WriteChainText writes every certificate of chain (leaf first), then the
// roots it was checked against, and the outcome of verifying the chain at
// now: the root it reaches, or why it fails. It is `inspect --text`.
func WriteChainText(w io.Writer, chain, roots []*x509.Certificate, now time.Time) error {
	p := &textWriter{w: w}
	for i, c := range chain {
		role := "intermediate"
		switch {
		case i == 0:
			role = "leaf"
		case isSelfSigned(c):
			role = "root (in the chain)"
		}
		p.certificate(fmt.Sprintf("Certificate %d of %d: %s", i+1, len(chain), role), c, now)
	}
	for i, r := range roots {
		p.certificate(fmt.Sprintf("Trusted root %d of %d", i+1, len(roots)), r, now)
	}
	switch {
	case len(chain) == 0:
		p.line("Verification: nothing to verify: no certificate")
	case len(roots) == 0:
		p.line("Verification: not attempted: no trusted root was given")
	default:
		root, err := Verify(chain, roots, now)
		if err != nil {
			p.line("Verification: FAILED: %v", err)
		} else {
			p.line("Verification: OK: the chain reaches trusted root %s (%s) at %s", Fingerprint(root)[:16], root.Subject, now.UTC().Format(time.RFC3339))
		}
	}
	return p.err
}

// textWriter writes lines until the first error, which it keeps.
type textWriter struct {
	w   io.Writer
	err error
}

func (p *textWriter) line(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format+"\n", args...)
	}
}

func (p *textWriter) certificate(title string, c *x509.Certificate, now time.Time) {
	p.line("%s", title)
	p.line("    Subject:              %s", orNone(c.Subject.String()))
	p.line("    Issuer:               %s", orNone(c.Issuer.String()))
	p.line("    Serial:               %s", Serial(c))
	validity := "valid, " + Remaining(c.NotAfter, now) + " left"
	switch {
	case now.Before(c.NotBefore):
		validity = "NOT YET VALID"
	case !now.Before(c.NotAfter):
		validity = "EXPIRED"
	}
	p.line("    Validity:             %s to %s (%s)", c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339), validity)
	p.line("    Public key:           %s", KeyType(c.PublicKey))
	p.line("    Signature algorithm:  %s", c.SignatureAlgorithm)
	p.line("    CA:                   %t%s", c.IsCA, pathLen(c))
	p.line("    Key usage:            %s", orNone(strings.Join(KeyUsages(c), ", ")))
	p.line("    Extended key usage:   %s", orNone(strings.Join(ExtKeyUsages(c), ", ")))
	var sans []string
	for _, u := range c.URIs {
		sans = append(sans, "URI:"+u.String())
	}
	for _, d := range c.DNSNames {
		sans = append(sans, "DNS:"+d)
	}
	for _, ip := range c.IPAddresses {
		sans = append(sans, "IP:"+ip.String())
	}
	p.line("    Subject alt names:    %s", orNone(strings.Join(sans, ", ")))
	p.line("    SHA-256:              %s", Fingerprint(c))
}

func pathLen(c *x509.Certificate) string {
	if !c.IsCA || (c.MaxPathLen <= 0 && !c.MaxPathLenZero) {
		return ""
	}
	return fmt.Sprintf(" (path length %d)", c.MaxPathLen)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
