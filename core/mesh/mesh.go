// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package mesh holds the names every part of the mesh agrees on: the
// certificate paths, the files a workload reads, the CA's name and port,
// and where the node agent's socket lives. Each is defined here once, so
// that the CA, the agent, install, the plugin and the harness cannot drift
// apart.
package mesh

import (
	"fmt"
	"strconv"
)

// Certificate paths: how a workload receives its certificate. They are
// install's modes, the paths check recommends and fleet reports.
const (
	// ModeSDS serves certificates over Envoy's Secret Discovery Service
	// from the node agent; it needs trustworthy (projected) tokens.
	ModeSDS = "sds"
	// ModeFileMount keeps a key/cert Secret per service account, which
	// pods mount; it works on every cluster.
	ModeFileMount = "file-mount"
	// ModeAuto picks ModeSDS where the cluster issues trustworthy tokens
	// and ModeFileMount elsewhere.
	ModeAuto = "auto"
)

// ResolveMode turns a requested mode into sds or file-mount. auto becomes
// sds when the cluster issues trustworthy tokens and file-mount otherwise;
// an explicit mode is kept as it is. An unknown mode is an error.
func ResolveMode(requested string, trustworthyJWT bool) (string, error) {
	switch requested {
	case ModeSDS, ModeFileMount:
		return requested, nil
	case ModeAuto, "":
		if trustworthyJWT {
			return ModeSDS, nil
		}
		return ModeFileMount, nil
	}
	return "", fmt.Errorf("unknown mode %q: use %s, %s or %s", requested, ModeAuto, ModeSDS, ModeFileMount)
}

// AnnotationMode on the CA's Deployment records the path install chose, so
// that check knows whether node agents belong on every node.
const AnnotationMode = "meshcert.io/mode"

// Files of a workload's certificate, in a mounted key/cert Secret, in the
// directory `issue` writes, and as keys of the CA's Secrets and root
// ConfigMap.
const (
	FilePrivateKey = "key.pem"
	FileCertChain  = "cert-chain.pem"
	FileRootCert   = "root-cert.pem"
)

// CertFiles lists the files of a workload's certificate in the order they
// are written: the key first, the root bundle last.
func CertFiles() []string { return []string{FilePrivateKey, FileCertChain, FileRootCert} }

// CertDir is where pods mount their key/cert Secret.
const CertDir = "/etc/certs"

// The mesh's components and where they listen.
const (
	// DefaultNamespace is where install puts the CA and the agent.
	DefaultNamespace = "meshcert-system"
	// CAName names the CA's Deployment, Service and ServiceAccount.
	CAName = "meshcert-ca"
	// AgentName names the node agent's DaemonSet and ServiceAccount.
	AgentName = "meshcert-agent"
	// CAPort serves Istio's CSR API over TLS.
	CAPort = 15012
	// CAMonitoringPort serves the CA's metrics and health.
	CAMonitoringPort = 15014
	// AgentMonitoringPort serves the agent's metrics and health.
	AgentMonitoringPort = 15020
	// SocketDir is the host directory that holds the agent's SDS socket.
	SocketDir = "/var/run/meshcert"
	// SocketPath is the agent's SDS socket.
	SocketPath = SocketDir + "/sds.sock"
)

// CAServiceName is the DNS name of the CA Service in namespace, the name
// its serving certificate carries.
func CAServiceName(namespace string) string { return CAName + "." + namespace + ".svc" }

// CAAddress is the in-cluster address of the CA in namespace.
func CAAddress(namespace string) string {
	return CAServiceName(namespace) + ":" + strconv.Itoa(CAPort)
}

// Field managers: who wrote a field, in server-side apply and patches.
const (
	// FieldManager is kubectl-meshcert's.
	FieldManager = "kubectl-meshcert"
	// AgentFieldManager is the node agent's.
	AgentFieldManager = "meshcert-agent"
)
