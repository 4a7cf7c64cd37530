// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package localreview

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"k8s.io/client-go/rest"
)

// discoveryPath is where the API server serves its issuer's OIDC
// discovery document.
const discoveryPath = "/.well-known/openid-configuration"

// discovery is the part of the OIDC discovery document the verifier reads.
type discovery struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
}

// keySet holds the issuer's public keys, fetched by OIDC discovery through
// the API server (whose own address may differ from the issuer's), and
// fetched again when they are older than maxAge or a token names a key
// they lack.
type keySet struct {
	client rest.Interface
	maxAge time.Duration
	// minRefetch spaces the fetches an unknown kid causes, so that tokens
	// naming made-up keys cannot make the CA hammer the API server.
	minRefetch time.Duration
	now        func() time.Time

	mu      sync.Mutex
	issuer  string
	keys    jose.JSONWebKeySet
	fetched time.Time
	// attempted is when a fetch last started, successful or not.
	attempted time.Time
}

// fetch reads the discovery document and then the key set it points to.
func (k *keySet) fetch(ctx context.Context) error {
	k.mu.Lock()
	k.attempted = k.now()
	k.mu.Unlock()
	raw, err := k.client.Get().AbsPath(discoveryPath).DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("read the issuer's discovery document %s: %w (the API server serves it when --service-account-issuer is an https URL)", discoveryPath, err)
	}
	var doc discovery
	if err := json.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("the discovery document %s is not JSON: %w", discoveryPath, err)
	}
	if doc.Issuer == "" || doc.JWKSURI == "" {
		return fmt.Errorf("the discovery document %s names no issuer or jwks_uri", discoveryPath)
	}
	jwksURL, err := url.Parse(doc.JWKSURI)
	if err != nil {
		return fmt.Errorf("the discovery document's jwks_uri %q: %w", doc.JWKSURI, err)
	}
	// The jwks_uri names the issuer's external address; the API server
	// serves the same path.
	raw, err = k.client.Get().AbsPath(jwksURL.Path).DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("read the issuer's keys %s: %w", jwksURL.Path, err)
	}
	var keys jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &keys); err != nil {
		return fmt.Errorf("the issuer's keys %s are not a JWK set: %w", jwksURL.Path, err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.issuer, k.keys, k.fetched = doc.Issuer, keys, k.now()
	return nil
}

// current returns the issuer and keys, fetching them first when they are
// older than maxAge. A failed refresh keeps the keys it had.
func (k *keySet) current(ctx context.Context) (string, jose.JSONWebKeySet, error) {
	k.mu.Lock()
	// While the issuer cannot be read, the keys in hand serve, and it is
	// tried again at most every minRefetch.
	stale := k.fetched.IsZero() || (k.now().Sub(k.fetched) > k.maxAge && k.now().Sub(k.attempted) >= k.minRefetch)
	k.mu.Unlock()
	if stale {
		if err := k.fetch(ctx); err != nil {
			k.mu.Lock()
			defer k.mu.Unlock()
			if k.fetched.IsZero() {
				return "", jose.JSONWebKeySet{}, err
			}
			return k.issuer, k.keys, nil
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.issuer, k.keys, nil
}

// refetchFor fetches the keys again because a token names kid, which they
// lack, unless they were fetched within minRefetch. It reports whether the
// keys now hold kid.
func (k *keySet) refetchFor(ctx context.Context, kid string) bool {
	k.mu.Lock()
	recent := k.now().Sub(k.attempted) < k.minRefetch
	k.mu.Unlock()
	if recent || k.fetch(ctx) != nil {
		return false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.keys.Key(kid)) > 0
}
