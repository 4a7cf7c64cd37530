// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package ca

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authenticationclient "k8s.io/client-go/kubernetes/typed/authentication/v1"

	"github.com/meshcert/kubectl-meshcert/core/identity"
	"github.com/meshcert/kubectl-meshcert/core/token"
)

// serviceAccountsGroup is the group every service-account token
// authenticates into.
const serviceAccountsGroup = "system:serviceaccounts"

// authenticator turns a bearer token into a workload identity, trusting only
// the Kubernetes API's TokenReview.
type authenticator struct {
	reviews     authenticationclient.TokenReviewInterface
	audiences   []string
	trustDomain string
	cacheTTL    time.Duration
	now         func() time.Time
	metrics     *metrics

	mu    sync.Mutex
	cache map[[sha256.Size]byte]cachedReview
}

type cachedReview struct {
	id      identity.ID
	expires time.Time
}

// authenticate returns the caller's identity, or a gRPC status error whose
// code tells the client whether to retry: Unauthenticated for a token that
// will never work, Unavailable when the API server could not be asked.
func (a *authenticator) authenticate(ctx context.Context, bearer string) (identity.ID, error) {
	if bearer == "" {
		return a.refuse(reasonMissingToken, codes.Unauthenticated,
			"no service-account token: send the workload's projected token in the gRPC metadata as \"authorization: Bearer <jwt>\"")
	}
	// Only tokens that passed every check below are cached, so a hit skips
	// decoding too.
	sum := sha256.Sum256([]byte(bearer))
	if id, ok := a.cached(sum); ok {
		a.metrics.reviewCacheHits.Inc()
		return id, nil
	}
	claims, err := token.Decode(bearer)
	if err != nil {
		return a.refuse(reasonMalformedToken, codes.Unauthenticated,
			"the bearer token is not a service-account JWT: %v", err)
	}
	if assessment := token.Classify(claims, token.Options{Now: a.now()}); !assessment.Trustworthy {
		return a.refuse(reasonUntrustworthy, codes.Unauthenticated, "%v", assessment.Err())
	}

	review, err := a.reviews.Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: bearer, Audiences: a.audiences},
	}, metav1.CreateOptions{})
	if err != nil {
		if retriable(err) {
			a.metrics.reviews.WithLabelValues("unavailable").Inc()
			return a.refuse(reasonReviewUnavailable, codes.Unavailable,
				"cannot reach the Kubernetes API to review the token (retry): %v", err)
		}
		a.metrics.reviews.WithLabelValues("error").Inc()
		return a.refuse(reasonReviewError, codes.Internal,
			"the CA cannot review tokens: %v (the CA's service account needs RBAC permission to create tokenreviews.authentication.k8s.io)", err)
	}
	st := review.Status
	if !st.Authenticated {
		a.metrics.reviews.WithLabelValues("rejected").Inc()
		reason := st.Error
		if reason == "" {
			reason = "the API server did not authenticate the token"
		}
		return a.refuse(reasonReviewRejected, codes.Unauthenticated,
			"the Kubernetes API rejected the token (audiences %s, token hash %s): %s", strings.Join(a.audiences, ","), shortHash(sum), reason)
	}
	a.metrics.reviews.WithLabelValues("authenticated").Inc()

	ns, sa, ok := token.SplitServiceAccountUsername(st.User.Username)
	if !ok || !slices.Contains(st.User.Groups, serviceAccountsGroup) {
		return a.refuse(reasonNotServiceAccount, codes.Unauthenticated,
			"the token authenticates %q, which is not a Kubernetes service account (want username system:serviceaccount:<namespace>:<name> in group %s): workloads must present their service-account token",
			st.User.Username, serviceAccountsGroup)
	}
	id, err := identity.New(a.trustDomain, ns, sa)
	if err != nil {
		return a.refuse(reasonNotServiceAccount, codes.Unauthenticated, "%v", err)
	}
	a.remember(sum, id, claims.Expiry)
	return id, nil
}

func (a *authenticator) refuse(reason string, code codes.Code, format string, args ...any) (identity.ID, error) {
	a.metrics.authFailures.WithLabelValues(reason).Inc()
	return identity.ID{}, status.Errorf(code, format, args...)
}

func (a *authenticator) cached(sum [sha256.Size]byte) (identity.ID, bool) {
	if a.cacheTTL <= 0 {
		return identity.ID{}, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	entry, ok := a.cache[sum]
	if !ok {
		return identity.ID{}, false
	}
	if !a.now().Before(entry.expires) {
		delete(a.cache, sum)
		return identity.ID{}, false
	}
	return entry.id, true
}

// remember caches a successful review until the earlier of the cache TTL and
// the token's own expiry. Failures are never cached.
func (a *authenticator) remember(sum [sha256.Size]byte, id identity.ID, tokenExpiry time.Time) {
	if a.cacheTTL <= 0 {
		return
	}
	now := a.now()
	expires := now.Add(a.cacheTTL)
	if !tokenExpiry.IsZero() && tokenExpiry.Before(expires) {
		expires = tokenExpiry
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cache == nil {
		a.cache = map[[sha256.Size]byte]cachedReview{}
	}
	if len(a.cache) > maxCachedReviews {
		for k, v := range a.cache {
			if !now.Before(v.expires) {
				delete(a.cache, k)
			}
		}
	}
	a.cache[sum] = cachedReview{id: id, expires: expires}
}

// maxCachedReviews bounds the cache before expired entries are swept.
const maxCachedReviews = 10000

func retriable(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) ||
		errors.Is(err, context.DeadlineExceeded) ||
		apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
		apierrors.IsTooManyRequests(err) || apierrors.IsServiceUnavailable(err) ||
		apierrors.IsInternalError(err) || apierrors.IsUnexpectedServerError(err) ||
		strings.Contains(err.Error(), "connection refused")
}

// shortHash identifies a token in logs and messages without revealing it.
func shortHash(sum [sha256.Size]byte) string {
	return hex.EncodeToString(sum[:6])
}

// TokenHash returns the short hash the CA logs in place of a token.
func TokenHash(bearer string) string {
	return shortHash(sha256.Sum256([]byte(bearer)))
}
