// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build !unix

package agent

// checkSocketDir has nothing to check where Unix permissions do not apply.
func checkSocketDir(string) error { return nil }
