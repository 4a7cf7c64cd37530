// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package pki

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fixtureTime lies inside every fixture's validity window except the
// expired chain's.
var fixtureTime = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return data
}

func certsFixture(t *testing.T, name string) []*x509.Certificate {
	t.Helper()
	certs, err := DecodeCertificates(fixture(t, name))
	require.NoError(t, err)
	return certs
}

func TestDescribe(t *testing.T) {
	tests := map[string]struct {
		chain, roots  string
		wantVerified  bool
		wantRoot      string
		wantVerifyErr string
		wantExpired   bool
		wantKeyType   string
	}{
		"chain to its root": {
			chain: "chain-a.pem", roots: "root-a.pem",
			wantVerified: true, wantRoot: "CN=root A,O=meshcert", wantKeyType: "ECDSA-P256",
		},
		"chain to a bundle holding its root": {
			chain: "chain-a.pem", roots: "bundle-ab.pem",
			wantVerified: true, wantRoot: "CN=root A,O=meshcert", wantKeyType: "ECDSA-P256",
		},
		"wrong root": {
			chain: "chain-a.pem", roots: "root-b.pem",
			wantVerifyErr: `the chain does not lead to any root in the bundle (issuer "CN=intermediate A,O=meshcert")`, wantKeyType: "ECDSA-P256",
		},
		"expired chain": {
			chain: "expired-chain.pem", roots: "root-a.pem",
			wantVerifyErr: "the certificate expired at 2025-01-02T00:00:00Z", wantExpired: true, wantKeyType: "ECDSA-P256",
		},
		"no roots given": {
			chain: "chain-a.pem", wantVerifyErr: "no root bundle given", wantKeyType: "ECDSA-P256",
		},
		"RSA leaf signed by the root": {
			chain: "rsa-leaf.pem", roots: "root-a.pem",
			wantVerified: true, wantRoot: "CN=root A,O=meshcert", wantKeyType: "RSA-2048",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var roots []*x509.Certificate
			if tc.roots != "" {
				roots = certsFixture(t, tc.roots)
			}
			chain := certsFixture(t, tc.chain)
			r, err := Describe(chain, roots, fixtureTime)
			require.NoError(t, err)
			require.Equal(t, "spiffe://cluster.local/ns/shop/sa/cart", r.SPIFFEID)
			require.Equal(t, []string{"spiffe://cluster.local/ns/shop/sa/cart"}, r.URISANs)
			require.Equal(t, Serial(chain[0]), r.Serial)
			require.Len(t, r.Fingerprint, 64)
			require.Equal(t, tc.wantKeyType, r.KeyType)
			require.Equal(t, tc.wantExpired, r.Expired)
			require.Equal(t, tc.wantVerified, r.Verified)
			require.Equal(t, len(chain), r.ChainLength)
			if tc.wantVerified {
				require.Empty(t, r.VerifyError)
				require.Equal(t, tc.wantRoot, r.VerifiedRoot.Subject)
				require.Equal(t, Fingerprint(certsFixture(t, "root-a.pem")[0]), r.VerifiedRoot.Fingerprint)
			} else {
				require.Nil(t, r.VerifiedRoot)
				require.Contains(t, r.VerifyError, tc.wantVerifyErr)
			}
		})
	}
}

func TestDescribeEmptyChain(t *testing.T) {
	_, err := Describe(nil, nil, fixtureTime)
	require.EqualError(t, err, "no certificate to describe")
}

func TestDecodeCertificates(t *testing.T) {
	tests := map[string]struct {
		data      []byte
		wantCount int
		wantErr   string
	}{
		"chain":                   {data: fixture(t, "chain-a.pem"), wantCount: 2},
		"bundle":                  {data: fixture(t, "bundle-ab.pem"), wantCount: 2},
		"key and chain together":  {data: append(fixture(t, "key-a.pem"), fixture(t, "chain-a.pem")...), wantCount: 2},
		"truncated chain":         {data: fixture(t, "truncated-chain.pem"), wantErr: "truncated or corrupt after 1 complete block(s)"},
		"empty":                   {data: []byte("\n  \n"), wantErr: "the certificate data is empty"},
		"base64 instead of PEM":   {data: []byte("LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t"), wantErr: "holds no PEM block"},
		"a key, no certificate":   {data: fixture(t, "key-a.pem"), wantErr: `no "CERTIFICATE" block found`},
		"corrupt certificate DER": {data: []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), wantErr: "certificate 1:"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			certs, err := DecodeCertificates(tc.data)
			if tc.wantErr != "" {
				require.ErrorIs(t, err, ErrPEM)
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Len(t, certs, tc.wantCount)
			require.Equal(t, tc.data[len(tc.data)-len(EncodeCertificates(certs...)):], EncodeCertificates(certs...))
		})
	}
}

