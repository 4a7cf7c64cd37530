// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package ca

import (
	"crypto"
	"crypto/x509"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshcert/kubectl-meshcert/core/identity"
	"github.com/meshcert/kubectl-meshcert/core/pki"
	"github.com/meshcert/kubectl-meshcert/core/pki/pkitest"
)

// opaqueSigner hides the key behind crypto.Signer, as a KMS would.
type opaqueSigner struct{ crypto.Signer }

func TestAuthoritySign(t *testing.T) {
	root := pkitest.NewRoot(t)
	now := time.Now()
	id, err := identity.New("example.org", "shop", "cart")
	require.NoError(t, err)
	key, err := pki.GenerateKey(pki.RSA2048)
	require.NoError(t, err)

	tests := map[string]struct {
		ttl          time.Duration
		wantNotAfter time.Time
		wantErr      string
	}{
		"within the root's life":         {ttl: time.Hour, wantNotAfter: now.Add(time.Hour)},
		"capped at the root's not-after": {ttl: 10 * 365 * 24 * time.Hour, wantNotAfter: root.Cert.NotAfter},
		"zero lifetime":                  {ttl: 0, wantErr: "must be positive"},
	}
	// SignWorkloadPEM must send what SignWorkload returns, one certificate
	// per PEM string.
	signPEM := func(t *testing.T, a *Authority, pub crypto.PublicKey, ttl time.Duration) ([]*x509.Certificate, error) {
		issued, err := a.SignWorkloadPEM(pub, id, ttl)
		if err != nil {
			return nil, err
		}
		var chain []*x509.Certificate
		for _, p := range issued.PEM {
			certs, err := pki.DecodeCertificates([]byte(p))
			require.NoError(t, err)
			require.Len(t, certs, 1)
			chain = append(chain, certs[0])
		}
		require.Equal(t, 0, issued.Serial.Cmp(chain[0].SerialNumber))
		require.True(t, issued.NotAfter.Equal(chain[0].NotAfter), "%s, want %s", issued.NotAfter, chain[0].NotAfter)
		return chain, nil
	}
	signs := map[string]func(*testing.T, *Authority, crypto.PublicKey, time.Duration) ([]*x509.Certificate, error){
		"SignWorkload": func(_ *testing.T, a *Authority, pub crypto.PublicKey, ttl time.Duration) ([]*x509.Certificate, error) {
			return a.SignWorkload(pub, id, ttl)
		},
		"SignWorkloadPEM": signPEM,
	}
	// An in-memory key issues through pki.URILeafIssuer; any other signer
	// through x509.CreateCertificate, which checks each signature.
	for signerName, signer := range map[string]crypto.Signer{"in-memory key": root.Key, "opaque signer": opaqueSigner{root.Key}} {
		a, err := NewAuthority(signer, root.Chain(), root.Chain(), func() time.Time { return now })
		require.NoError(t, err)
		require.Equal(t, signerName == "in-memory key", a.workloadLeaves != nil)
		for name, tc := range tests {
			for signName, sign := range signs {
				t.Run(signerName+"/"+signName+"/"+name, func(t *testing.T) {
					chain, err := sign(t, a, key.Public(), tc.ttl)
					if tc.wantErr != "" {
						require.ErrorContains(t, err, tc.wantErr)
						return
					}
					require.NoError(t, err)
					require.Len(t, chain, 2)
					require.Equal(t, "spiffe://example.org/ns/shop/sa/cart", chain[0].URIs[0].String())
					require.Equal(t, now.Add(-time.Minute).Truncate(time.Second), chain[0].NotBefore.Local().Truncate(time.Second))
					require.WithinDuration(t, tc.wantNotAfter, chain[0].NotAfter, time.Second)
					require.True(t, chain[1].Equal(root.Cert))
					require.True(t, pki.KeyMatches(key, chain[0].PublicKey))
					require.Equal(t, x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment, chain[0].KeyUsage)
					require.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, chain[0].ExtKeyUsage)
					require.Empty(t, chain[0].Subject.String())
					_, err = pki.Verify(chain[:1], root.Chain(), now)
					require.NoError(t, err)
				})
			}
		}
	}
}

// TestAuthoritySignsUnderAnIntermediate requires both ways of signing to
// return the leaf, the intermediate and the root, in that order.
func TestAuthoritySignsUnderAnIntermediate(t *testing.T) {
	root := pkitest.NewRoot(t)
	intermediate := root.NewIntermediate(t)
	a, err := NewAuthority(intermediate.Key, intermediate.Chain(), root.Chain(), nil)
	require.NoError(t, err)
	key, err := pki.GenerateKey(pki.ECDSAP256)
	require.NoError(t, err)
	id := identity.ID{TrustDomain: "td", Namespace: "a", ServiceAccount: "b"}

	chain, err := a.SignWorkload(key.Public(), id, time.Hour)
	require.NoError(t, err)
	require.Len(t, chain, 3)
	issued, err := a.SignWorkloadPEM(key.Public(), id, time.Hour)
	require.NoError(t, err)
	require.Len(t, issued.PEM, 3)
	for i, want := range []*x509.Certificate{intermediate.Cert, root.Cert} {
		require.True(t, chain[i+1].Equal(want), "certificate %d", i+1)
		require.Equal(t, string(pki.EncodeCertificates(want)), issued.PEM[i+1], "certificate %d", i+1)
	}
	leaf, err := pki.DecodeCertificates([]byte(issued.PEM[0]))
	require.NoError(t, err)
	_, err = pki.Verify(append(leaf, intermediate.Cert), root.Chain(), time.Now())
	require.NoError(t, err)
}

func TestNewAuthorityRefusesALeafAsCA(t *testing.T) {
	root := pkitest.NewRoot(t)
	a, err := NewAuthority(root.Key, root.Chain(), root.Chain(), nil)
	require.NoError(t, err)
	key, err := pki.GenerateKey(pki.ECDSAP256)
	require.NoError(t, err)
	leaf, err := a.SignWorkload(key.Public(), identity.ID{TrustDomain: "td", Namespace: "a", ServiceAccount: "b"}, time.Hour)
	require.NoError(t, err)
	_, err = NewAuthority(key, leaf[:1], root.Chain(), nil)
	require.ErrorContains(t, err, "is not a CA certificate with the certSign key usage")
}
