// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package localreview_test

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/metadata"
	"k8s.io/utils/ptr"

	"github.com/meshcert/kubectl-meshcert/core/localreview"
	"github.com/meshcert/kubectl-meshcert/harness/localcluster"
	"github.com/meshcert/kubectl-meshcert/harness/localcluster/localclustertest"
)

func TestMain(m *testing.M) { localclustertest.Main(m) }

const audience = "meshcert-test"

// decision is what a review decided, in the terms both modes share.
type decision struct {
	Authenticated bool
	Username      string
	Audiences     []string
}

func decided(st authenticationv1.TokenReviewStatus) decision {
	if !st.Authenticated {
		return decision{}
	}
	return decision{Authenticated: true, Username: st.User.Username, Audiences: st.Audiences}
}

// tokenReview is the API server's decision on token.
func tokenReview(t *testing.T, c *localcluster.Cluster, token string) decision {
	review, err := c.Client.AuthenticationV1().TokenReviews().Create(t.Context(), &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: []string{audience}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	return decided(review.Status)
}

// localReview is local verification's decision on token.
func localReview(t *testing.T, v *localreview.Verifier, token string) decision {
	st, err := v.Review(t.Context(), token, []string{audience})
	require.NoError(t, err)
	return decided(st)
}

// jwtParts splits a token into its header and claims.
func jwtParts(t *testing.T, token string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	require.Len(t, parts, 3)
	for i, into := range []*map[string]any{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(raw, into))
	}
	return header, claims
}

func encode(t *testing.T, v any) string {
	data, err := json.Marshal(v)
	require.NoError(t, err)
	return base64.RawURLEncoding.EncodeToString(data)
}

// with returns claims with the top-level changes applied.
func with(claims map[string]any, changes map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range claims {
		out[k] = v
	}
	for k, v := range changes {
		out[k] = v
	}
	return out
}

func boundToken(t *testing.T, c *localcluster.Cluster, ns, sa string, ref *authenticationv1.BoundObjectReference) string {
	t.Helper()
	tr, err := c.Client.CoreV1().ServiceAccounts(ns).CreateToken(t.Context(), sa, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences: []string{audience}, ExpirationSeconds: ptr.To[int64](600), BoundObjectRef: ref}}, metav1.CreateOptions{})
	require.NoError(t, err)
	return tr.Status.Token
}

func podRef(p *corev1.Pod) *authenticationv1.BoundObjectReference {
	return &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: p.Name, UID: p.UID}
}

