// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	secretv3 "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/meshcert/kubectl-meshcert/core/pki"
)

// InspectReport is what an agent serves one workload. It never holds a
// private key. Field names are stable JSON.
type InspectReport struct {
	Socket    string           `json:"socket"`
	Identity  string           `json:"identity,omitempty"`
	Resources []ResourceReport `json:"resources"`
}

// ResourceReport describes one SDS resource.
type ResourceReport struct {
	Name             string    `json:"name"`
	Type             string    `json:"type"`
	SPIFFEID         string    `json:"spiffeID,omitempty"`
	Serial           string    `json:"serial,omitempty"`
	NotBefore        time.Time `json:"notBefore,omitzero"`
	NotAfter         time.Time `json:"notAfter,omitzero"`
	RotationDue      time.Time `json:"rotationDue,omitzero"`
	KeyType          string    `json:"keyType,omitempty"`
	ChainsToRoot     string    `json:"chainsToRoot,omitempty"`
	VerifyError      string    `json:"verifyError,omitempty"`
	RootFingerprints []string  `json:"rootFingerprints,omitempty"`
}

// InspectOptions say which agent to ask and as whom.
type InspectOptions struct {
	SocketPath string
	// TokenFile holds the workload token to present; empty for sidecar and
	// file-mount agents, which need none.
	TokenFile string
	Timeout   time.Duration
}

// Inspect asks the agent on opts.SocketPath for "default" and "ROOTCA", as
// Envoy would, and reports what it serves.
func Inspect(ctx context.Context, opts InspectOptions) (*InspectReport, error) {
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	if opts.TokenFile != "" {
		data, err := os.ReadFile(opts.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("read --token-file: %w", err)
		}
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+strings.TrimSpace(string(data)))
	}
	if _, err := os.Stat(opts.SocketPath); err != nil {
		return nil, fmt.Errorf("no agent socket at %s: %w (is the agent running, and is --sds-socket right?)", opts.SocketPath, err)
	}
	conn, err := grpc.NewClient("unix://"+opts.SocketPath, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var header metadata.MD
	resp, err := secretv3.NewSecretDiscoveryServiceClient(conn).FetchSecrets(ctx, &discovery.DiscoveryRequest{
		Node:          &corev3.Node{Id: "meshcert-inspect"},
		ResourceNames: []string{ResourceDefault, ResourceRootCA},
		TypeUrl:       SecretTypeURL,
	}, grpc.Header(&header))
	if err != nil {
		return nil, fmt.Errorf("the agent refused: %s", status.Convert(err).Message())
	}
	report := &InspectReport{Socket: opts.SocketPath}
	if v := header.Get(HeaderIdentity); len(v) > 0 {
		report.Identity = v[0]
	}
	var due time.Time
	if v := header.Get(HeaderRotationDue); len(v) > 0 {
		due, _ = time.Parse(time.RFC3339Nano, v[0])
	}

	var chain, roots []*x509.Certificate
	for _, a := range resp.GetResources() {
		var secret tlsv3.Secret
		if err := a.UnmarshalTo(&secret); err != nil {
			return nil, fmt.Errorf("the agent sent a resource that is not a Secret: %w", err)
		}
		switch {
		case secret.GetTlsCertificate() != nil:
			if chain, err = pki.DecodeCertificates(secret.GetTlsCertificate().GetCertificateChain().GetInlineBytes()); err != nil {
				return nil, fmt.Errorf("%s: %w", secret.GetName(), err)
			}
			leaf := chain[0]
			r := ResourceReport{Name: secret.GetName(), Type: "tls_certificate", Serial: pki.Serial(leaf),
				NotBefore: leaf.NotBefore.UTC(), NotAfter: leaf.NotAfter.UTC(), RotationDue: due, KeyType: pki.KeyType(leaf.PublicKey)}
			if len(leaf.URIs) > 0 {
				r.SPIFFEID = leaf.URIs[0].String()
			}
			report.Resources = append(report.Resources, r)
		case secret.GetValidationContext() != nil:
			if roots, err = pki.DecodeCertificates(secret.GetValidationContext().GetTrustedCa().GetInlineBytes()); err != nil {
				return nil, fmt.Errorf("%s: %w", secret.GetName(), err)
			}
			r := ResourceReport{Name: secret.GetName(), Type: "validation_context"}
			for _, root := range roots {
				r.RootFingerprints = append(r.RootFingerprints, pki.Fingerprint(root))
			}
			report.Resources = append(report.Resources, r)
		}
	}
	if i := indexOf(report.Resources, ResourceDefault); i >= 0 && roots != nil {
		if root, err := pki.Verify(chain, roots, time.Now()); err != nil {
			report.Resources[i].VerifyError = err.Error()
		} else {
			report.Resources[i].ChainsToRoot = pki.Fingerprint(root)
		}
	}
	return report, nil
}

func indexOf(resources []ResourceReport, name string) int {
	for i, r := range resources {
		if r.Name == name {
			return i
		}
	}
	return -1
}
