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

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authenticationclient "k8s.io/client-go/kubernetes/typed/authentication/v1"

	"github.com/meshcert/kubectl-meshcert/core/identity"
	"github.com/meshcert/kubectl-meshcert/core/limit"
	"github.com/meshcert/kubectl-meshcert/core/monitoring"
	"github.com/meshcert/kubectl-meshcert/core/token"
)

// serviceAccountsGroup is the group every service-account token
// authenticates into.
const serviceAccountsGroup = "system:serviceaccounts"

// authenticator turns a bearer token into a workload identity, trusting only
// the Kubernetes API's TokenReview, or local verification that decides as
// it does.
type authenticator struct {
	reviews authenticationclient.TokenReviewInterface
	// local, when set, decides on tokens in place of TokenReview
	// (--token-verification=local).
	local       localReviewer
	audiences   []string
	trustDomain string
	cacheTTL    time.Duration
	// reviewTimeout bounds every TokenReview.
	reviewTimeout time.Duration
	// refusalTTL is how long a token the API server refused is refused
	// again without asking it.
	refusalTTL time.Duration
	// reviewSlots bound the TokenReviews in flight. Tokens answered from
	// the caches take none, so that a flood of forged tokens, refused once
	// each, leaves them to the tokens not yet seen.
	reviewSlots chan struct{}
	// perPeer bounds the reviews the calls of one source address hold.
	perPeer limit.PerKey[string]
	// retries tells the calls refused for want of capacity, here or at
	// signing, when to come back.
	retries limit.Pacer
	now     func() time.Time
	metrics *metrics

	mu       sync.Mutex
	cache    map[[sha256.Size]byte]cachedReview
	refusals map[[sha256.Size]byte]cachedRefusal
}

// localReviewer decides on a token for audiences as a TokenReview would,
// and fails only when it cannot decide.
type localReviewer interface {
	Review(ctx context.Context, token string, audiences []string) (authenticationv1.TokenReviewStatus, error)
}

type cachedReview struct {
	id      identity.ID
	expires time.Time
}

type cachedRefusal struct {
	err     error
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
	if err, ok := a.refusedBefore(sum); ok {
		a.metrics.authFailures.WithLabelValues(reasonRefusedBefore).Inc()
		return identity.ID{}, err
	}
	claims, err := token.Decode(bearer)
	if err != nil {
		return a.refuse(reasonMalformedToken, codes.Unauthenticated,
			"the bearer token is not a service-account JWT: %v", err)
	}
	if assessment := token.Classify(claims, token.Options{Now: a.now()}); !assessment.Trustworthy {
		return a.refuse(reasonUntrustworthy, codes.Unauthenticated, "%v", assessment.Err())
	}

	release, err := a.reviewSlot(ctx)
	if err != nil {
		return identity.ID{}, err
	}
	defer release()
	reviewCtx, cancel := context.WithTimeout(ctx, a.reviewTimeout)
	defer cancel()
	var st authenticationv1.TokenReviewStatus
	reviewed := a.metrics.reviews
	if a.local != nil {
		reviewed = a.metrics.localVerifications
		if st, err = a.local.Review(reviewCtx, bearer, a.audiences); err != nil {
			reviewed.WithLabelValues("unavailable").Inc()
			return a.refuse(reasonReviewUnavailable, codes.Unavailable,
				"cannot verify the token locally (retry): %v", err)
		}
	} else {
		review, err := a.reviews.Create(reviewCtx, &authenticationv1.TokenReview{
			Spec: authenticationv1.TokenReviewSpec{Token: bearer, Audiences: a.audiences},
		}, metav1.CreateOptions{})
		if err != nil {
			if retriable(err) {
				reviewed.WithLabelValues("unavailable").Inc()
				return a.refuse(reasonReviewUnavailable, codes.Unavailable,
					"cannot reach the Kubernetes API to review the token (retry): %v", err)
			}
			reviewed.WithLabelValues("error").Inc()
			return a.refuse(reasonReviewError, codes.Internal,
				"the CA cannot review tokens: %v (the CA's service account needs RBAC permission to create tokenreviews.authentication.k8s.io)", err)
		}
		st = review.Status
	}
	if !st.Authenticated {
		reviewed.WithLabelValues("rejected").Inc()
		reason := st.Error
		if reason == "" {
			reason = "the API server did not authenticate the token"
		}
		decider := "the Kubernetes API"
		if a.local != nil {
			decider = "local verification"
		}
		return a.refuseToken(sum, reasonReviewRejected,
			"%s rejected the token (audiences %s, token hash %s): %s", decider, strings.Join(a.audiences, ","), shortHash(sum), reason)
	}
	reviewed.WithLabelValues("authenticated").Inc()
	if !slices.ContainsFunc(st.Audiences, func(aud string) bool { return slices.Contains(a.audiences, aud) }) {
		return a.refuseToken(sum, reasonAudienceMismatch,
			"the Kubernetes API authenticated the token for audiences %q, none of which is the mesh's (%s): mint the workload's token for the mesh audience",
			st.Audiences, strings.Join(a.audiences, ","))
	}

	ns, sa, ok := token.SplitServiceAccountUsername(st.User.Username)
	if !ok || !slices.Contains(st.User.Groups, serviceAccountsGroup) {
		return a.refuseToken(sum, reasonNotServiceAccount,
			"the token authenticates %q, which is not a Kubernetes service account (want username system:serviceaccount:<namespace>:<name> in group %s): workloads must present their service-account token",
			monitoring.BoundedField(st.User.Username), serviceAccountsGroup)
	}
	id, err := identity.New(a.trustDomain, ns, sa)
	if err != nil {
		return a.refuseToken(sum, reasonNotServiceAccount, "%v", err)
	}
	a.remember(sum, id, claims.Expiry)
	return id, nil
}

