// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package token

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Code names one finding about a token.
type Code string

// The findings Classify reports. Those that make a token unusable for the
// mesh are blocking; the rest are for information.
const (
	MissingAudience    Code = "MissingAudience"
	MissingExpiry      Code = "MissingExpiry"
	LegacyIssuerFound  Code = "LegacyIssuer"
	Expired            Code = "Expired"
	NotYetValid        Code = "NotYetValid"
	AudienceMismatch   Code = "AudienceMismatch"
	NotServiceAccount  Code = "NotServiceAccount"
	BoundToPod         Code = "BoundToPod"
	NotBoundToPod      Code = "NotBoundToPod"
	LegacySecretSource Code = "SecretBased"
)

// Finding is one observation about a token.
type Finding struct {
	Code     Code   `json:"code"`
	Blocking bool   `json:"blocking"`
	Message  string `json:"message"`
}

// Assessment is the verdict on one token.
type Assessment struct {
	// Trustworthy is Istio 1.3's test: the token has aud and exp and is not
	// from the legacy issuer. It says nothing about expiry or audience match.
	Trustworthy bool `json:"trustworthy"`
	// Usable is Trustworthy and free of every other blocking finding.
	Usable   bool      `json:"usable"`
	Findings []Finding `json:"findings"`
}

// Options tune Classify.
type Options struct {
	// ExpectedAudience, when set, must be one of the token's audiences.
	ExpectedAudience string
	// Now is the time expiry is judged at; zero means time.Now().
	Now time.Time
}

// ErrNotTrustworthy is wrapped by Assessment.Err when the token fails the
// trustworthy-JWT test.
var ErrNotTrustworthy = errors.New("untrustworthy service-account token")

// ErrUnusable is wrapped by Assessment.Err when a trustworthy token still
// cannot be used (expired, wrong audience, no service account).
var ErrUnusable = errors.New("unusable service-account token")

// Remedy is what to do about a legacy token. The CA, the agent and the
// plugin all give it.
const Remedy = "use a projected service-account token from the TokenRequest API " +
	"(a serviceAccountToken volume with the mesh audience and expirationSeconds), " +
	"or use the file-mount path (the meshcert.<service-account> Secret)"

// Classify reports every finding about c.
func Classify(c *Claims, opts Options) Assessment {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	var a Assessment
	add := func(code Code, blocking bool, format string, args ...any) {
		a.Findings = append(a.Findings, Finding{Code: code, Blocking: blocking, Message: fmt.Sprintf(format, args...)})
	}

	if !c.HasAudienceClaim || len(c.Audiences) == 0 {
		add(MissingAudience, true, "no aud claim: the token is valid for any audience")
	}
	if !c.HasExpirationClaim {
		add(MissingExpiry, true, "no exp claim: the token never expires")
	}
	if c.Issuer == LegacyIssuer {
		add(LegacyIssuerFound, true, "issuer is %q: a secret-based token from before TokenRequest", LegacyIssuer)
	}
	if c.SecretName != "" {
		add(LegacySecretSource, false, "minted for Secret %q", c.SecretName)
	}
	a.Trustworthy = !hasBlocking(a.Findings)

	if c.HasExpirationClaim && !now.Before(c.Expiry) {
		add(Expired, true, "expired at %s (%s ago)", c.Expiry.Format(time.RFC3339), now.Sub(c.Expiry).Round(time.Second))
	}
	if !c.NotBefore.IsZero() && now.Before(c.NotBefore) {
		add(NotYetValid, true, "not valid before %s", c.NotBefore.Format(time.RFC3339))
	}
	if opts.ExpectedAudience != "" && c.HasAudienceClaim && !slices.Contains(c.Audiences, opts.ExpectedAudience) {
		add(AudienceMismatch, true, "audience %q is not among the token's audiences [%s]: request the token with audience %q",
			opts.ExpectedAudience, strings.Join(c.Audiences, ", "), opts.ExpectedAudience)
	}
	if c.Namespace == "" || c.ServiceAccount == "" {
		add(NotServiceAccount, true, "names no service account (subject %q)", c.Subject)
	}
	if c.Pod != "" {
		add(BoundToPod, false, "bound to pod %s/%s: it stops working when the pod is deleted", c.Namespace, c.Pod)
	} else if a.Trustworthy {
		add(NotBoundToPod, false, "not bound to a pod: it works until it expires, even after the pod is gone")
	}
	a.Usable = a.Trustworthy && !hasBlocking(a.Findings)
	return a
}

func hasBlocking(findings []Finding) bool {
	return slices.ContainsFunc(findings, func(f Finding) bool { return f.Blocking })
}

// Err returns nil for a usable token. Otherwise it names every blocking
// finding and, for an untrustworthy token, the remedy.
func (a Assessment) Err() error {
	if a.Usable {
		return nil
	}
	var reasons []string
	for _, f := range a.Findings {
		if f.Blocking {
			reasons = append(reasons, f.Message)
		}
	}
	if !a.Trustworthy {
		return fmt.Errorf("%w (%s): %s", ErrNotTrustworthy, strings.Join(reasons, "; "), Remedy)
	}
	return fmt.Errorf("%w: %s", ErrUnusable, strings.Join(reasons, "; "))
}

// Has reports whether the assessment contains a finding with code.
func (a Assessment) Has(code Code) bool {
	return slices.ContainsFunc(a.Findings, func(f Finding) bool { return f.Code == code })
}
