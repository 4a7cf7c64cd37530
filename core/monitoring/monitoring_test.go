// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package monitoring

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestBoundedField(t *testing.T) {
	tests := map[string]struct {
		in, want string
	}{
		"short stays":                 {in: "sidecar~10.0.0.1~web", want: "sidecar~10.0.0.1~web"},
		"at the bound stays":          {in: strings.Repeat("a", MaxField), want: strings.Repeat("a", MaxField)},
		"past the bound is cut":       {in: strings.Repeat("a", 1<<20), want: strings.Repeat("a", MaxField) + "…"},
		"a cut rune is not left half": {in: strings.Repeat("a", MaxField-1) + "é", want: strings.Repeat("a", MaxField-1) + "…"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := BoundedField(tc.in)
			require.Equal(t, tc.want, got)
			require.True(t, utf8.ValidString(got))
		})
	}
}
