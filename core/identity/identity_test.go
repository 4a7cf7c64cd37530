// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package identity

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseValid(t *testing.T) {
	tests := map[string]struct {
		in   string
		want ID
	}{
		"default trust domain": {
			in:   "spiffe://cluster.local/ns/default/sa/default",
			want: ID{TrustDomain: "cluster.local", Namespace: "default", ServiceAccount: "default"},
		},
		"service account with dots": {
			in:   "spiffe://example.org/ns/payments/sa/api.v2",
			want: ID{TrustDomain: "example.org", Namespace: "payments", ServiceAccount: "api.v2"},
		},
		"trust domain with underscore and dash": {
			in:   "spiffe://my_mesh-1/ns/a/sa/b",
			want: ID{TrustDomain: "my_mesh-1", Namespace: "a", ServiceAccount: "b"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Parse(tc.in)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.in, got.String())
			require.Equal(t, tc.in, got.URL().String())

			again, err := FromURL(got.URL())
			require.NoError(t, err)
			require.Equal(t, got, again)
		})
	}
}

func TestParseInvalid(t *testing.T) {
	tests := map[string]struct {
		in      string
		wantErr string
	}{
		"empty":                     {in: "", wantErr: "empty SPIFFE ID"},
		"wrong scheme":              {in: "https://cluster.local/ns/a/sa/b", wantErr: "does not start with spiffe://"},
		"upper-case scheme":         {in: "SPIFFE://cluster.local/ns/a/sa/b", wantErr: "does not start with spiffe://"},
		"missing trust domain":      {in: "spiffe:///ns/a/sa/b", wantErr: "trust domain is missing"},
		"upper-case trust domain":   {in: "spiffe://Cluster.local/ns/a/sa/b", wantErr: "trust domain characters are limited"},
		"port in trust domain":      {in: "spiffe://cluster.local:8080/ns/a/sa/b", wantErr: "trust domain characters are limited"},
		"user info":                 {in: "spiffe://user@cluster.local/ns/a/sa/b", wantErr: "trust domain characters are limited"},
		"query":                     {in: "spiffe://cluster.local/ns/a/sa/b?x=1", wantErr: "path segment characters are limited"},
		"fragment":                  {in: "spiffe://cluster.local/ns/a/sa/b#frag", wantErr: "path segment characters are limited"},
		"no path":                   {in: "spiffe://cluster.local", wantErr: `has path "": expected /ns/<namespace>/sa/<service-account>`},
		"trailing slash":            {in: "spiffe://cluster.local/ns/a/sa/b/", wantErr: "path cannot have a trailing slash"},
		"empty segment":             {in: "spiffe://cluster.local/ns//sa/b", wantErr: "path cannot contain empty segments"},
		"dot segment":               {in: "spiffe://cluster.local/ns/./sa/b", wantErr: "path cannot contain dot segments"},
		"wrong keywords":            {in: "spiffe://cluster.local/namespace/a/serviceaccount/b", wantErr: "expected /ns/<namespace>/sa/<service-account>"},
		"swapped keywords":          {in: "spiffe://cluster.local/sa/b/ns/a", wantErr: "expected /ns/<namespace>/sa/<service-account>"},
		"extra segment":             {in: "spiffe://cluster.local/ns/a/sa/b/c", wantErr: "expected /ns/<namespace>/sa/<service-account>"},
		"upper-case namespace":      {in: "spiffe://cluster.local/ns/Default/sa/b", wantErr: `namespace "Default": a lowercase RFC 1123 label`},
		"namespace with dot":        {in: "spiffe://cluster.local/ns/a.b/sa/c", wantErr: `namespace "a.b": must not contain dots`},
		"namespace too long":        {in: "spiffe://cluster.local/ns/" + strings.Repeat("a", 64) + "/sa/b", wantErr: "must be no more than 63 characters"},
		"service account leading -": {in: "spiffe://cluster.local/ns/a/sa/-b", wantErr: `service account "-b": a lowercase RFC 1123 subdomain`},
		"service account underscore": {in: "spiffe://cluster.local/ns/a/sa/my_sa",
			wantErr: `service account "my_sa": a lowercase RFC 1123 subdomain`},
		"percent-encoded segment": {in: "spiffe://cluster.local/ns/a/sa/b%20c", wantErr: "path segment characters are limited"},
	}
	require.GreaterOrEqual(t, len(tests), 15)
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(tc.in)
			require.ErrorIs(t, err, ErrInvalid)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestNew(t *testing.T) {
	tests := map[string]struct {
		td, ns, sa string
		wantErr    string
	}{
		"valid":                  {td: "cluster.local", ns: "default", sa: "bookinfo-productpage"},
		"empty trust domain":     {td: "", ns: "a", sa: "b", wantErr: "empty trust domain"},
		"trust domain with path": {td: "cluster.local/x", ns: "a", sa: "b", wantErr: "trust domain characters are limited"},
		"trust domain too long":  {td: strings.Repeat("a", 256), ns: "a", sa: "b", wantErr: "the SPIFFE limit is 255"},
		"empty namespace":        {td: "cluster.local", ns: "", sa: "b", wantErr: "empty namespace"},
		"empty service account":  {td: "cluster.local", ns: "a", sa: "", wantErr: "empty service account name"},
		"service account too long": {td: "cluster.local", ns: "a", sa: strings.Repeat("a", 254),
			wantErr: "must be no more than 253 characters"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			id, err := New(tc.td, tc.ns, tc.sa)
			if tc.wantErr != "" {
				require.ErrorIs(t, err, ErrInvalid)
				require.ErrorContains(t, err, tc.wantErr)
				require.True(t, id.IsZero())
				return
			}
			require.NoError(t, err)
			require.Equal(t, "spiffe://"+tc.td+"/ns/"+tc.ns+"/sa/"+tc.sa, id.String())
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"spiffe://cluster.local/ns/default/sa/default",
		"spiffe://td/ns/a/sa/b/c",
		"spiffe://%41/ns/a/sa/b",
		"spiffe://cluster.local/ns/../sa/b",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := Parse(s)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalid)
			return
		}
		// Whatever parses must print back to itself and parse again unchanged.
		require.Equal(t, s, id.String())
		again, err := Parse(id.String())
		require.NoError(t, err)
		require.Equal(t, id, again)
	})
}
