// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package pki

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// PEM block types this package reads and writes.
const (
	BlockCertificate        = "CERTIFICATE"
	BlockCertificateRequest = "CERTIFICATE REQUEST"
	BlockPrivateKey         = "PRIVATE KEY"
	BlockECPrivateKey       = "EC PRIVATE KEY"
	BlockRSAPrivateKey      = "RSA PRIVATE KEY"
)

// ErrPEM is wrapped by every PEM decoding error.
var ErrPEM = errors.New("invalid PEM")

// EncodePrivateKey encodes key as a PKCS#8 "PRIVATE KEY" block.
func EncodePrivateKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: BlockPrivateKey, Bytes: der}), nil
}

// DecodePrivateKey reads the one private key in data, in PKCS#8, SEC 1 (EC)
// or PKCS#1 (RSA) form.
func DecodePrivateKey(data []byte) (crypto.Signer, error) {
	blocks, err := decodeBlocks(data, "private key")
	if err != nil {
		return nil, err
	}
	var keys []*pem.Block
	for _, b := range blocks {
		switch b.Type {
		case BlockPrivateKey, BlockECPrivateKey, BlockRSAPrivateKey:
			keys = append(keys, b)
		}
	}
	switch {
	case len(keys) == 0:
		return nil, fmt.Errorf("%w: no private key block found (expected %q, %q or %q)", ErrPEM, BlockPrivateKey, BlockECPrivateKey, BlockRSAPrivateKey)
	case len(keys) > 1:
		return nil, fmt.Errorf("%w: %d private key blocks found, expected one", ErrPEM, len(keys))
	}
	b := keys[0]
	var key any
	switch b.Type {
	case BlockPrivateKey:
		key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case BlockECPrivateKey:
		key, err = x509.ParseECPrivateKey(b.Bytes)
	case BlockRSAPrivateKey:
		key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: parse %s block: %v", ErrPEM, b.Type, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: %T is not a signing key", ErrPEM, key)
	}
	return signer, nil
}

// EncodeCertificates encodes certs as consecutive CERTIFICATE blocks, in
// order.
func EncodeCertificates(certs ...*x509.Certificate) []byte {
	var buf bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&buf, &pem.Block{Type: BlockCertificate, Bytes: c.Raw})
	}
	return buf.Bytes()
}

// DecodeCertificates reads every CERTIFICATE block in data, in order: a leaf,
// a chain or a bundle of roots. Other block types are ignored, so a file
// that holds a key and its chain works too.
func DecodeCertificates(data []byte) ([]*x509.Certificate, error) {
	blocks, err := decodeBlocks(data, "certificate")
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for _, b := range blocks {
		if b.Type != BlockCertificate {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate %d: %v", ErrPEM, len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: no %q block found", ErrPEM, BlockCertificate)
	}
	return certs, nil
}

// EncodeCSR encodes a DER certificate request as PEM.
func EncodeCSR(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: BlockCertificateRequest, Bytes: der})
}

// DecodeCSR reads the one certificate request in data.
func DecodeCSR(data []byte) (*x509.CertificateRequest, error) {
	blocks, err := decodeBlocks(data, "certificate request")
	if err != nil {
		return nil, err
	}
	for _, b := range blocks {
		if b.Type == BlockCertificateRequest || b.Type == "NEW CERTIFICATE REQUEST" {
			csr, err := x509.ParseCertificateRequest(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: parse certificate request: %v", ErrPEM, err)
			}
			return csr, nil
		}
	}
	return nil, fmt.Errorf("%w: no %q block found", ErrPEM, BlockCertificateRequest)
}

// decodeBlocks splits data into PEM blocks. It refuses input with no block,
// and input where a block starts but does not end: a truncated file must
// never pass for a shorter valid one.
func decodeBlocks(data []byte, what string) ([]*pem.Block, error) {
	var blocks []*pem.Block
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		blocks = append(blocks, b)
	}
	if bytes.Contains(rest, []byte("-----BEGIN")) {
		return nil, fmt.Errorf("%w: the %s data is truncated or corrupt after %d complete block(s): a block begins but does not end", ErrPEM, what, len(blocks))
	}
	if len(blocks) == 0 {
		if len(bytes.TrimSpace(data)) == 0 {
			return nil, fmt.Errorf("%w: the %s data is empty", ErrPEM, what)
		}
		return nil, fmt.Errorf("%w: the %s data holds no PEM block (is it DER or base64 from a Secret? decode it first)", ErrPEM, what)
	}
	return blocks, nil
}
