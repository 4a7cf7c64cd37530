// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"os"
)

const (
	profileBound  = "bound"
	profileLegacy = "legacy"

	defaultIssuer = "https://kubernetes.default.svc.cluster.local"
)

type config struct {
	profile    string
	dir        string
	issuer     string
	removeDir  bool
	watchStdin bool
	// port is the API server's port; 0 picks a free one. A restart passes
	// the port it had, so that clients reach it where they did.
	port int
}

func (c config) validate() error {
	switch c.profile {
	case profileBound, profileLegacy:
	default:
		return fmt.Errorf("unknown --profile %q: use %q or %q", c.profile, profileBound, profileLegacy)
	}
	if c.dir == "" {
		return fmt.Errorf("--dir is required: pass an empty directory for keys, kubeconfig and etcd data, or the directory of a stopped cluster to start it again")
	}
	if st, err := os.Stat(c.dir); err != nil || !st.IsDir() {
		return fmt.Errorf("--dir %q is not a directory: create it first", c.dir)
	}
	if c.port < 0 || c.port > 65535 {
		return fmt.Errorf("--port %d is no TCP port: pass 0 for a free one", c.port)
	}
	if c.issuer == "" {
		return fmt.Errorf("--issuer must not be empty")
	}
	return nil
}

// readyLine is the JSON line printed on stdout once the cluster is usable.
// harness/localcluster parses it; keep the field names stable.
type readyLine struct {
	Profile    string `json:"profile"`
	Host       string `json:"host"`
	Kubeconfig string `json:"kubeconfig"`
	Issuer     string `json:"issuer"`
	PID        int    `json:"pid"`
	// UserToken authenticates as user alice, who is no service account.
	UserToken string `json:"userToken"`
	// SigningKey is the service-account signing key file, for tests that
	// mint tokens the API server trusts but would not issue (expired ones).
	SigningKey string `json:"signingKey"`
}