func TestDecodePrivateKey(t *testing.T) {
	leaf := certsFixture(t, "chain-a.pem")[0]
	rsaLeaf := certsFixture(t, "rsa-leaf.pem")[0]
	tests := map[string]struct {
		key       string
		cert      *x509.Certificate
		wantMatch bool
		wantErr   string
	}{
		"PKCS#8 key of its certificate":  {key: "key-a.pem", cert: leaf, wantMatch: true},
		"SEC 1 key of its certificate":   {key: "key-a-sec1.pem", cert: leaf, wantMatch: true},
		"PKCS#1 RSA key":                 {key: "rsa-key-pkcs1.pem", cert: rsaLeaf, wantMatch: true},
		"key and certificate mismatched": {key: "key-other.pem", cert: leaf, wantMatch: false},
		"RSA key against an EC cert":     {key: "rsa-key-pkcs1.pem", cert: leaf, wantMatch: false},
		"a certificate, not a key":       {key: "root-a.pem", wantErr: "no private key block found"},
		"truncated":                      {key: "truncated-chain.pem", wantErr: "truncated or corrupt"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			key, err := DecodePrivateKey(fixture(t, tc.key))
			if tc.wantErr != "" {
				require.ErrorIs(t, err, ErrPEM)
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.wantMatch, KeyMatches(key, tc.cert.PublicKey))
		})
	}
}

func TestDecodePrivateKeyTwoKeys(t *testing.T) {
	_, err := DecodePrivateKey(append(fixture(t, "key-a.pem"), fixture(t, "key-other.pem")...))
	require.ErrorContains(t, err, "2 private key blocks found, expected one")
}

func TestKeysRoundTrip(t *testing.T) {
	spiffe, err := url.Parse("spiffe://cluster.local/ns/shop/sa/cart")
	require.NoError(t, err)
	for _, alg := range KeyAlgorithms {
		t.Run(string(alg), func(t *testing.T) {
			key, err := GenerateKey(alg)
			require.NoError(t, err)
			require.Equal(t, string(alg), KeyType(key.Public()))

			encoded, err := EncodePrivateKey(key)
			require.NoError(t, err)
			decoded, err := DecodePrivateKey(encoded)
			require.NoError(t, err)
			require.True(t, KeyMatches(decoded, key.Public()))

			csrPEM, err := NewCSR(key, spiffe)
			require.NoError(t, err)
			csr, err := DecodeCSR(csrPEM)
			require.NoError(t, err)
			require.NoError(t, csr.CheckSignature())
			require.Equal(t, []*url.URL{spiffe}, csr.URIs)
			require.Empty(t, csr.DNSNames)
			require.Empty(t, csr.IPAddresses)
			require.Empty(t, csr.EmailAddresses)
			switch alg {
			case ECDSAP256:
				require.IsType(t, &ecdsa.PrivateKey{}, key)
			default:
				require.IsType(t, &rsa.PrivateKey{}, key)
			}
		})
	}
}

func TestNewCSRNeedsURI(t *testing.T) {
	key, err := GenerateKey(DefaultKeyAlgorithm)
	require.NoError(t, err)
	_, err = NewCSR(key, nil)
	require.EqualError(t, err, "a workload CSR needs a URI SAN")
}

