// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package token

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func craft(t testing.TB, header, payload any) string {
	t.Helper()
	enc := func(v any) string {
		if s, ok := v.(string); ok {
			return base64.RawURLEncoding.EncodeToString([]byte(s))
		}
		data, err := json.Marshal(v)
		require.NoError(t, err)
		return base64.RawURLEncoding.EncodeToString(data)
	}
	return enc(header) + "." + enc(payload) + "." + base64.RawURLEncoding.EncodeToString([]byte("signature"))
}

var rs256 = map[string]any{"alg": "RS256", "kid": "key-1"}

func projected(exp time.Time, aud ...string) map[string]any {
	return map[string]any{
		"iss": "https://kubernetes.default.svc.cluster.local",
		"sub": "system:serviceaccount:shop:cart",
		"aud": aud,
		"exp": exp.Unix(),
		"iat": exp.Add(-time.Hour).Unix(),
		"nbf": exp.Add(-time.Hour).Unix(),
		"kubernetes.io": map[string]any{
			"namespace":      "shop",
			"serviceaccount": map[string]any{"name": "cart", "uid": "sa-uid"},
			"pod":            map[string]any{"name": "cart-7d9", "uid": "pod-uid"},
			"node":           map[string]any{"name": "node-1", "uid": "node-uid"},
		},
	}
}

func legacy() map[string]any {
	return map[string]any{
		"iss":                                    LegacyIssuer,
		"sub":                                    "system:serviceaccount:shop:cart",
		"kubernetes.io/serviceaccount/namespace": "shop",
		"kubernetes.io/serviceaccount/secret.name":          "cart-token-x1",
		"kubernetes.io/serviceaccount/service-account.name": "cart",
		"kubernetes.io/serviceaccount/service-account.uid":  "sa-uid",
	}
}

func TestDecode(t *testing.T) {
	tok := craft(t, rs256, projected(now.Add(time.Hour), "istio-ca"))
	for name, raw := range map[string]string{
		"plain":         tok,
		"bearer prefix": "Bearer " + tok,
		"trailing line": tok + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			c, err := Decode(raw)
			require.NoError(t, err)
			require.Equal(t, "RS256", c.Algorithm)
			require.Equal(t, "key-1", c.KeyID)
			require.Equal(t, []string{"istio-ca"}, c.Audiences)
			require.Equal(t, now.Add(time.Hour), c.Expiry)
			require.Equal(t, "shop", c.Namespace)
			require.Equal(t, "cart", c.ServiceAccount)
			require.Equal(t, "cart-7d9", c.Pod)
			require.Equal(t, "pod-uid", c.PodUID)
			require.Equal(t, "node-1", c.Node)
		})
	}
}

func TestDecodeLegacyClaims(t *testing.T) {
	c, err := Decode(craft(t, rs256, legacy()))
	require.NoError(t, err)
	require.Equal(t, "shop", c.Namespace)
	require.Equal(t, "cart", c.ServiceAccount)
	require.Equal(t, "cart-token-x1", c.SecretName)
	require.False(t, c.HasAudienceClaim)
	require.False(t, c.HasExpirationClaim)
}

