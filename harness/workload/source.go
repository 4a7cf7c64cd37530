// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package workload is the demo workload the harness runs: it gets its
// certificate over SDS from the node agent (presenting its projected token)
// or from mounted files, serves mTLS, calls peers over mTLS checking their
// SPIFFE IDs, and counts what succeeded and failed.
package workload

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	secretv3 "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/meshcert/kubectl-meshcert/core/pki"
)

// Material is a key pair with its chain and the roots to trust.
type Material struct {
	Cert  tls.Certificate
	Leaf  *x509.Certificate
	Roots []*x509.Certificate
	// Path is where the material came from: sds (a node agent's stream) or
	// file-mount (a mounted key/cert Secret).
	Path string
}

// Where a workload's material comes from, as Status reports it.
const (
	PathSDS       = "sds"
	PathFileMount = "file-mount"
)

// Identity is the SPIFFE ID of the leaf.
func (m *Material) Identity() string {
	if m == nil || len(m.Leaf.URIs) == 0 {
		return ""
	}
	return m.Leaf.URIs[0].String()
}

// Source provides the workload's current material.
type Source interface {
	Current() *Material
	// LastError is the last reason material could not be had, if any.
	LastError() string
	Run(ctx context.Context)
}

type holder struct {
	material atomic.Pointer[Material]
	mu       sync.Mutex
	lastErr  string
	serials  map[string]bool
}

func (h *holder) Current() *Material { return h.material.Load() }

func (h *holder) LastError() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastErr
}

func (h *holder) setErr(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		h.lastErr = ""
		return
	}
	h.lastErr = err.Error()
}

// Certificates counts the distinct certificates the source has served.
func (h *holder) Certificates() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.serials)
}

func (h *holder) store(m *Material) {
	h.mu.Lock()
	if h.serials == nil {
		h.serials = map[string]bool{}
	}
	h.serials[pki.Serial(m.Leaf)] = true
	h.lastErr = ""
	h.mu.Unlock()
	h.material.Store(m)
}

func material(path string, keyPEM, chainPEM, rootsPEM []byte) (*Material, error) {
	cert, err := tls.X509KeyPair(chainPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, err
	}
	cert.Leaf = leaf
	roots, err := pki.DecodeCertificates(rootsPEM)
	if err != nil {
		return nil, err
	}
	return &Material{Cert: cert, Leaf: leaf, Roots: roots, Path: path}, nil
}

// The SDS resources a workload asks for, and their type, which Envoy names
// in every request. They are written here rather than taken from the agent's
// package, which would link client-go into the workload for two strings; a
// test holds them equal.
var (
	sdsResourceNames = []string{"default", "ROOTCA"}
	secretTypeURL    = "type.googleapis.com/" + string(proto.MessageName(&tlsv3.Secret{}))
)

// SDS gets material from a node agent, as Envoy does: one stream for
// "default" and "ROOTCA", the token read from its file at each connect,
// every response ACKed, and reconnects with backoff.
type SDS struct {
	holder
	Socket    string
	TokenFile string
	Node      string
}

// Run keeps a stream open until ctx ends.
func (s *SDS) Run(ctx context.Context) {
	delay := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.stream(ctx)
		if ctx.Err() != nil {
			return
		}
		s.setErr(err)
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = min(delay*2, 2*time.Second)
	}
}

func (s *SDS) stream(ctx context.Context) error {
	tok, err := os.ReadFile(s.TokenFile)
	if err != nil {
		return fmt.Errorf("read the projected token: %w", err)
	}
	conn, err := grpc.NewClient("unix://"+s.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+strings.TrimSpace(string(tok)))
	stream, err := secretv3.NewSecretDiscoveryServiceClient(conn).StreamSecrets(ctx)
	if err != nil {
		return err
	}
	names := sdsResourceNames
	node := &corev3.Node{Id: s.Node}
	if err := stream.Send(&discovery.DiscoveryRequest{Node: node, ResourceNames: names, TypeUrl: secretTypeURL}); err != nil {
		return err
	}
	var keyPEM, chainPEM, rootsPEM []byte
	for {
		resp, err := stream.Recv()
		if err != nil {
			return errors.New(status.Convert(err).Message())
		}
		for _, a := range resp.Resources {
			var secret tlsv3.Secret
			if err := a.UnmarshalTo(&secret); err != nil {
				return err
			}
			if tc := secret.GetTlsCertificate(); tc != nil {
				keyPEM, chainPEM = tc.GetPrivateKey().GetInlineBytes(), tc.GetCertificateChain().GetInlineBytes()
			}
			if vc := secret.GetValidationContext(); vc != nil {
				rootsPEM = vc.GetTrustedCa().GetInlineBytes()
			}
		}
		req := &discovery.DiscoveryRequest{Node: node, ResourceNames: names, TypeUrl: secretTypeURL, VersionInfo: resp.VersionInfo, ResponseNonce: resp.Nonce}
		if keyPEM != nil && rootsPEM != nil {
			m, err := material(PathSDS, keyPEM, chainPEM, rootsPEM)
			if err != nil {
				req.VersionInfo = ""
				req.ErrorDetail = status.New(codes.InvalidArgument, err.Error()).Proto()
			} else {
				s.store(m)
			}
		}
		if err := stream.Send(req); err != nil {
			return err
		}
	}
}

// Files gets material from a mounted key/cert Secret, polling it as the
// kubelet swaps its ..data symlink.
type Files struct {
	holder
	Dir string
}

// Run polls until ctx ends.
func (f *Files) Run(ctx context.Context) {
	var last string
	for ctx.Err() == nil {
		key, err1 := os.ReadFile(filepath.Join(f.Dir, "key.pem"))
		chain, err2 := os.ReadFile(filepath.Join(f.Dir, "cert-chain.pem"))
		roots, err3 := os.ReadFile(filepath.Join(f.Dir, "root-cert.pem"))
		if err := errors.Join(err1, err2, err3); err != nil {
			f.setErr(fmt.Errorf("the mounted certificate is not there yet: %w", err))
		} else if sum := string(key) + string(chain) + string(roots); sum != last {
			if m, err := material(PathFileMount, key, chain, roots); err != nil {
				f.setErr(err)
			} else {
				f.store(m)
				last = sum
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}
