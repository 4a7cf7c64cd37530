// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	secretv3 "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"
	pb "istio.io/api/security/v1alpha1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	authenticationclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshcert/kubectl-meshcert/core/ca"
	"github.com/meshcert/kubectl-meshcert/core/pki"
	"github.com/meshcert/kubectl-meshcert/core/token"
	"github.com/meshcert/kubectl-meshcert/harness/local"
)

// The floor servers do only what no CA or SDS server can skip, so that the
// report can say how far any implementation could go on this machine: a
// ratio to Istio's beyond the floor's is out of anyone's reach here.
const (
	ReviewFloor = "floor: a TokenReview, then parse, check and sign"
	SDSFloor    = "floor: one Secret sent to every stream"
)

// servingChain returns a certificate for localhost under a fresh root, and
// the root.
func servingChain() (tls.Certificate, []byte, error) {
	now := time.Now()
	rootKey, root, err := ca.NewSelfSignedRoot("meshcert-bench-floor", now)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	authority, err := ca.NewAuthority(rootKey, []*x509.Certificate{root}, []*x509.Certificate{root}, nil)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	key, err := pki.GenerateKey(pki.ECDSAP256)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	chain, err := authority.SignServing(key.Public(), []string{"localhost"}, nil, 24*time.Hour)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	keyPEM, err := pki.EncodePrivateKey(key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	cert, err := tls.X509KeyPair(pki.EncodeCertificates(chain...), keyPEM)
	return cert, pki.EncodeCertificates(root), err
}

// reviewFloor answers CreateCertificate after a TokenReview of the caller's
// token with the signing floor's work: it parses the CSR, checks its
// signature, and signs, and checks nothing else.
type reviewFloor struct {
	pb.UnimplementedIstioCertificateServiceServer
	reviews authenticationclient.TokenReviewInterface
	signer  *floorSigner
}

func (f *reviewFloor) CreateCertificate(ctx context.Context, req *pb.IstioCertificateRequest) (*pb.IstioCertificateResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	var bearer string
	for _, v := range md.Get("authorization") {
		bearer, _ = strings.CutPrefix(v, "Bearer ")
	}
	if bearer == "" {
		return nil, status.Error(codes.Unauthenticated, "no bearer token")
	}
	review, err := f.reviews.Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: bearer, Audiences: []string{token.DefaultAudience}},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "TokenReview: %v", err)
	}
	if !review.Status.Authenticated {
		return nil, status.Errorf(codes.Unauthenticated, "the API server did not authenticate the token: %s", review.Status.Error)
	}
	block, _ := pem.Decode([]byte(req.GetCsr()))
	if block == nil {
		return nil, status.Error(codes.InvalidArgument, "no PEM block in the CSR")
	}
	der, err := f.signer.sign(block.Bytes)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "sign: %v", err)
	}
	leaf := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return &pb.IstioCertificateResponse{CertChain: []string{string(leaf), string(pki.EncodeCertificates(f.signer.root))}}, nil
}

// ServeReviewFloor serves the review floor on listen until ctx ends,
// reviewing tokens with the kubeconfig's credentials as meshcert's CA does
// (protobuf, no client-side limit). Once it listens it writes its serving
// root to rootOut.
func ServeReviewFloor(ctx context.Context, listen, kubeconfig, rootOut string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	cfg.ContentType, cfg.AcceptContentTypes = runtime.ContentTypeProtobuf, runtime.ContentTypeProtobuf
	cfg.QPS, cfg.Burst = -1, 0
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	cert, rootPEM, err := servingChain()
	if err != nil {
		return err
	}
	signer, err := newFloorSigner(pki.ECDSAP256)
	if err != nil {
		return err
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})))
	pb.RegisterIstioCertificateServiceServer(srv, &reviewFloor{reviews: client.AuthenticationV1().TokenReviews(),
		signer: signer})
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	// Renamed into place: the harness reads the file as soon as it exists.
	if err := local.WriteAtomically(rootOut, rootPEM); err != nil {
		return err
	}
	return serveUntil(ctx, srv, ln)
}

func serveUntil(ctx context.Context, srv *grpc.Server, ln net.Listener) error {
	go func() {
		<-ctx.Done()
		srv.Stop()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

// sdsFloor sends every stream the same Secret, and every interval a new
// version of it to all at once.
type sdsFloor struct {
	secretv3.UnimplementedSecretDiscoveryServiceServer
	mu       sync.Mutex // guards everything below and serialises sends
	streams  map[secretv3.SecretDiscoveryService_StreamSecretsServer]struct{}
	response *discovery.DiscoveryResponse
	secret   *anypb.Any
	version  int
}

func (f *sdsFloor) StreamSecrets(stream secretv3.SecretDiscoveryService_StreamSecretsServer) error {
	defer func() {
		f.mu.Lock()
		delete(f.streams, stream)
		f.mu.Unlock()
	}()
	for {
		req, err := stream.Recv()
		if err != nil {
			return nil
		}
		if req.GetResponseNonce() != "" {
			continue // an ACK
		}
		f.mu.Lock()
		f.streams[stream] = struct{}{}
		err = stream.Send(f.response)
		f.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

func (f *sdsFloor) push() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.version++
	v := strconv.Itoa(f.version)
	f.response = &discovery.DiscoveryResponse{VersionInfo: v, Nonce: v, TypeUrl: secretTypeURL, Resources: []*anypb.Any{f.secret}}
	for stream := range f.streams {
		_ = stream.Send(f.response)
	}
}

// ServeSDSFloor serves the SDS floor on the Unix socket until ctx ends: a
// "default" Secret of an ECDSA P-256 key and its certificate, pushed anew to
// every stream each interval.
func ServeSDSFloor(ctx context.Context, socket string, interval time.Duration) error {
	cert, _, err := servingChain()
	if err != nil {
		return err
	}
	keyPEM, err := pki.EncodePrivateKey(cert.PrivateKey.(crypto.Signer))
	if err != nil {
		return err
	}
	secret, err := anypb.New(&tlsv3.Secret{Name: "default", Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
		CertificateChain: &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: pki.EncodeCertificates(cert.Leaf)}},
		PrivateKey:       &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: keyPEM}},
	}}})
	if err != nil {
		return err
	}
	f := &sdsFloor{streams: map[secretv3.SecretDiscoveryService_StreamSecretsServer]struct{}{}, secret: secret}
	f.push()
	srv := grpc.NewServer()
	secretv3.RegisterSecretDiscoveryServiceServer(srv, f)
	_ = os.Remove(socket)
	ln, err := net.Listen("unix", socket)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", socket, err)
	}
	go wait.Until(f.push, interval, ctx.Done())
	return serveUntil(ctx, srv, ln)
}
