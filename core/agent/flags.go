// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"fmt"
	"os"
	"strconv"

	"github.com/meshcert/kubectl-meshcert/core/pki"
)

// octalMode is a file mode flag written in octal, such as 0600.
type octalMode os.FileMode

func (m *octalMode) String() string { return fmt.Sprintf("%04o", uint32(*m)) }
func (m *octalMode) Type() string   { return "mode" }
func (m *octalMode) Set(s string) error {
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v&^0o777 != 0 {
		return fmt.Errorf("%q is not an octal permission mode such as 0600", s)
	}
	*m = octalMode(v)
	return nil
}

// keyAlgorithmValue is a key algorithm flag, checked when set.
type keyAlgorithmValue pki.KeyAlgorithm

func (k *keyAlgorithmValue) String() string { return string(*k) }
func (k *keyAlgorithmValue) Type() string   { return "algorithm" }
func (k *keyAlgorithmValue) Set(s string) error {
	alg, err := pki.ParseKeyAlgorithm(s)
	if err != nil {
		return err
	}
	*k = keyAlgorithmValue(alg)
	return nil
}
