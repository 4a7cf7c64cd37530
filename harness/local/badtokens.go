// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package local

import (
	"context"
	"os"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshcert/kubectl-meshcert/harness/badtoken"
)

// badToken writes a token the mesh must refuse, each for its own reason.
func (p *Provider) badToken(ctx context.Context, pod *corev1.Pod, kind, file string) error {
	minter := &badtoken.Minter{
		Client: p.cluster.Client, Issuer: p.cluster.Issuer, Audience: Audience,
		SigningKey: func(context.Context) ([]byte, error) { return os.ReadFile(p.cluster.SigningKeyFile) },
	}
	tok, err := minter.Mint(ctx, pod, kind)
	if err != nil {
		return err
	}
	return WriteAtomically(file, []byte(tok))
}
