// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package localreview

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	testingclock "k8s.io/utils/clock/testing"
)

// issuer serves a discovery document and a key set that a test can change,
// and counts the key set's fetches.
type issuer struct {
	mu      sync.Mutex
	keys    jose.JSONWebKeySet
	fail    bool
	fetches atomic.Int32
}

func (i *issuer) serve(w http.ResponseWriter, r *http.Request) {
	i.mu.Lock()
	defer i.mu.Unlock()
	switch r.URL.Path {
	case discoveryPath:
		// The jwks_uri names the issuer's own address; the path is what counts.
		_ = json.NewEncoder(w).Encode(discovery{Issuer: "https://issuer.example", JWKSURI: "https://issuer.example/openid/v1/jwks"})
	case "/openid/v1/jwks":
		i.fetches.Add(1)
		if i.fail {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(i.keys)
	default:
		http.NotFound(w, r)
	}
}

func (i *issuer) publish(kids ...string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys = jose.JSONWebKeySet{}
	for _, kid := range kids {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		i.keys.Keys = append(i.keys.Keys, jose.JSONWebKey{Key: key.Public(), KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"})
	}
}

func newKeySet(t *testing.T, i *issuer, clock *testingclock.FakeClock) *keySet {
	srv := httptest.NewServer(http.HandlerFunc(i.serve))
	t.Cleanup(srv.Close)
	client, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL})
	require.NoError(t, err)
	return &keySet{client: client.CoreV1().RESTClient(), maxAge: time.Hour, minRefetch: 10 * time.Second, now: clock.Now}
}

func TestKeySetFetchesByDiscoveryAndAgainWhenNeeded(t *testing.T) {
	clock := testingclock.NewFakeClock(time.Now())
	i := &issuer{}
	i.publish("old")
	keys := newKeySet(t, i, clock)
	ctx := t.Context()

	iss, set, err := keys.current(ctx)
	require.NoError(t, err)
	require.Equal(t, "https://issuer.example", iss, "the issuer comes from discovery")
	require.Len(t, set.Key("old"), 1)
	require.Equal(t, int32(1), i.fetches.Load())

	// The issuer adds a key: a token naming it makes the set fetch again.
	i.publish("old", "new")
	clock.Step(11 * time.Second)
	require.True(t, keys.refetchFor(ctx, "new"), "an unknown kid fetches the keys again")
	require.Equal(t, int32(2), i.fetches.Load())

	// Made-up kids fetch at most once every minRefetch.
	require.False(t, keys.refetchFor(ctx, "made-up"))
	require.False(t, keys.refetchFor(ctx, "made-up-too"))
	require.Equal(t, int32(2), i.fetches.Load(), "no fetch within minRefetch of the last")
	clock.Step(11 * time.Second)
	require.False(t, keys.refetchFor(ctx, "made-up"))
	require.Equal(t, int32(3), i.fetches.Load())

	// Past maxAge the keys are fetched again; a failed fetch keeps them.
	i.mu.Lock()
	i.fail = true
	i.mu.Unlock()
	clock.Step(2 * time.Hour)
	_, set, err = keys.current(ctx)
	require.NoError(t, err, "a failed refresh keeps the keys it had")
	require.Len(t, set.Key("new"), 1)
	require.Equal(t, int32(4), i.fetches.Load())
	_, _, err = keys.current(ctx)
	require.NoError(t, err)
	require.Equal(t, int32(4), i.fetches.Load(), "an unreadable issuer is tried again at most every minRefetch")
	i.mu.Lock()
	i.fail = false
	i.mu.Unlock()
	clock.Step(11 * time.Second)
	_, _, err = keys.current(ctx)
	require.NoError(t, err)
	require.Equal(t, int32(5), i.fetches.Load())
	_, _, err = keys.current(ctx)
	require.NoError(t, err)
	require.Equal(t, int32(5), i.fetches.Load(), "fresh keys again")
}

func TestKeySetFirstFetchFailureNamesTheCause(t *testing.T) {
	i := &issuer{fail: true}
	keys := newKeySet(t, i, testingclock.NewFakeClock(time.Now()))
	_, _, err := keys.current(t.Context())
	require.ErrorContains(t, err, "read the issuer's keys /openid/v1/jwks")
}

func TestInformersKeepOnlyWhatAReviewReads(t *testing.T) {
	deleted := metav1.NewTime(time.Now())
	pod := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{
		Name: "web-0", Namespace: "shop", UID: "u-1", ResourceVersion: "7", DeletionTimestamp: &deleted,
		Labels: map[string]string{"app": "web"}, Annotations: map[string]string{"big": strings.Repeat("x", 4096)},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}, OwnerReferences: []metav1.OwnerReference{{Name: "web"}},
	}}
	kept, err := keepIdentity(pod)
	require.NoError(t, err)
	require.Equal(t, &metav1.PartialObjectMetadata{TypeMeta: pod.TypeMeta, ObjectMeta: metav1.ObjectMeta{
		Name: "web-0", Namespace: "shop", UID: "u-1", ResourceVersion: "7", DeletionTimestamp: &deleted}}, kept)
	tombstone := cache.DeletedFinalStateUnknown{Key: "shop/web-0"}
	kept, err = keepIdentity(tombstone)
	require.NoError(t, err)
	require.Equal(t, tombstone, kept)
}
