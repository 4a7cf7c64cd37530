// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package caclient calls the mesh CA over Istio's CSR API
// (istio.v1.auth.IstioCertificateService), verifying the CA's serving
// certificate against a root bundle that may change at any handshake. The
// node agent and `kubectl meshcert issue` both use it; it links no SDS code.
package caclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	pb "istio.io/api/security/v1alpha1"

	"github.com/meshcert/kubectl-meshcert/core/pki"
)

// Client calls the mesh CA over Istio's CSR API.
type Client interface {
	// CreateCertificate sends csrPEM with token and returns the chain, leaf
	// first and root last.
	CreateCertificate(ctx context.Context, token string, csrPEM []byte, ttl time.Duration) ([]*x509.Certificate, error)
	Close() error
}

type grpcCAClient struct {
	conn   *grpc.ClientConn
	client pb.IstioCertificateServiceClient
}

// RootSource returns the roots to verify the CA with, read afresh at every
// handshake.
type RootSource func() ([]*x509.Certificate, error)

// StaticRoots is a RootSource that never changes.
func StaticRoots(roots []*x509.Certificate) RootSource {
	return func() ([]*x509.Certificate, error) { return roots, nil }
}

// Dial connects to the CA at address, verifying that its serving
// certificate carries serverName and chains to the roots.
func Dial(address, serverName string, roots RootSource) (Client, error) {
	tlsConfig := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The roots can change under us (root rotation); verify against the
		// current file at every handshake instead of a pool fixed at dial.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			bundle, err := roots()
			if err != nil {
				return err
			}
			pool := x509.NewCertPool()
			for _, r := range bundle {
				pool.AddCert(r)
			}
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the CA presented no certificate")
			}
			intermediates := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				intermediates.AddCert(c)
			}
			_, err = cs.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: serverName, Roots: pool, Intermediates: intermediates})
			if err != nil {
				return fmt.Errorf("the CA's serving certificate does not verify against the root bundle: %w", err)
			}
			return nil
		},
	}
	conn, err := grpc.NewClient(address, grpc.WithTransportCredentials(credentials.NewTLS(tlsConfig)))
	if err != nil {
		return nil, fmt.Errorf("CA address %q: %w", address, err)
	}
	return &grpcCAClient{conn: conn, client: pb.NewIstioCertificateServiceClient(conn)}, nil
}

func (c *grpcCAClient) CreateCertificate(ctx context.Context, token string, csrPEM []byte, ttl time.Duration) ([]*x509.Certificate, error) {
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	resp, err := c.client.CreateCertificate(ctx, &pb.IstioCertificateRequest{Csr: string(csrPEM), ValidityDuration: int64(ttl / time.Second)})
	if status.Code(err) == codes.Unavailable {
		// The caller's retry schedule, bounded by the certificate's remaining
		// lifetime, decides when to try again; gRPC's own reconnect backoff
		// (up to two minutes) must not delay the attempt after a CA outage.
		c.conn.ResetConnectBackoff()
	}
	if err != nil {
		return nil, err
	}
	var chain []*x509.Certificate
	for _, p := range resp.GetCertChain() {
		certs, err := pki.DecodeCertificates([]byte(p))
		if err != nil {
			return nil, fmt.Errorf("the CA answered with a bad chain: %w", err)
		}
		chain = append(chain, certs...)
	}
	if len(chain) < 2 {
		return nil, fmt.Errorf("the CA answered with %d certificates, want a leaf and its root", len(chain))
	}
	return chain, nil
}

func (c *grpcCAClient) Close() error { return c.conn.Close() }
