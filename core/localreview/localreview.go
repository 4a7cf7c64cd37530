// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package localreview decides on projected service-account tokens as the
// API server's TokenReview does, without asking it for each token: it
// verifies the signature with the issuer's keys (found by OIDC discovery),
// the issuer, the audience and the token's times, and then, as the API
// server does for bound tokens, that the service account and the pod (or
// node) the token is bound to still exist with the token's UIDs, from
// metadata-only informers.
package localreview

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	authenticationclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// Leeway is the API server's allowance for clock skew on exp, nbf and iat,
// and how long after its deletionTimestamp a bound object still counts.
const Leeway = time.Minute

// signatureAlgorithms are those the API server accepts: RSA and ECDSA
// keys' own. none and HMAC are refused when the token is parsed.
var signatureAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
}

var (
	podsResource            = corev1.SchemeGroupVersion.WithResource("pods")
	serviceAccountsResource = corev1.SchemeGroupVersion.WithResource("serviceaccounts")
	nodesResource           = corev1.SchemeGroupVersion.WithResource("nodes")
)

// Options tune a Verifier; the zero value is the API server's behaviour.
type Options struct {
	// KeyMaxAge is how long the issuer's keys are used before they are
	// fetched again; an hour, the API server's Cache-Control, when zero.
	KeyMaxAge time.Duration
	// MinRefetch is the least time between two fetches caused by tokens
	// naming unknown keys; ten seconds when zero.
	MinRefetch time.Duration
	// Secrets reviews the tokens bound to a Secret, which the verifier
	// cannot see; without it they are refused.
	Secrets authenticationclient.TokenReviewInterface
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Verifier reviews tokens locally. Start it before the first Review.
type Verifier struct {
	keys      *keySet
	metadata  metadata.Interface
	informers metadatainformer.SharedInformerFactory
	indexers  map[schema.GroupVersionResource]cache.Indexer
	secrets   authenticationclient.TokenReviewInterface
	now       func() time.Time
	started   atomic.Bool
	verified  signatureCache
}

// SignatureCacheTTL is how long a token whose signature checked out is
// not checked again: its claims are kept, and its audiences, times and bound
// objects are still checked on every review. A key withdrawn from the
// issuer's set is trusted for at most this much longer, beside the key
// set's own refresh.
const SignatureCacheTTL = time.Minute

// maxVerifiedTokens bounds the signature cache; only tokens whose
// signature checked out enter it, so forged tokens cannot fill it.
const maxVerifiedTokens = 100_000

// verifiedToken is what a checked signature vouches for.
type verifiedToken struct {
	issuer  string
	claims  jwt.Claims
	private kubernetesClaims
	until   time.Time
}

type signatureCache struct {
	mu      sync.Mutex
	entries map[[sha256.Size]byte]verifiedToken
}

func (c *signatureCache) get(sum [sha256.Size]byte, issuer string, now time.Time) (verifiedToken, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.entries[sum]
	if !ok || t.issuer != issuer || !now.Before(t.until) {
		return verifiedToken{}, false
	}
	return t, true
}

func (c *signatureCache) put(sum [sha256.Size]byte, t verifiedToken, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[[sha256.Size]byte]verifiedToken{}
	}
	if len(c.entries) >= maxVerifiedTokens {
		for k, e := range c.entries {
			if !now.Before(e.until) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= maxVerifiedTokens {
			return
		}
	}
	c.entries[sum] = t
}

// New returns a verifier that reads keys through client (the API server's
// REST client) and objects through md.
func New(client rest.Interface, md metadata.Interface, opts Options) *Verifier {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.KeyMaxAge == 0 {
		opts.KeyMaxAge = time.Hour
	}
	if opts.MinRefetch == 0 {
		opts.MinRefetch = 10 * time.Second
	}
	return &Verifier{
		keys:      &keySet{client: client, maxAge: opts.KeyMaxAge, minRefetch: opts.MinRefetch, now: opts.Now},
		metadata:  md,
		informers: metadatainformer.NewSharedInformerFactory(md, 0),
		indexers:  map[schema.GroupVersionResource]cache.Indexer{},
		secrets:   opts.Secrets,
		now:       opts.Now,
	}
}

// Start fetches the issuer's keys and fills the informers of service
// accounts, pods and nodes, and returns once they hold the cluster's
// objects. The informers run until ctx ends.
func (v *Verifier) Start(ctx context.Context) error {
	if err := v.keys.fetch(ctx); err != nil {
		return err
	}
	for _, gvr := range []schema.GroupVersionResource{serviceAccountsResource, podsResource, nodesResource} {
		informer := v.informers.ForResource(gvr).Informer()
		if err := informer.SetTransform(keepIdentity); err != nil {
			return err
		}
		v.indexers[gvr] = informer.GetIndexer()
	}
	v.informers.Start(ctx.Done())
	for gvr, synced := range v.informers.WaitForCacheSync(ctx.Done()) {
		if !synced {
			return fmt.Errorf("list %s for local token verification: %w (the CA's service account needs list and watch on pods, serviceaccounts and nodes)", gvr.Resource, ctx.Err())
		}
	}
	v.started.Store(true)
	return nil
}

// keepIdentity strips an object's metadata down to what a review reads
// (name, namespace, UID, deletion time), so that a cluster's every pod costs
// the CA a few hundred bytes, not its labels, annotations and managed
// fields.
func keepIdentity(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil // a deletion's tombstone
	}
	return &metav1.PartialObjectMetadata{TypeMeta: m.TypeMeta, ObjectMeta: metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion, DeletionTimestamp: m.DeletionTimestamp,
	}}, nil
}

