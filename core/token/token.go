// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package token decodes Kubernetes service-account JWTs without verifying
// them, and classifies them as trustworthy or legacy the way Istio 1.3 did:
// a trustworthy token has an audience and an expiry and does not come from
// the legacy issuer kubernetes/serviceaccount.
//
// Decoding here never authenticates anything: only a TokenReview by the API
// server does. The classification lets the CA and the agent refuse legacy
// tokens early, with a message that says what to do instead.
package token

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// LegacyIssuer is the issuer of the secret-based tokens that Kubernetes
// minted before TokenRequest existed.
const LegacyIssuer = "kubernetes/serviceaccount"

// DefaultAudience is the audience mesh tokens are requested for and the CA
// accepts, as in Istio.
const DefaultAudience = "istio-ca"

// MaxSize is the largest token Decode accepts. Real service-account tokens
// are around 1 KiB.
const MaxSize = 16 << 10

// ErrMalformed is wrapped by every error Decode returns.
var ErrMalformed = errors.New("malformed JWT")

// Claims are the parts of a service-account token the mesh cares about.
type Claims struct {
	Algorithm string    `json:"algorithm"`
	KeyID     string    `json:"keyID,omitempty"`
	Issuer    string    `json:"issuer,omitempty"`
	Subject   string    `json:"subject,omitempty"`
	Audiences []string  `json:"audiences,omitempty"`
	Expiry    time.Time `json:"expiry,omitzero"`
	IssuedAt  time.Time `json:"issuedAt,omitzero"`
	NotBefore time.Time `json:"notBefore,omitzero"`

	Namespace          string `json:"namespace,omitempty"`
	ServiceAccount     string `json:"serviceAccount,omitempty"`
	ServiceAccountUID  string `json:"serviceAccountUID,omitempty"`
	Pod                string `json:"pod,omitempty"`
	PodUID             string `json:"podUID,omitempty"`
	Node               string `json:"node,omitempty"`
	SecretName         string `json:"secretName,omitempty"`
	HasAudienceClaim   bool   `json:"-"`
	HasExpirationClaim bool   `json:"-"`
}

type header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

// payload mirrors what the API server writes: the projected-token claims
// under "kubernetes.io" and the legacy claims as flat keys.
type payload struct {
	Iss string         `json:"iss"`
	Sub string         `json:"sub"`
	Aud jsontext.Value `json:"aud"`
	Exp *float64       `json:"exp"`
	Iat *float64       `json:"iat"`
	Nbf *float64       `json:"nbf"`

	Kubernetes *struct {
		Namespace      string `json:"namespace"`
		ServiceAccount *ref   `json:"serviceaccount"`
		Pod            *ref   `json:"pod"`
		Node           *ref   `json:"node"`
		Secret         *ref   `json:"secret"`
	} `json:"kubernetes.io"`

	LegacyNamespace  string `json:"kubernetes.io/serviceaccount/namespace"`
	LegacySecretName string `json:"kubernetes.io/serviceaccount/secret.name"`
	LegacySAName     string `json:"kubernetes.io/serviceaccount/service-account.name"`
	LegacySAUID      string `json:"kubernetes.io/serviceaccount/service-account.uid"`
}

type ref struct {
	Name string `json:"name"`
	UID  string `json:"uid"`
}

// Decode parses a compact JWS without checking its signature. Surrounding
// white space and a "Bearer " prefix are ignored.
func Decode(raw string) (*Claims, error) {
	raw = strings.TrimSpace(raw)
	if after, ok := strings.CutPrefix(raw, "Bearer "); ok {
		raw = strings.TrimSpace(after)
	}
	if raw == "" {
		return nil, malformed("the token is empty")
	}
	if len(raw) > MaxSize {
		return nil, malformed("the token is %d bytes, more than the %d-byte limit: this is not a service-account token", len(raw), MaxSize)
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, malformed("a JWT has 3 dot-separated segments, this has %d: pass the token itself, not a file name or a kubeconfig", len(parts))
	}

	var h header
	if err := decodeSegment(parts[0], "header", &h); err != nil {
		return nil, err
	}
	switch {
	case h.Alg == "":
		return nil, malformed("the header has no alg")
	case strings.EqualFold(h.Alg, "none"):
		return nil, malformed(`the header says alg "none": an unsigned token is never accepted`)
	}
	if parts[2] == "" {
		return nil, malformed("the signature segment is empty")
	}
	if _, err := base64.RawURLEncoding.DecodeString(parts[2]); err != nil {
		return nil, malformed("the signature segment is not base64url: %v", err)
	}

	var p payload
	if err := decodeSegment(parts[1], "payload", &p); err != nil {
		return nil, err
	}
	return p.claims(h)
}