// TestSameDecisionsAsTokenReview feeds one corpus to the API server's
// TokenReview and to local verification, and requires the same decision,
// user and audiences for every token.
func TestSameDecisionsAsTokenReview(t *testing.T) {
	c := localclustertest.Bound(t)
	ns := localclustertest.UniqueName("localreview")
	localclustertest.EnsureNamespace(t, c, ns)
	ctx := t.Context()
	for _, sa := range []string{"web", "doomed"} {
		_, err := c.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	md, err := metadata.NewForConfig(c.Config)
	require.NoError(t, err)
	verifier := localreview.New(c.Client.CoreV1().RESTClient(), md, localreview.Options{Secrets: c.Client.AuthenticationV1().TokenReviews()})
	require.NoError(t, verifier.Start(ctx))

	pod := localclustertest.Pod(t, c, ns, "web-0", "web", "")
	valid := boundToken(t, c, ns, "web", podRef(pod))
	header, claims := jwtParts(t, valid)
	key := localclustertest.SigningKey(t, c)
	now := time.Now()
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)

	node, err := c.Client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: localclustertest.UniqueName("node")}}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Client.CoreV1().Nodes().Delete(context.Background(), node.Name, metav1.DeleteOptions{}) })
	secret, err := c.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "bound-to"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	legacy, err := c.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "web-legacy",
		Annotations: map[string]string{corev1.ServiceAccountNameKey: "web"}}, Type: corev1.SecretTypeServiceAccountToken}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		legacy, err = c.Client.CoreV1().Secrets(ns).Get(ctx, legacy.Name, metav1.GetOptions{})
		return err == nil && len(legacy.Data[corev1.ServiceAccountTokenKey]) > 0, nil
	}), "the tokens controller fills the legacy Secret")

	// A pod deleted at once, and one recreated under its name.
	gone := localclustertest.Pod(t, c, ns, "gone", "web", "")
	goneToken := boundToken(t, c, ns, "web", podRef(gone))
	require.NoError(t, c.Client.CoreV1().Pods(ns).Delete(ctx, gone.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}))
	again := localclustertest.Pod(t, c, ns, "again", "web", "")
	againToken := boundToken(t, c, ns, "web", podRef(again))
	require.NoError(t, c.Client.CoreV1().Pods(ns).Delete(ctx, again.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}))
	localclustertest.Pod(t, c, ns, "again", "web", "")
	// A pod terminating on its node: its tokens work until a minute past
	// its deletionTimestamp.
	terminating := localclustertest.Pod(t, c, ns, "terminating", "web", node.Name)
	terminatingToken := boundToken(t, c, ns, "web", podRef(terminating))
	require.NoError(t, c.Client.CoreV1().Pods(ns).Delete(ctx, terminating.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](30)}))
	// A service account deleted and recreated.
	doomedPod := localclustertest.Pod(t, c, ns, "doomed-0", "doomed", "")
	doomedToken := boundToken(t, c, ns, "doomed", podRef(doomedPod))
	require.NoError(t, c.Client.CoreV1().ServiceAccounts(ns).Delete(ctx, "doomed", metav1.DeleteOptions{}))
	_, err = c.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "doomed"}}, metav1.CreateOptions{})
	require.NoError(t, err)

	hs256 := func() string {
		pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
		require.NoError(t, err)
		signing := encode(t, map[string]any{"alg": "HS256", "kid": header["kid"]}) + "." + encode(t, claims)
		mac := hmac.New(sha256.New, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
		mac.Write([]byte(signing))
		return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	}

	tests := map[string]struct {
		token         string
		authenticated bool
	}{
		"valid, bound to a live pod":   {token: valid, authenticated: true},
		"expired 30 s ago (leeway)":    {token: localclustertest.SignTokenWithHeader(t, key, header, with(claims, map[string]any{"exp": now.Add(-30 * time.Second).Unix()})), authenticated: true},
		"expired 90 s ago":             {token: localclustertest.SignTokenWithHeader(t, key, header, with(claims, map[string]any{"exp": now.Add(-90 * time.Second).Unix()}))},
		"not valid for 30 s (leeway)":  {token: localclustertest.SignTokenWithHeader(t, key, header, with(claims, map[string]any{"nbf": now.Add(30 * time.Second).Unix()})), authenticated: true},
		"not valid for 90 s":           {token: localclustertest.SignTokenWithHeader(t, key, header, with(claims, map[string]any{"nbf": now.Add(90 * time.Second).Unix()}))},
		"issued 90 s from now":         {token: localclustertest.SignTokenWithHeader(t, key, header, with(claims, map[string]any{"iat": now.Add(90 * time.Second).Unix()}))},
		"wrong audience":               {token: localclustertest.SignTokenWithHeader(t, key, header, with(claims, map[string]any{"aud": []string{"someone-else"}}))},
		"wrong issuer":                 {token: localclustertest.SignTokenWithHeader(t, key, header, with(claims, map[string]any{"iss": "https://evil.example"}))},
		"forged, known kid":            {token: localclustertest.SignTokenWithHeader(t, otherKey, header, claims)},
		"forged, unknown kid":          {token: localclustertest.SignTokenWithHeader(t, otherKey, map[string]any{"alg": "RS256", "kid": "made-up"}, claims)},
		"no kid, real key":             {token: localclustertest.SignTokenWithHeader(t, key, map[string]any{"alg": "RS256"}, claims), authenticated: true},
		"alg none":                     {token: encode(t, map[string]any{"alg": "none", "kid": header["kid"]}) + "." + encode(t, claims) + "."},
		"HS256 keyed with the public":  {token: hs256()},
		"signature cut":                {token: valid[:strings.LastIndex(valid, ".")+1]},
		"not a JWT":                    {token: "hello"},
		"JSON instead of a JWT":        {token: `{"alg":"none"}.x.y`},
		"deleted pod":                  {token: goneToken},
		"recreated pod, new UID":       {token: againToken},
		"terminating pod, within 60 s": {token: terminatingToken, authenticated: true},
		"recreated service account":    {token: doomedToken},
		"bound to a node":              {token: boundToken(t, c, ns, "web", &authenticationv1.BoundObjectReference{Kind: "Node", APIVersion: "v1", Name: node.Name, UID: node.UID}), authenticated: true},
		"bound to a Secret":            {token: boundToken(t, c, ns, "web", &authenticationv1.BoundObjectReference{Kind: "Secret", APIVersion: "v1", Name: secret.Name, UID: secret.UID}), authenticated: true},
		"unbound":                      {token: boundToken(t, c, ns, "web", nil), authenticated: true},
		"legacy, Secret-based":         {token: string(legacy.Data[corev1.ServiceAccountTokenKey])},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			// The API server's informers see a deletion a moment after it:
			// wait until TokenReview's decision is the expected one, then
			// require local verification's to be the same.
			var review decision
			require.NoError(t, wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
				review = tokenReview(t, c, tc.token)
				return review.Authenticated == tc.authenticated, nil
			}), "TokenReview decided %+v", review)
			require.Equal(t, review, localReview(t, verifier, tc.token), "local verification decides as TokenReview")
			if tc.authenticated {
				require.Equal(t, []string{audience}, review.Audiences)
				require.Equal(t, "system:serviceaccount:"+ns+":web", review.Username)
			}
		})
	}
}

