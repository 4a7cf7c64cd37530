// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// URILeafIssuer issues leaf certificates that differ from a reference
// certificate, made once by crypto/x509, only in serial number, validity,
// public key and their one URI SAN. Everything else (version, signature
// algorithm, issuer, empty subject, the other extensions and their order)
// is the reference's, byte for byte, so a leaf is exactly what
// x509.CreateCertificate makes from the same template.
//
// It exists because x509.CreateCertificate verifies every signature it has
// just made, in case the signer is faulty: for an ECDSA P-256 key in this
// process that check costs twice the signing, about a quarter of a CA's
// work per certificate. Only in-memory ECDSA and RSA keys are accepted (RSA
// signing checks itself).
type URILeafIssuer struct {
	signer crypto.Signer
	hash   crypto.Hash
	// Raw DER elements of the reference's TBSCertificate and signature.
	version, signatureAlgorithm, issuer, subject []byte
	// extensions are the reference's, with the SAN extension's index in
	// san and its criticality in sanCritical.
	extensions  [][]byte
	san         int
	sanCritical bool
}

// NewURILeafIssuer reads the shape of reference, a certificate with one URI
// SAN and an empty subject signed by signer, and returns an issuer of leaves
// of that shape.
func NewURILeafIssuer(reference *x509.Certificate, signer crypto.Signer) (*URILeafIssuer, error) {
	li := &URILeafIssuer{signer: signer, san: -1}
	switch signer.(type) {
	case *ecdsa.PrivateKey, *rsa.PrivateKey:
	default:
		return nil, fmt.Errorf("the signer is a %T: only in-memory ECDSA and RSA keys issue leaves without the check x509 makes", signer)
	}
	switch reference.SignatureAlgorithm {
	case x509.ECDSAWithSHA256, x509.SHA256WithRSA:
		li.hash = crypto.SHA256
	case x509.ECDSAWithSHA384, x509.SHA384WithRSA:
		li.hash = crypto.SHA384
	case x509.ECDSAWithSHA512, x509.SHA512WithRSA:
		li.hash = crypto.SHA512
	default:
		return nil, fmt.Errorf("the reference certificate is signed with %s, which leaves are not issued with", reference.SignatureAlgorithm)
	}
	if len(reference.URIs) != 1 || len(reference.DNSNames)+len(reference.IPAddresses)+len(reference.EmailAddresses) > 0 {
		return nil, errors.New("the reference certificate must carry exactly one SAN, a URI")
	}
	tbs := cryptobyte.String(reference.RawTBSCertificate)
	var extensions cryptobyte.String
	var hasExtensions bool
	if !tbs.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
		!tbs.ReadASN1Element((*cryptobyte.String)(&li.version), cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!tbs.SkipASN1(cbasn1.INTEGER) ||
		!tbs.ReadASN1Element((*cryptobyte.String)(&li.signatureAlgorithm), cbasn1.SEQUENCE) ||
		!tbs.ReadASN1Element((*cryptobyte.String)(&li.issuer), cbasn1.SEQUENCE) ||
		!tbs.SkipASN1(cbasn1.SEQUENCE) ||
		!tbs.ReadASN1Element((*cryptobyte.String)(&li.subject), cbasn1.SEQUENCE) ||
		!tbs.SkipASN1(cbasn1.SEQUENCE) ||
		!tbs.ReadOptionalASN1(&extensions, &hasExtensions, cbasn1.Tag(3).Constructed().ContextSpecific()) ||
		!tbs.Empty() || !hasExtensions ||
		!extensions.ReadASN1(&extensions, cbasn1.SEQUENCE) {
		return nil, errors.New("cannot read the reference certificate's TBSCertificate")
	}
	for !extensions.Empty() {
		var raw, ext cryptobyte.String
		var oid asn1.ObjectIdentifier
		if !extensions.ReadASN1Element(&raw, cbasn1.SEQUENCE) {
			return nil, errors.New("cannot read the reference certificate's extensions")
		}
		ext = raw
		if !ext.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1ObjectIdentifier(&oid) {
			return nil, errors.New("cannot read an extension of the reference certificate")
		}
		if oid.Equal(oidSubjectAltName) {
			li.san = len(li.extensions)
			if ext.PeekASN1Tag(cbasn1.BOOLEAN) && !ext.ReadASN1Boolean(&li.sanCritical) {
				return nil, errors.New("cannot read the reference certificate's SAN extension")
			}
		}
		li.extensions = append(li.extensions, raw)
	}
	if li.san < 0 {
		return nil, errors.New("the reference certificate has no SAN extension")
	}
	return li, nil
}

// Issue signs a leaf for pub with serial, validity and URI SAN uri, and
// returns its DER.
func (li *URILeafIssuer) Issue(pub crypto.PublicKey, serial *big.Int, notBefore, notAfter time.Time, uri *url.URL) ([]byte, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	name := uri.String()
	for i := range len(name) {
		if name[i] >= 0x80 {
			return nil, fmt.Errorf("URI SAN %q is not ASCII", name)
		}
	}
	var tbs cryptobyte.Builder
	tbs.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(li.version)
		b.AddASN1BigInt(serial)
		b.AddBytes(li.signatureAlgorithm)
		b.AddBytes(li.issuer)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			addTime(b, notBefore)
			addTime(b, notAfter)
		})
		b.AddBytes(li.subject)
		b.AddBytes(spki)
		b.AddASN1(cbasn1.Tag(3).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for i, ext := range li.extensions {
					if i != li.san {
						b.AddBytes(ext)
						continue
					}
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier(oidSubjectAltName)
						if li.sanCritical {
							b.AddASN1Boolean(true)
						}
						b.AddASN1(cbasn1.OCTET_STRING, func(b *cryptobyte.Builder) {
							b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
								b.AddASN1(cbasn1.Tag(6).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(name)) })
							})
						})
					})
				}
			})
		})
	})
	raw, err := tbs.Bytes()
	if err != nil {
		return nil, fmt.Errorf("encode the certificate: %w", err)
	}
	h := li.hash.New()
	h.Write(raw)
	signature, err := li.signer.Sign(rand.Reader, h.Sum(nil), li.hash)
	if err != nil {
		return nil, fmt.Errorf("sign the certificate: %w", err)
	}
	var cert cryptobyte.Builder
	cert.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(raw)
		b.AddBytes(li.signatureAlgorithm)
		b.AddASN1BitString(signature)
	})
	return cert.Bytes()
}

// addTime encodes t as encoding/asn1 does for a certificate's validity:
// UTCTime from 1950 to 2049, GeneralizedTime otherwise, to the second.
func addTime(b *cryptobyte.Builder, t time.Time) {
	t = t.UTC().Truncate(time.Second)
	if y := t.Year(); y >= 1950 && y < 2050 {
		b.AddASN1UTCTime(t)
		return
	}
	b.AddASN1GeneralizedTime(t)
}
