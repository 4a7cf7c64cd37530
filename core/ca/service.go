// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package ca

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	pb "istio.io/api/security/v1alpha1"

	"github.com/meshcert/kubectl-meshcert/core/identity"
	"github.com/meshcert/kubectl-meshcert/core/monitoring"
	"github.com/meshcert/kubectl-meshcert/core/pki"
)

// MaxCSRSize is the largest CSR the CA reads.
const MaxCSRSize = 64 << 10

// certificateService implements Istio's IstioCertificateService.
type certificateService struct {
	pb.UnimplementedIstioCertificateServiceServer

	authority  atomic.Pointer[Authority]
	authn      *authenticator
	defaultTTL time.Duration
	maxTTL     time.Duration
	// slots bound the signings; only authenticated callers take one.
	slots chan struct{}
	// refusalLogs logs the first refusals, then one per interval.
	refusalLogs rate.Sometimes
	metrics     *metrics
	log         *slog.Logger
}

// CreateCertificate authenticates the caller's token, checks the CSR, and
// signs a certificate for the identity the Kubernetes API vouched for.
func (s *certificateService) CreateCertificate(ctx context.Context, req *pb.IstioCertificateRequest) (*pb.IstioCertificateResponse, error) {
	start := time.Now()
	bearer, cluster := callerCredentials(ctx)
	id, err := s.authn.authenticate(ctx, bearer)
	if err != nil {
		s.metrics.csrs.WithLabelValues(resultFor(err)).Inc()
		// A flood of forged calls must not become a flood of log lines:
		// meshcert_ca_auth_failures_total counts every refusal.
		s.refusalLogs.Do(func() {
			s.log.Info("refused certificate request", "tokenHash", TokenHash(bearer), "clusterID", monitoring.BoundedField(cluster), "error", status.Convert(err).Message())
		})
		return nil, err
	}
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots; s.authn.retries.Done() }()
	default:
		s.metrics.csrs.WithLabelValues(resultResourceExhausted).Inc()
		return nil, s.authn.exhausted("the CA is serving its limit of %d concurrent signings (--max-concurrent-signings)", cap(s.slots))
	}
	s.metrics.inflight.Inc()
	defer s.metrics.inflight.Dec()

	csr, ttl, err := s.checkRequest(req, id)
	if err != nil {
		s.metrics.csrs.WithLabelValues(resultInvalidCSR).Inc()
		s.log.Info("refused CSR", "identity", id.String(), "error", status.Convert(err).Message())
		return nil, err
	}
	issued, err := s.authority.Load().SignWorkloadPEM(csr.PublicKey, id, ttl)
	if err != nil {
		s.metrics.csrs.WithLabelValues(resultInternal).Inc()
		return nil, status.Errorf(codes.Internal, "sign: %v", err)
	}
	s.metrics.csrs.WithLabelValues(resultSuccess).Inc()
	s.metrics.signDuration.Observe(time.Since(start).Seconds())
	if s.log.Enabled(ctx, slog.LevelDebug) {
		s.log.Debug("issued certificate", "identity", id.String(), "serial", pki.FormatSerial(issued.Serial), "notAfter", issued.NotAfter, "clusterID", cluster)
	}
	return &pb.IstioCertificateResponse{CertChain: issued.PEM}, nil
}

// checkRequest parses the CSR and refuses anything but a request for the
// caller's own identity, with a key istio-csr would accept: exactly one URI
// SAN, the caller's SPIFFE ID; no common name, DNS name, IP address or
// email address; an ECDSA P-256 or P-384 key, or RSA of 2048 bits or more.
func (s *certificateService) checkRequest(req *pb.IstioCertificateRequest, id identity.ID) (*x509.CertificateRequest, time.Duration, error) {
	if len(req.GetCsr()) > MaxCSRSize {
		return nil, 0, status.Errorf(codes.InvalidArgument, "the CSR is %d bytes, more than the %d-byte limit", len(req.GetCsr()), MaxCSRSize)
	}
	csr, err := pki.DecodeCSR([]byte(req.GetCsr()))
	if err != nil {
		return nil, 0, status.Errorf(codes.InvalidArgument, "cannot read the CSR: %v", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, 0, status.Errorf(codes.InvalidArgument, "the CSR's signature does not verify with its public key: %v", err)
	}
	if err := checkKey(csr.PublicKey); err != nil {
		return nil, 0, err
	}
	var foreign []string
	if cn := csr.Subject.CommonName; cn != "" {
		foreign = append(foreign, "CN:"+monitoring.BoundedField(cn))
	}
	for _, name := range csr.DNSNames {
		foreign = append(foreign, "DNS:"+name)
	}
	for _, ip := range csr.IPAddresses {
		foreign = append(foreign, "IP:"+ip.String())
	}
	for _, email := range csr.EmailAddresses {
		foreign = append(foreign, "email:"+email)
	}
	for _, uri := range csr.URIs {
		if uri.String() != id.String() {
			foreign = append(foreign, "URI:"+uri.String())
		}
	}
	if len(foreign) > 0 {
		for i := range foreign {
			foreign[i] = monitoring.BoundedField(foreign[i])
		}
		if len(foreign) > 4 {
			foreign = append(foreign[:4], fmt.Sprintf("and %d more", len(foreign)-4))
		}
		return nil, 0, status.Errorf(codes.PermissionDenied,
			"the CSR asks for %s, but the caller's token only vouches for %s: request that URI SAN alone",
			strings.Join(foreign, ", "), id)
	}
	if len(csr.URIs) != 1 {
		return nil, 0, status.Errorf(codes.InvalidArgument,
			"the CSR carries %d URI SANs: it must carry exactly one, the caller's SPIFFE ID %s", len(csr.URIs), id)
	}

	ttl := s.defaultTTL
	switch requested := req.GetValidityDuration(); {
	case requested < 0:
		return nil, 0, status.Errorf(codes.InvalidArgument, "validity_duration %d is negative", requested)
	case requested > 0:
		ttl = time.Duration(requested) * time.Second
		if requested > int64(s.maxTTL/time.Second) {
			ttl = s.maxTTL
		}
	}
	return csr, ttl, nil
}

// checkKey accepts the keys istio-csr accepts.
func checkKey(key any) error {
	const want = "use an ECDSA P-256 or P-384 key, or RSA of at least 2048 bits"
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() || k.Curve == elliptic.P384() {
			return nil
		}
		return status.Errorf(codes.InvalidArgument, "the CSR's key is ECDSA on curve %s: %s", k.Curve.Params().Name, want)
	case *rsa.PublicKey:
		if k.N.BitLen() >= 2048 {
			return nil
		}
		return status.Errorf(codes.InvalidArgument, "the CSR's key is RSA of %d bits: %s", k.N.BitLen(), want)
	}
	return status.Errorf(codes.InvalidArgument, "the CSR's key is a %T: %s", key, want)
}

// callerCredentials reads the bearer token and the optional ClusterID from
// the call's metadata.
func callerCredentials(ctx context.Context) (bearer, clusterID string) {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if after, ok := strings.CutPrefix(v, "Bearer "); ok {
			bearer = strings.TrimSpace(after)
			break
		}
	}
	if ids := md.Get("clusterid"); len(ids) > 0 {
		clusterID = ids[0]
	}
	return bearer, clusterID
}

func resultFor(err error) string {
	switch status.Code(err) {
	case codes.Unauthenticated:
		return resultUnauthenticated
	case codes.Unavailable:
		return resultUnavailable
	case codes.ResourceExhausted:
		return resultResourceExhausted
	default:
		return resultInternal
	}
}
