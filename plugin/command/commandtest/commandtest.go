// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package commandtest runs the table tests of the commands' Validate
// methods, which need no cluster.
package commandtest

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Case is one row: options to validate, and the error they must give
// (empty: none).
type Case struct {
	Options interface{ Validate() error }
	WantErr string
}

// RunValidate validates every case as a subtest.
func RunValidate(t *testing.T, cases map[string]Case) {
	t.Helper()
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := tc.Options.Validate()
			if tc.WantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.WantErr)
		})
	}
}
