// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package pki

import (
	"crypto/x509"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWriteChainText(t *testing.T) {
	tests := map[string]struct {
		chain, roots string
		want         []string
	}{
		"a leaf and its intermediate, verified": {
			chain: "chain-a.pem", roots: "root-a.pem",
			want: []string{
				"Certificate 1 of 2: leaf\n    Subject:              (none)\n    Issuer:               CN=intermediate A,O=meshcert\n",
				"    Key usage:            Digital Signature",
				"    Extended key usage:   TLS Web Server Authentication, TLS Web Client Authentication\n",
				"    Subject alt names:    URI:spiffe://cluster.local/ns/shop/sa/cart\n",
				"(valid, ",
				"Certificate 2 of 2: intermediate\n",
				"    CA:                   true",
				"    Key usage:            Certificate Sign",
				"Trusted root 1 of 1\n    Subject:              CN=root A,O=meshcert\n",
				"Verification: OK: the chain reaches trusted root ",
			},
		},
		"the wrong root": {
			chain: "chain-a.pem", roots: "root-b.pem",
			want: []string{`Verification: FAILED: the chain does not lead to any root in the bundle (issuer "CN=intermediate A,O=meshcert")`},
		},
		"an expired chain": {
			chain: "expired-chain.pem", roots: "root-a.pem",
			want: []string{"(EXPIRED)\n", "Verification: FAILED: the certificate expired at 2025-01-02T00:00:00Z"},
		},
		"no roots": {
			chain: "chain-a.pem",
			want:  []string{"Verification: not attempted: no trusted root was given"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var roots []*x509.Certificate
			if tc.roots != "" {
				roots = certsFixture(t, tc.roots)
			}
			var out strings.Builder
			require.NoError(t, WriteChainText(&out, certsFixture(t, tc.chain), roots, fixtureTime))
			for _, w := range tc.want {
				require.Contains(t, out.String(), w)
			}
		})
	}
}
