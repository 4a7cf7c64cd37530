// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package pki holds the mesh's pure certificate logic: keys, CSRs, PEM
// encoding, certificate reports and rotation times. It does no I/O.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"strings"
)

// KeyAlgorithm names a kind of private key the mesh generates.
type KeyAlgorithm string

// The key algorithms the mesh generates. ECDSA P-256 is the default, as in
// Istio; RSA is there for peers that need it.
const (
	ECDSAP256 KeyAlgorithm = "ECDSA-P256"
	RSA2048   KeyAlgorithm = "RSA-2048"
	RSA3072   KeyAlgorithm = "RSA-3072"

	DefaultKeyAlgorithm = ECDSAP256
)

// KeyAlgorithms lists every supported algorithm, default first.
var KeyAlgorithms = []KeyAlgorithm{ECDSAP256, RSA2048, RSA3072}

// ParseKeyAlgorithm accepts the names in KeyAlgorithms, case-insensitively.
// The empty string means the default.
func ParseKeyAlgorithm(s string) (KeyAlgorithm, error) {
	if s == "" {
		return DefaultKeyAlgorithm, nil
	}
	for _, alg := range KeyAlgorithms {
		if strings.EqualFold(s, string(alg)) {
			return alg, nil
		}
	}
	names := make([]string, len(KeyAlgorithms))
	for i, alg := range KeyAlgorithms {
		names[i] = string(alg)
	}
	return "", fmt.Errorf("unknown key algorithm %q: use one of %s", s, strings.Join(names, ", "))
}

// GenerateKey makes a new private key of the given algorithm.
func GenerateKey(alg KeyAlgorithm) (crypto.Signer, error) {
	switch alg {
	case ECDSAP256, "":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case RSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	default:
		_, err := ParseKeyAlgorithm(string(alg))
		return nil, err
	}
}

// KeyType describes a public key, for example "ECDSA-P256" or "RSA-2048".
func KeyType(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA-" + strings.ReplaceAll(k.Curve.Params().Name, "-", "")
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA-%d", k.N.BitLen())
	case ed25519.PublicKey:
		return "Ed25519"
	default:
		return fmt.Sprintf("unknown (%T)", pub)
	}
}

// KeyMatches reports whether the private key belongs to the public key.
func KeyMatches(key crypto.Signer, pub crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	own, ok := key.Public().(equaler)
	return ok && own.Equal(pub)
}