func decodeSegment(segment, name string, into any) error {
	data, err := base64.RawURLEncoding.DecodeString(segment)
	if err != nil {
		return malformed("the %s segment is not base64url: %v", name, err)
	}
	// Claim names match exactly, as in the API server's JWT library;
	// duplicate names and invalid UTF-8 pass, as they did with
	// encoding/json: only the API server's signature makes a token.
	if err := json.Unmarshal(data, into, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)); err != nil {
		return malformed("the %s segment is not a JSON object: %v", name, err)
	}
	return nil
}

func (p *payload) claims(h header) (*Claims, error) {
	c := &Claims{Algorithm: h.Alg, KeyID: h.Kid, Issuer: p.Iss, Subject: p.Sub}

	if len(p.Aud) > 0 && string(p.Aud) != "null" {
		c.HasAudienceClaim = true
		// RFC 7519 allows one audience as a string; Kubernetes writes a list.
		var err error
		if p.Aud[0] == '"' {
			var one string
			err = json.Unmarshal(p.Aud, &one)
			c.Audiences = []string{one}
		} else {
			err = json.Unmarshal(p.Aud, &c.Audiences)
		}
		if err != nil {
			return nil, malformed("aud is neither a string nor a list of strings")
		}
	}
	var err error
	if c.Expiry, c.HasExpirationClaim, err = numericDate(p.Exp, "exp"); err != nil {
		return nil, err
	}
	if c.IssuedAt, _, err = numericDate(p.Iat, "iat"); err != nil {
		return nil, err
	}
	if c.NotBefore, _, err = numericDate(p.Nbf, "nbf"); err != nil {
		return nil, err
	}

	if k := p.Kubernetes; k != nil {
		c.Namespace = k.Namespace
		if k.ServiceAccount != nil {
			c.ServiceAccount, c.ServiceAccountUID = k.ServiceAccount.Name, k.ServiceAccount.UID
		}
		if k.Pod != nil {
			c.Pod, c.PodUID = k.Pod.Name, k.Pod.UID
		}
		if k.Node != nil {
			c.Node = k.Node.Name
		}
		if k.Secret != nil {
			c.SecretName = k.Secret.Name
		}
	}
	if c.Namespace == "" {
		c.Namespace = p.LegacyNamespace
	}
	if c.ServiceAccount == "" {
		c.ServiceAccount, c.ServiceAccountUID = p.LegacySAName, p.LegacySAUID
	}
	if c.SecretName == "" {
		c.SecretName = p.LegacySecretName
	}
	if c.Namespace == "" || c.ServiceAccount == "" {
		// Fall back on the subject, system:serviceaccount:<ns>:<sa>.
		if ns, sa, ok := SplitServiceAccountUsername(c.Subject); ok {
			c.Namespace, c.ServiceAccount = ns, sa
		}
	}
	return c, nil
}

func numericDate(n *float64, name string) (time.Time, bool, error) {
	if n == nil {
		return time.Time{}, false, nil
	}
	f := *n
	if f < 0 || f > 1<<40 {
		return time.Time{}, true, malformed("%s is out of range", name)
	}
	return time.Unix(int64(f), 0).UTC(), true, nil
}

// ServiceAccountUsernamePrefix starts the username Kubernetes gives a
// service account's token, system:serviceaccount:<namespace>:<name>.
const ServiceAccountUsernamePrefix = "system:serviceaccount:"

// SplitServiceAccountUsername splits system:serviceaccount:<ns>:<sa>.
func SplitServiceAccountUsername(username string) (namespace, name string, ok bool) {
	rest, found := strings.CutPrefix(username, ServiceAccountUsernamePrefix)
	if !found {
		return "", "", false
	}
	namespace, name, found = strings.Cut(rest, ":")
	if !found || namespace == "" || name == "" || strings.Contains(name, ":") {
		return "", "", false
	}
	return namespace, name, true
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}
