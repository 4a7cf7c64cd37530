// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build !linux

package local

import (
	"context"
	"errors"
)

// TryTakeOverSocket needs Linux's user and mount namespaces.
func (p *Provider) TryTakeOverSocket(context.Context, string) (string, error) {
	return "", errors.New("the hostile-workload check of the local provider needs Linux (user and mount namespaces)")
}