func TestDecodeMalformed(t *testing.T) {
	good := craft(t, rs256, projected(now, "a"))
	parts := strings.Split(good, ".")
	tests := map[string]struct {
		raw     string
		wantErr string
	}{
		"empty":                 {raw: "   ", wantErr: "the token is empty"},
		"one segment":           {raw: "abc", wantErr: "has 1"},
		"two segments":          {raw: parts[0] + "." + parts[1], wantErr: "has 2"},
		"four segments":         {raw: good + ".x", wantErr: "has 4"},
		"header not base64":     {raw: "%%%." + parts[1] + "." + parts[2], wantErr: "header segment is not base64url"},
		"payload not base64":    {raw: parts[0] + ".***." + parts[2], wantErr: "payload segment is not base64url"},
		"signature not base64":  {raw: parts[0] + "." + parts[1] + ".!!", wantErr: "signature segment is not base64url"},
		"empty signature":       {raw: parts[0] + "." + parts[1] + ".", wantErr: "signature segment is empty"},
		"header not JSON":       {raw: craft(t, "not json", projected(now, "a")), wantErr: "header segment is not a JSON object"},
		"payload not JSON":      {raw: craft(t, rs256, "[1,2"), wantErr: "payload segment is not a JSON object"},
		"alg none":              {raw: craft(t, map[string]any{"alg": "none"}, projected(now, "a")), wantErr: `alg "none"`},
		"alg None mixed case":   {raw: craft(t, map[string]any{"alg": "None"}, projected(now, "a")), wantErr: `alg "none"`},
		"no alg":                {raw: craft(t, map[string]any{"typ": "JWT"}, projected(now, "a")), wantErr: "no alg"},
		"aud wrong type":        {raw: craft(t, rs256, map[string]any{"aud": 7}), wantErr: "aud is neither"},
		"exp not a number":      {raw: craft(t, rs256, map[string]any{"exp": "tomorrow"}), wantErr: "payload segment is not a JSON object"},
		"exp out of range":      {raw: craft(t, rs256, map[string]any{"exp": 1e300}), wantErr: "exp is out of range"},
		"oversized":             {raw: strings.Repeat("a", MaxSize+1), wantErr: "more than the 16384-byte limit"},
		"kubeconfig, not a JWT": {raw: "apiVersion: v1\nkind: Config", wantErr: "has 1"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := Decode(tc.raw)
			require.Nil(t, c)
			require.ErrorIs(t, err, ErrMalformed)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestClassify(t *testing.T) {
	unbound := projected(now.Add(time.Hour), "istio-ca")
	delete(unbound["kubernetes.io"].(map[string]any), "pod")
	noSA := projected(now.Add(time.Hour), "istio-ca")
	noSA["sub"] = "alice"
	delete(noSA, "kubernetes.io")
	audString := projected(now.Add(time.Hour))
	audString["aud"] = "istio-ca"

	tests := map[string]struct {
		payload         map[string]any
		expect          string
		wantTrustworthy bool
		wantUsable      bool
		wantCodes       []Code
		wantErr         []string
	}{
		"pod-bound projected token": {
			payload: projected(now.Add(time.Hour), "istio-ca"), expect: "istio-ca",
			wantTrustworthy: true, wantUsable: true, wantCodes: []Code{BoundToPod},
		},
		"TokenRequest token without a pod is still trustworthy": {
			payload: unbound, expect: "istio-ca",
			wantTrustworthy: true, wantUsable: true, wantCodes: []Code{NotBoundToPod},
		},
		"aud as a single string": {
			payload: audString, expect: "istio-ca",
			wantTrustworthy: true, wantUsable: true, wantCodes: []Code{BoundToPod},
		},
		"legacy secret token": {
			payload: legacy(), expect: "istio-ca",
			wantCodes: []Code{MissingAudience, MissingExpiry, LegacyIssuerFound, LegacySecretSource},
			wantErr:   []string{"no aud claim", "no exp claim", `issuer is "kubernetes/serviceaccount"`, "TokenRequest", "file-mount path"},
		},
		"claims named in another case are not the claims": {
			// The API server's JWT library matches claim names exactly.
			payload: func() map[string]any {
				p := legacy()
				p["AUD"], p["Exp"] = []string{"istio-ca"}, now.Add(time.Hour).Unix()
				return p
			}(), expect: "istio-ca",
			wantCodes: []Code{MissingAudience, MissingExpiry, LegacyIssuerFound, LegacySecretSource},
			wantErr:   []string{"no aud claim", "no exp claim"},
		},
		"audience without expiry": {
			payload:   func() map[string]any { p := projected(now, "istio-ca"); delete(p, "exp"); return p }(),
			wantCodes: []Code{MissingExpiry, BoundToPod},
			wantErr:   []string{"no exp claim", "file-mount path"},
		},
		"expired": {
			payload: projected(now.Add(-time.Minute), "istio-ca"), expect: "istio-ca",
			wantTrustworthy: true, wantCodes: []Code{Expired, BoundToPod},
			wantErr: []string{"expired at 2026-11-26T11:59:00Z (1m0s ago)"},
		},
		"not yet valid": {
			payload: func() map[string]any {
				p := projected(now.Add(2*time.Hour), "a")
				p["nbf"] = now.Add(time.Hour).Unix()
				return p
			}(),
			wantTrustworthy: true, wantCodes: []Code{NotYetValid, BoundToPod},
			wantErr: []string{"not valid before"},
		},
		"wrong audience": {
			payload: projected(now.Add(time.Hour), "https://kubernetes.default.svc"), expect: "istio-ca",
			wantTrustworthy: true, wantCodes: []Code{AudienceMismatch, BoundToPod},
			wantErr: []string{`audience "istio-ca" is not among the token's audiences [https://kubernetes.default.svc]`},
		},
		"not a service account": {
			payload: noSA, expect: "istio-ca",
			wantTrustworthy: true, wantCodes: []Code{NotServiceAccount, NotBoundToPod},
			wantErr: []string{`names no service account (subject "alice")`},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := Decode(craft(t, rs256, tc.payload))
			require.NoError(t, err)
			a := Classify(c, Options{ExpectedAudience: tc.expect, Now: now})
			require.Equal(t, tc.wantTrustworthy, a.Trustworthy)
			require.Equal(t, tc.wantUsable, a.Usable)
			var codes []Code
			for _, f := range a.Findings {
				codes = append(codes, f.Code)
			}
			require.ElementsMatch(t, tc.wantCodes, codes)
			if tc.wantUsable {
				require.NoError(t, a.Err())
				return
			}
			err = a.Err()
			require.Error(t, err)
			if tc.wantTrustworthy {
				require.ErrorIs(t, err, ErrUnusable)
			} else {
				require.ErrorIs(t, err, ErrNotTrustworthy)
			}
			for _, want := range tc.wantErr {
				require.ErrorContains(t, err, want)
			}
		})
	}
}

func TestSplitServiceAccountUsername(t *testing.T) {
	tests := map[string]struct {
		in     string
		ns, sa string
		ok     bool
	}{
		"service account":   {in: "system:serviceaccount:shop:cart", ns: "shop", sa: "cart", ok: true},
		"user":              {in: "alice"},
		"missing name":      {in: "system:serviceaccount:shop:"},
		"missing separator": {in: "system:serviceaccount:shop"},
		"extra colon":       {in: "system:serviceaccount:shop:cart:x"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ns, sa, ok := SplitServiceAccountUsername(tc.in)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.ns, ns)
			require.Equal(t, tc.sa, sa)
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(craft(f, rs256, projected(now, "istio-ca")))
	f.Add(craft(f, rs256, legacy()))
	f.Add("a.b.c")
	f.Add("Bearer ..")
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := Decode(raw)
		if err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			require.Nil(t, c)
			return
		}
		a := Classify(c, Options{ExpectedAudience: "istio-ca", Now: now})
		if !a.Usable {
			require.Error(t, a.Err())
		}
	})
}

// BenchmarkDecode decodes a projected token as the CA does for every call
// the review cache does not answer.
func BenchmarkDecode(b *testing.B) {
	raw := craft(b, rs256, projected(now.Add(time.Hour), "istio-ca"))
	for b.Loop() {
		if _, err := Decode(raw); err != nil {
			b.Fatal(err)
		}
	}
}