func (a *authenticator) refuse(reason string, code codes.Code, format string, args ...any) (identity.ID, error) {
	a.metrics.authFailures.WithLabelValues(reason).Inc()
	return identity.ID{}, status.Errorf(code, format, args...)
}

// reviewSlot takes a slot for one TokenReview: one of the peer's, then one
// of all.
func (a *authenticator) reviewSlot(ctx context.Context) (release func(), err error) {
	host := ""
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		host = p.Addr.String()
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
	}
	releasePeer, ok := a.perPeer.Acquire(host)
	if !ok {
		a.metrics.authFailures.WithLabelValues(reasonReviewsExhausted).Inc()
		return nil, a.exhausted("the calls from %s hold %d token reviews, the most one address may (--max-concurrent-authentications-per-peer)", monitoring.BoundedField(host), a.perPeer.Max)
	}
	select {
	case a.reviewSlots <- struct{}{}:
		return func() { <-a.reviewSlots; releasePeer() }, nil
	default:
		releasePeer()
		a.metrics.authFailures.WithLabelValues(reasonReviewsExhausted).Inc()
		return nil, a.exhausted("the CA is reviewing its limit of %d tokens at once (--max-concurrent-authentications)", cap(a.reviewSlots))
	}
}

// exhausted refuses a call for want of capacity with ResourceExhausted,
// and tells the caller when to come back: in the message, and as a
// google.rpc.RetryInfo, which meshcert's agent waits for.
func (a *authenticator) exhausted(format string, args ...any) error {
	delay := a.retries.RetryAfter()
	st := status.Newf(codes.ResourceExhausted, format+": retry in %s", append(args, delay)...)
	if detailed, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(delay)}); err == nil {
		st = detailed
	}
	return st.Err()
}

// refuseToken refuses a token the API server was asked about, and
// remembers the refusal for refusalTTL so that replaying the token costs
// no further TokenReview.
func (a *authenticator) refuseToken(sum [sha256.Size]byte, reason, format string, args ...any) (identity.ID, error) {
	_, err := a.refuse(reason, codes.Unauthenticated, format, args...)
	if a.refusalTTL <= 0 {
		return identity.ID{}, err
	}
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.refusals == nil {
		a.refusals = map[[sha256.Size]byte]cachedRefusal{}
	}
	if len(a.refusals) >= maxCachedReviews {
		for k, v := range a.refusals {
			if !now.Before(v.expires) {
				delete(a.refusals, k)
			}
		}
	}
	if len(a.refusals) < maxCachedReviews {
		a.refusals[sum] = cachedRefusal{err: err, expires: now.Add(a.refusalTTL)}
	}
	return identity.ID{}, err
}

// refusedBefore returns the refusal of a token refused within refusalTTL.
func (a *authenticator) refusedBefore(sum [sha256.Size]byte) (error, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok := a.refusals[sum]
	if !ok {
		return nil, false
	}
	if !a.now().Before(r.expires) {
		delete(a.refusals, sum)
		return nil, false
	}
	return r.err, true
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

// maxCachedReviews bounds each cache: past it, expired entries are swept,
// and refusals beyond it are not remembered.
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