// BenchmarkReview is one local decision on a pod-bound token: the
// signature, the claims and two informer lookups.
// A token whose signature checked out is not checked again for a while, but
// every review still decides on its audiences, its times and the objects
// it is bound to.
func TestCheckedSignatureStillAnswersToAudienceTimeAndPod(t *testing.T) {
	c := localclustertest.Bound(t)
	ns := localclustertest.UniqueName("cached")
	localclustertest.EnsureNamespace(t, c, ns)
	_, err := c.Client.CoreV1().ServiceAccounts(ns).Create(t.Context(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "web"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	md, err := metadata.NewForConfig(c.Config)
	require.NoError(t, err)
	var later atomic.Bool
	now := func() time.Time {
		if later.Load() {
			return time.Now().Add(2 * 365 * 24 * time.Hour)
		}
		return time.Now()
	}
	verifier := localreview.New(c.Client.CoreV1().RESTClient(), md, localreview.Options{Now: now})
	require.NoError(t, verifier.Start(t.Context()))
	review := func(token string, audiences ...string) authenticationv1.TokenReviewStatus {
		st, err := verifier.Review(t.Context(), token, audiences)
		require.NoError(t, err)
		return st
	}

	pod := localclustertest.Pod(t, c, ns, "web-0", "web", "")
	token := localclustertest.Token(t, c, ns, "web", audience, pod)
	require.Eventually(t, func() bool { return review(token, audience).Authenticated }, 10*time.Second, 10*time.Millisecond)
	require.Contains(t, review(token, "another-audience").Error, "is invalid for the target audiences")

	later.Store(true)
	require.Contains(t, review(token, audience).Error, "expired")
	later.Store(false)
	require.True(t, review(token, audience).Authenticated)

	require.NoError(t, c.Client.CoreV1().Pods(ns).Delete(t.Context(), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}))
	require.Eventually(t, func() bool { return !review(token, audience).Authenticated }, 10*time.Second, 10*time.Millisecond,
		"a deleted pod's token is refused however recently its signature was checked")
}

func BenchmarkReview(b *testing.B) {
	c := localclustertest.Bound(b)
	ns := localclustertest.UniqueName("bench")
	localclustertest.EnsureNamespace(b, c, ns)
	_, err := c.Client.CoreV1().ServiceAccounts(ns).Create(b.Context(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "web"}}, metav1.CreateOptions{})
	require.NoError(b, err)
	pod := localclustertest.Pod(b, c, ns, "web-0", "web", "")
	token := localclustertest.Token(b, c, ns, "web", audience, pod)
	md, err := metadata.NewForConfig(c.Config)
	require.NoError(b, err)
	verifier := localreview.New(c.Client.CoreV1().RESTClient(), md, localreview.Options{})
	require.NoError(b, verifier.Start(b.Context()))
	require.Eventually(b, func() bool {
		st, err := verifier.Review(b.Context(), token, []string{audience})
		return err == nil && st.Authenticated
	}, 10*time.Second, 10*time.Millisecond)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if st, err := verifier.Review(context.Background(), token, []string{audience}); err != nil || !st.Authenticated {
				b.Errorf("refused: %v %s", err, st.Error)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reviews/s")
}

// BenchmarkInformerMemory reports the heap local verification holds per
// pod: it creates podCount pods, starts a verifier, and measures the heap
// before and after its informers have listed them. Each iteration is one
// verifier.
func BenchmarkInformerMemory(b *testing.B) {
	const podCount = 2000
	c := localclustertest.Bound(b)
	ns := localclustertest.UniqueName("memory")
	localclustertest.EnsureNamespace(b, c, ns)
	_, err := c.Client.CoreV1().ServiceAccounts(ns).Create(b.Context(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "web"}}, metav1.CreateOptions{})
	require.NoError(b, err)
	for i := range podCount {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("web-%04d", i), Labels: map[string]string{"app": "web", "pod-template-hash": "5d8f7c9b6"},
			Annotations: map[string]string{"kubectl.kubernetes.io/restartedAt": time.Now().Format(time.RFC3339)}},
			Spec: corev1.PodSpec{ServiceAccountName: "web", Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app"}}}}
		_, err = c.Client.CoreV1().Pods(ns).Create(b.Context(), pod, metav1.CreateOptions{})
		require.NoError(b, err)
	}
	b.Cleanup(func() {
		_ = c.Client.CoreV1().Pods(ns).DeleteCollection(context.Background(), metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}, metav1.ListOptions{})
	})
	md, err := metadata.NewForConfig(c.Config)
	require.NoError(b, err)
	var perPod float64
	for range b.N {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		ctx, stop := context.WithCancel(b.Context())
		verifier := localreview.New(c.Client.CoreV1().RESTClient(), md, localreview.Options{})
		require.NoError(b, verifier.Start(ctx))
		runtime.GC()
		runtime.ReadMemStats(&after)
		pods, err := c.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		require.NoError(b, err)
		perPod = float64(after.HeapInuse-min(after.HeapInuse, before.HeapInuse)) / float64(len(pods.Items))
		runtime.KeepAlive(verifier)
		stop()
	}
	b.ReportMetric(perPod, "heap-bytes/pod")
}