func TestDecodeCSRErrors(t *testing.T) {
	_, err := DecodeCSR(fixture(t, "root-a.pem"))
	require.ErrorContains(t, err, `no "CERTIFICATE REQUEST" block found`)
	_, err = DecodeCSR([]byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"))
	require.ErrorContains(t, err, "parse certificate request")
}

func TestParseKeyAlgorithm(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    KeyAlgorithm
		wantErr string
	}{
		"empty means default": {in: "", want: ECDSAP256},
		"case-insensitive":    {in: "rsa-3072", want: RSA3072},
		"unknown":             {in: "ed448", wantErr: `unknown key algorithm "ed448": use one of ECDSA-P256, RSA-2048, RSA-3072`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseKeyAlgorithm(tc.in)
			if tc.wantErr != "" {
				require.EqualError(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestRotationTime(t *testing.T) {
	notBefore := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	notAfter := notBefore.Add(24 * time.Hour)
	tests := map[string]struct {
		rotation Rotation
		want     time.Time
	}{
		"half-way with no jitter drawn": {
			rotation: Rotation{Ratio: 0.5, Jitter: 0.01, Rand: func() float64 { return 0.5 }},
			want:     notBefore.Add(12 * time.Hour),
		},
		"lowest draw renews latest": {
			rotation: Rotation{Ratio: 0.5, Jitter: 0.01, Rand: func() float64 { return 0 }},
			want:     notAfter.Add(-time.Duration(0.49 * float64(24*time.Hour))),
		},
		"highest draw renews earliest": {
			rotation: Rotation{Ratio: 0.5, Jitter: 0.01, Rand: func() float64 { return 1 }},
			want:     notAfter.Add(-time.Duration(0.51 * float64(24*time.Hour))),
		},
		"ratio 0.2 renews in the last fifth": {
			rotation: Rotation{Ratio: 0.2, Rand: func() float64 { return 0.3 }},
			want:     notAfter.Add(-time.Duration(0.2 * float64(24*time.Hour))),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, tc.rotation.Validate())
			require.Equal(t, tc.want, tc.rotation.Time(notBefore, notAfter))
		})
	}
}

func TestRotationJitterStaysInBounds(t *testing.T) {
	notBefore := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	notAfter := notBefore.Add(time.Hour)
	earliest := notAfter.Add(-time.Duration(0.51 * float64(time.Hour)))
	latest := notAfter.Add(-time.Duration(0.49 * float64(time.Hour)))
	seen := map[time.Time]bool{}
	for range 1000 {
		at := DefaultRotation.Time(notBefore, notAfter)
		require.False(t, at.Before(earliest), "rotation %s before %s", at, earliest)
		require.False(t, at.After(latest), "rotation %s after %s", at, latest)
		seen[at] = true
	}
	require.Greater(t, len(seen), 100, "jitter should spread rotation times")
}

func TestRotationValidate(t *testing.T) {
	tests := map[string]struct {
		rotation Rotation
		wantErr  string
	}{
		"negative jitter":    {rotation: Rotation{Ratio: 0.5, Jitter: -0.1}, wantErr: "jitter -0.1 is negative"},
		"ratio zero":         {rotation: Rotation{Ratio: 0}, wantErr: "must stay strictly between 0 and 1"},
		"ratio plus jitter":  {rotation: Rotation{Ratio: 0.95, Jitter: 0.1}, wantErr: "must stay strictly between 0 and 1"},
		"ratio minus jitter": {rotation: Rotation{Ratio: 0.05, Jitter: 0.1}, wantErr: "must stay strictly between 0 and 1"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			require.ErrorContains(t, tc.rotation.Validate(), tc.wantErr)
		})
	}
}

func TestRemaining(t *testing.T) {
	now := fixtureTime
	tests := map[string]struct {
		left time.Duration
		want string
	}{
		"days and hours":    {left: 50*time.Hour + 30*time.Minute, want: "2d2h"},
		"exact days":        {left: 72 * time.Hour, want: "3d"},
		"hours and minutes": {left: time.Hour + 30*time.Minute + 5*time.Second, want: "1h30m"},
		"minutes, seconds":  {left: 4*time.Minute + 10*time.Second, want: "4m10s"},
		"seconds":           {left: 12 * time.Second, want: "12s"},
		"expired":           {left: -time.Second, want: "expired"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, Remaining(now.Add(tc.left), now))
		})
	}
}
