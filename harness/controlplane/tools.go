// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build tools

package main

// kubectl is built from this module (make kubectl) for the krew test, which
// runs `kubectl meshcert` through kubectl's own plugin lookup.
import _ "k8s.io/kubectl/pkg/cmd"