// kubernetesClaims are the claims the API server adds to bound tokens.
type kubernetesClaims struct {
	Kubernetes struct {
		Namespace      string     `json:"namespace"`
		ServiceAccount *objectRef `json:"serviceaccount"`
		Pod            *objectRef `json:"pod"`
		Node           *objectRef `json:"node"`
		Secret         *objectRef `json:"secret"`
	} `json:"kubernetes.io"`
}

type objectRef struct {
	Name string `json:"name"`
	UID  string `json:"uid"`
}

// refused is a decision that the token does not authenticate.
func refused(format string, args ...any) authenticationv1.TokenReviewStatus {
	return authenticationv1.TokenReviewStatus{Error: fmt.Sprintf(format, args...)}
}

// errInvalidBearer is the API server's answer to a token no authenticator
// claims.
const errInvalidBearer = "invalid bearer token"

// Review decides on token for audiences as a TokenReview of it would. It
// returns an error only when it cannot decide (the API server could not be
// read); a refusal is a status with Authenticated false and Error set.
func (v *Verifier) Review(ctx context.Context, token string, audiences []string) (authenticationv1.TokenReviewStatus, error) {
	if !v.started.Load() {
		return authenticationv1.TokenReviewStatus{}, ErrNotStarted
	}
	if strings.HasPrefix(strings.TrimSpace(token), "{") || strings.Count(token, ".") != 2 {
		return refused(errInvalidBearer), nil
	}
	issuer, keys, err := v.keys.current(ctx)
	if err != nil {
		return authenticationv1.TokenReviewStatus{}, err
	}
	sum := sha256.Sum256([]byte(token))
	t, ok := v.verified.get(sum, issuer, v.now())
	if !ok {
		var refusal *authenticationv1.TokenReviewStatus
		if t, refusal = v.verifySignature(ctx, token, issuer, keys); refusal != nil {
			return *refusal, nil
		}
		v.verified.put(sum, t, v.now())
	}
	return v.reviewClaims(ctx, token, audiences, issuer, t.claims, t.private)
}

// verifySignature parses token and checks its signature with the issuer's
// keys (fetched again once for an unknown kid). It returns the claims the
// signature vouches for, or the refusal.
func (v *Verifier) verifySignature(ctx context.Context, token, issuer string, keys jose.JSONWebKeySet) (verifiedToken, *authenticationv1.TokenReviewStatus) {
	refuse := func(format string, args ...any) (verifiedToken, *authenticationv1.TokenReviewStatus) {
		status := refused(format, args...)
		return verifiedToken{}, &status
	}
	parsed, err := jwt.ParseSigned(token, signatureAlgorithms)
	if err != nil || len(parsed.Headers) == 0 {
		return refuse(errInvalidBearer)
	}
	var unverified jwt.Claims
	if err := parsed.UnsafeClaimsWithoutVerification(&unverified); err != nil || unverified.Issuer != issuer {
		return refuse(errInvalidBearer)
	}

	candidates := keys.Keys
	kid := ""
	for _, h := range parsed.Headers {
		if h.KeyID != "" {
			kid = h.KeyID
			break
		}
	}
	if kid != "" {
		candidates = keys.Key(kid)
		if len(candidates) == 0 && v.keys.refetchFor(ctx, kid) {
			_, keys, _ = v.keys.current(ctx)
			candidates = keys.Key(kid)
		}
		if len(candidates) == 0 {
			return refuse("invalid signature, no keys found")
		}
	}
	t := verifiedToken{issuer: issuer, until: v.now().Add(SignatureCacheTTL)}
	verified := slices.ContainsFunc(candidates, func(k jose.JSONWebKey) bool {
		return parsed.Claims(k.Key, &t.claims, &t.private) == nil
	})
	if !verified || t.claims.Issuer != issuer {
		return refuse("invalid signature")
	}
	return t, nil
}

