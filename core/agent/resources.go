// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package agent

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// SDS resource names and type, as Envoy and Istio use them.
const (
	ResourceDefault = "default"
	ResourceRootCA  = "ROOTCA"
	SecretTypeURL   = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
)

// encodedResource is one SDS resource, encoded once and shared by every
// stream that serves it.
type encodedResource struct {
	name    string
	version string
	any     *anypb.Any
}

func inline(data []byte) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: data}}
}

func (c *servedCert) resource() (*encodedResource, error) {
	if r := c.sds.Load(); r != nil {
		return r, nil
	}
	a, err := anypb.New(&tlsv3.Secret{
		Name: ResourceDefault,
		Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: inline(c.chainPEM),
			PrivateKey:       inline(c.keyPEM),
		}},
	})
	if err != nil {
		return nil, err
	}
	r := &encodedResource{name: ResourceDefault, version: c.version, any: a}
	c.sds.CompareAndSwap(nil, r)
	return c.sds.Load(), nil
}

func (r *servedRoots) resource() (*encodedResource, error) {
	if res := r.sds.Load(); res != nil {
		return res, nil
	}
	a, err := anypb.New(&tlsv3.Secret{
		Name: ResourceRootCA,
		Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: inline(r.pem),
		}},
	})
	if err != nil {
		return nil, err
	}
	res := &encodedResource{name: ResourceRootCA, version: r.version, any: a}
	r.sds.CompareAndSwap(nil, res)
	return r.sds.Load(), nil
}
