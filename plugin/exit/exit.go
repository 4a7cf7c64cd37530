// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package exit carries exit codes other than 1 out of commands.
package exit

import "fmt"

// Error makes the process exit with Code, printing Err when it is set: 2 for
// `check --require` failing, 3 for `inspect --expiring-within` matching.
type Error struct {
	Code int
	Err  error
}

func (e Error) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit code %d", e.Code)
	}
	return e.Err.Error()
}

func (e Error) Unwrap() error { return e.Err }