// reviewClaims decides on claims a signature vouched for: audiences, times,
// and the objects the token is bound to, as the API server does.
func (v *Verifier) reviewClaims(ctx context.Context, token string, audiences []string, issuer string, claims jwt.Claims, private kubernetesClaims) (authenticationv1.TokenReviewStatus, error) {

	// A token without aud carries the API server's own audiences, which
	// default to its issuer.
	tokenAudiences := []string(claims.Audience)
	if len(tokenAudiences) == 0 {
		tokenAudiences = []string{issuer}
	}
	var granted []string
	for _, a := range audiences {
		if slices.Contains(tokenAudiences, a) {
			granted = append(granted, a)
		}
	}
	if len(granted) == 0 {
		return refused("token audiences %q is invalid for the target audiences %q", tokenAudiences, audiences), nil
	}
	if err := claims.ValidateWithLeeway(jwt.Expected{Time: v.now()}, Leeway); err != nil {
		return refused("%v", err), nil
	}

	k := private.Kubernetes
	if k.Namespace == "" || k.ServiceAccount == nil || k.ServiceAccount.Name == "" || k.ServiceAccount.UID == "" {
		return refused("service account token claims are incomplete"), nil
	}
	if k.Secret != nil {
		// Bound to a Secret, which the verifier cannot see: only the API
		// server can decide.
		if v.secrets == nil {
			return refused("the token is bound to a Secret, which local verification cannot check"), nil
		}
		review, err := v.secrets.Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: audiences}}, metav1.CreateOptions{})
		if err != nil {
			return authenticationv1.TokenReviewStatus{}, err
		}
		return review.Status, nil
	}
	checks := []boundObject{{serviceAccountsResource, k.Namespace, k.ServiceAccount}}
	switch {
	case k.Pod != nil:
		checks = append(checks, boundObject{podsResource, k.Namespace, k.Pod})
	case k.Node != nil:
		checks = append(checks, boundObject{nodesResource, "", k.Node})
	}
	for _, c := range checks {
		reason, err := v.bound(ctx, c)
		if err != nil {
			return authenticationv1.TokenReviewStatus{}, err
		}
		if reason != "" {
			return refused("%s", reason), nil
		}
	}

	user := authenticationv1.UserInfo{
		Username: "system:serviceaccount:" + k.Namespace + ":" + k.ServiceAccount.Name,
		UID:      k.ServiceAccount.UID,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + k.Namespace, "system:authenticated"},
		Extra:    map[string]authenticationv1.ExtraValue{},
	}
	if k.Pod != nil {
		user.Extra["authentication.kubernetes.io/pod-name"] = authenticationv1.ExtraValue{k.Pod.Name}
		user.Extra["authentication.kubernetes.io/pod-uid"] = authenticationv1.ExtraValue{k.Pod.UID}
	}
	if k.Node != nil {
		user.Extra["authentication.kubernetes.io/node-name"] = authenticationv1.ExtraValue{k.Node.Name}
		if k.Node.UID != "" {
			user.Extra["authentication.kubernetes.io/node-uid"] = authenticationv1.ExtraValue{k.Node.UID}
		}
	}
	return authenticationv1.TokenReviewStatus{Authenticated: true, User: user, Audiences: granted}, nil
}

// boundObject is an object a token names, which must exist for it to
// authenticate: its service account, and its pod or node.
type boundObject struct {
	resource  schema.GroupVersionResource
	namespace string
	ref       *objectRef
}

// bound checks that the object b names exists with its UID and was not
// deleted more than Leeway ago. It returns why not, "" when it does, or an
// error when it cannot tell. Like the API server, it reads its informer
// first and the API server when the informer lacks the object (one
// created a moment ago).
func (v *Verifier) bound(ctx context.Context, b boundObject) (string, error) {
	gvr, namespace, ref := b.resource, b.namespace, b.ref
	kind := strings.TrimSuffix(gvr.Resource, "s")
	key := ref.Name
	if namespace != "" {
		key = namespace + "/" + ref.Name
	}
	var object metav1.Object
	if obj, found, err := v.indexers[gvr].GetByKey(key); err == nil && found {
		object, _ = obj.(metav1.Object)
	}
	if object == nil {
		live, err := v.metadata.Resource(gvr).Namespace(namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return fmt.Sprintf("%s %q not found", kind, key), nil
		}
		if err != nil {
			return "", fmt.Errorf("read %s %s: %w", kind, key, err)
		}
		object = live
	}
	if object.GetUID() != types.UID(ref.UID) {
		return fmt.Sprintf("%s %q: the token's UID %s is not the object's (%s): it was deleted and recreated", kind, key, ref.UID, object.GetUID()), nil
	}
	if deleted := object.GetDeletionTimestamp(); deleted != nil && deleted.Add(Leeway).Before(v.now()) {
		return fmt.Sprintf("%s %q was deleted at %s", kind, key, deleted.UTC().Format(time.RFC3339)), nil
	}
	return "", nil
}

// ErrNotStarted is returned by Review before Start has returned.
var ErrNotStarted = errors.New("local token verification has not started")
