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
	// An in-memory key issues through pki.URILeafIssuer; any other signer
	// through x509.CreateCertificate, which checks each signature.
	for signerName, signer := range map[string]crypto.Signer{"in-memory key": root.Key, "opaque signer": opaqueSigner{root.Key}} {
		a, err := NewAuthority(signer, root.Chain(), root.Chain(), func() time.Time { return now })
		require.NoError(t, err)
		require.Equal(t, signerName == "in-memory key", a.workloadLeaves != nil)
		for name, tc := range tests {
			t.Run(signerName+"/"+name, func(t *testing.T) {
				chain, err := a.SignWorkload(key.Public(), id, tc.ttl)
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
