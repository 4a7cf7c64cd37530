// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package identity builds, parses and validates the SPIFFE IDs that the mesh
// gives Kubernetes workloads: spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>.
//
// Generic SPIFFE syntax is checked by go-spiffe; this package adds the
// Kubernetes path shape and the Kubernetes naming rules for its segments.
package identity

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"k8s.io/apimachinery/pkg/util/validation"
)

// DefaultTrustDomain is the trust domain used when none is configured, as in
// Istio.
const DefaultTrustDomain = "cluster.local"

// maxTrustDomainLength is the SPIFFE specification's limit on a trust domain
// name, which go-spiffe does not enforce.
const maxTrustDomainLength = 255

// ErrInvalid is wrapped by every error this package returns, so that callers
// can tell a bad identity from other failures with errors.Is.
var ErrInvalid = errors.New("invalid workload identity")

// ID is a workload identity: a Kubernetes service account in a trust domain.
type ID struct {
	TrustDomain    string
	Namespace      string
	ServiceAccount string
}

// New returns the identity of service account sa in namespace ns of trust
// domain td, or an error naming the first part that breaks the rules.
func New(td, ns, sa string) (ID, error) {
	id := ID{TrustDomain: td, Namespace: ns, ServiceAccount: sa}
	if err := id.Validate(); err != nil {
		return ID{}, err
	}
	return id, nil
}

// Validate checks the trust domain against the SPIFFE rules, the namespace
// against the Kubernetes namespace rules (a DNS-1123 label) and the service
// account against the ServiceAccount name rules (a DNS-1123 subdomain).
func (id ID) Validate() error {
	if err := ValidateTrustDomain(id.TrustDomain); err != nil {
		return err
	}
	if err := ValidateNamespace(id.Namespace); err != nil {
		return err
	}
	return ValidateServiceAccount(id.ServiceAccount)
}

// String returns the SPIFFE ID, spiffe://<td>/ns/<ns>/sa/<sa>.
func (id ID) String() string {
	return "spiffe://" + id.TrustDomain + "/ns/" + id.Namespace + "/sa/" + id.ServiceAccount
}

// URL returns the SPIFFE ID as a URL, for a certificate's URI SAN.
func (id ID) URL() *url.URL {
	return &url.URL{Scheme: "spiffe", Host: id.TrustDomain, Path: "/ns/" + id.Namespace + "/sa/" + id.ServiceAccount}
}

// IsZero reports whether id is the zero value.
func (id ID) IsZero() bool { return id == ID{} }

// Parse parses a SPIFFE ID of the form spiffe://<td>/ns/<ns>/sa/<sa>.
func Parse(s string) (ID, error) {
	if s == "" {
		return ID{}, invalid("empty SPIFFE ID: expected spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>")
	}
	if !strings.HasPrefix(s, "spiffe://") {
		return ID{}, invalid("%q does not start with spiffe://: expected spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>", s)
	}
	parsed, err := spiffeid.FromString(s)
	if err != nil {
		return ID{}, invalid("%q is not a valid SPIFFE ID: %v", s, err)
	}
	segments := strings.Split(strings.TrimPrefix(parsed.Path(), "/"), "/")
	if len(segments) != 4 || segments[0] != "ns" || segments[2] != "sa" {
		return ID{}, invalid("%q has path %q: expected /ns/<namespace>/sa/<service-account>", s, parsed.Path())
	}
	return New(parsed.TrustDomain().Name(), segments[1], segments[3])
}

// FromURL parses a URI SAN from a certificate or CSR.
func FromURL(u *url.URL) (ID, error) {
	if u == nil {
		return ID{}, invalid("no URI given")
	}
	return Parse(u.String())
}

// ValidateTrustDomain checks a trust domain name against the SPIFFE rules:
// non-empty, lowercase letters, digits, '.', '-' and '_' only.
func ValidateTrustDomain(td string) error {
	if td == "" {
		return invalid("empty trust domain: set one such as %q", DefaultTrustDomain)
	}
	if _, err := spiffeid.TrustDomainFromString(td); err != nil {
		return invalid("trust domain %q: %v", td, err)
	}
	if len(td) > maxTrustDomainLength {
		return invalid("trust domain is %d characters long: the SPIFFE limit is %d", len(td), maxTrustDomainLength)
	}
	return nil
}

// ValidateNamespace checks a Kubernetes namespace name (a DNS-1123 label).
func ValidateNamespace(ns string) error {
	if ns == "" {
		return invalid("empty namespace")
	}
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return invalid("namespace %q: %s", ns, strings.Join(errs, "; "))
	}
	return nil
}

// ValidateServiceAccount checks a Kubernetes ServiceAccount name (a DNS-1123
// subdomain).
func ValidateServiceAccount(sa string) error {
	if sa == "" {
		return invalid("empty service account name")
	}
	if errs := validation.IsDNS1123Subdomain(sa); len(errs) > 0 {
		return invalid("service account %q: %s", sa, strings.Join(errs, "; "))
	}
	return nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}
