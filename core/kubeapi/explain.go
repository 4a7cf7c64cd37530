// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package kubeapi holds the Kubernetes API operations that the plugin, the
// harness and core share: errors rewritten into what to do about them, and
// port-forwards to pods and Services.
package kubeapi

import (
	"errors"
	"fmt"
	"net"
	"net/url"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Explain rewrites common API errors into what to do about them. action
// says what was being done, such as "list pods".
func Explain(err error, action string) error {
	if err == nil {
		return nil
	}
	var urlErr *url.Error
	var netErr net.Error
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%s: forbidden by RBAC: %v (ask for the permission, or use a context that has it)", action, apierrors.ReasonForError(err))
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%s: the cluster did not accept your credentials: %w (refresh them, or pick another --context)", action, err)
	case errors.As(err, &urlErr), errors.As(err, &netErr):
		return fmt.Errorf("%s: cannot reach the cluster: %w (check --context and --server, and that the API server is up)", action, err)
	}
	return fmt.Errorf("%s: %w", action, err)
}
