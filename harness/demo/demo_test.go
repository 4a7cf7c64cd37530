// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package demo

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meshcert/kubectl-meshcert/core/token"
	"github.com/meshcert/kubectl-meshcert/harness/localcluster"
)

func TestRun(t *testing.T) {
	var out bytes.Buffer
	results, err := Run(t.Context(), Options{Out: &out})
	require.NoError(t, err)
	require.Len(t, results, 2)

	bound, legacy := results[0], results[1]
	require.Equal(t, localcluster.ProfileBound, bound.Profile)
	require.Equal(t, "sds", bound.RecommendPath)
	require.True(t, bound.Assessment.Usable)
	require.Equal(t, "spiffe://cluster.local/ns/demo/sa/productpage", bound.Identity.String())

	require.Equal(t, localcluster.ProfileLegacy, legacy.Profile)
	require.Equal(t, "404 Not Found", legacy.TokenRequest)
	require.Equal(t, "file-mount", legacy.RecommendPath)
	require.False(t, legacy.Assessment.Trustworthy)
	require.True(t, legacy.Assessment.Has(token.LegacyIssuerFound))
	require.Equal(t, "system:serviceaccount:demo:productpage", legacy.ReviewedUser)

	require.Contains(t, out.String(), "== profile bound")
	require.Contains(t, out.String(), "== profile legacy")
	require.Regexp(t, `BLOCKING\s+MissingAudience: no aud claim`, out.String())
}
