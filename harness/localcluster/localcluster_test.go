// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package localcluster

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/meshcert/kubectl-meshcert/core/token"
)

const meshAudience = "istio-ca"

var (
	shared   = map[Profile]*Cluster{}
	sharedMu sync.Mutex
)

// clusterFor returns the cluster of a profile shared by the tests of this
// package, starting it on first use. TestMain stops them.
func clusterFor(t *testing.T, p Profile) *Cluster {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if c, ok := shared[p]; ok {
		return c
	}
	c, err := Start(context.Background(), Options{Profile: p})
	require.NoError(t, err)
	shared[p] = c
	return c
}

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		runHelper()
		return
	}
	code := m.Run()
	for _, c := range shared {
		_ = c.Stop()
	}
	os.Exit(code)
}

func createServiceAccount(t *testing.T, client kubernetes.Interface, ns, name string) *corev1.ServiceAccount {
	t.Helper()
	ctx := t.Context()
	_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
	sa, err := client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	require.NoError(t, err)
	return sa
}

func requestToken(t *testing.T, client kubernetes.Interface, ns, sa string, seconds int64, bound *authenticationv1.BoundObjectReference) string {
	t.Helper()
	tr, err := client.CoreV1().ServiceAccounts(ns).CreateToken(t.Context(), sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			Audiences:         []string{meshAudience},
			ExpirationSeconds: ptr.To(seconds),
			BoundObjectRef:    bound,
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	return tr.Status.Token
}

func review(t *testing.T, client kubernetes.Interface, tok string, audiences ...string) authenticationv1.TokenReviewStatus {
	t.Helper()
	r, err := client.AuthenticationV1().TokenReviews().Create(t.Context(), &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: tok, Audiences: audiences},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	return r.Status
}

func TestTokenRequestClaims(t *testing.T) {
	c := clusterFor(t, ProfileBound)
	createServiceAccount(t, c.Client, "shop", "cart")

	before := time.Now().Truncate(time.Second)
	raw := requestToken(t, c.Client, "shop", "cart", 600, nil)

	claims, err := token.Decode(raw)
	require.NoError(t, err)
	require.Equal(t, DefaultIssuer, claims.Issuer)
	require.Equal(t, c.Issuer, claims.Issuer)
	require.Equal(t, []string{meshAudience}, claims.Audiences)
	require.Equal(t, "shop", claims.Namespace)
	require.Equal(t, "cart", claims.ServiceAccount)
	require.WithinDuration(t, before.Add(600*time.Second), claims.Expiry, 5*time.Second)

	a := token.Classify(claims, token.Options{ExpectedAudience: meshAudience})
	require.True(t, a.Trustworthy)
	require.True(t, a.Usable)
	require.True(t, a.Has(token.NotBoundToPod))

	wrong := token.Classify(claims, token.Options{ExpectedAudience: "spire-server"})
	require.True(t, wrong.Has(token.AudienceMismatch))
	require.ErrorIs(t, wrong.Err(), token.ErrUnusable)
}

func TestTokenReviewAudience(t *testing.T) {
	c := clusterFor(t, ProfileBound)
	createServiceAccount(t, c.Client, "review", "api")
	raw := requestToken(t, c.Client, "review", "api", 600, nil)

	ok := review(t, c.Client, raw, meshAudience)
	require.True(t, ok.Authenticated, ok.Error)
	require.Equal(t, "system:serviceaccount:review:api", ok.User.Username)
	require.Contains(t, ok.User.Groups, "system:serviceaccounts")
	require.Contains(t, ok.User.Groups, "system:serviceaccounts:review")
	require.Equal(t, []string{meshAudience}, ok.Audiences)

	wrong := review(t, c.Client, raw, "spire-server")
	require.False(t, wrong.Authenticated)
	require.Contains(t, wrong.Error, "audience")
}

func TestUserTokenIsNoServiceAccount(t *testing.T) {
	c := clusterFor(t, ProfileBound)
	require.NotEmpty(t, c.UserToken)
	st := review(t, c.Client, c.UserToken)
	require.True(t, st.Authenticated, st.Error)
	require.Equal(t, "alice", st.User.Username)
	require.NotContains(t, st.User.Groups, "system:serviceaccounts")
	require.FileExists(t, c.SigningKeyFile)
}

func TestPodBoundTokenRefusedAfterPodDeleted(t *testing.T) {
	c := clusterFor(t, ProfileBound)
	ctx := t.Context()
	createServiceAccount(t, c.Client, "bound", "web")
	pod, err := c.Client.CoreV1().Pods("bound").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0"},
		Spec: corev1.PodSpec{
			ServiceAccountName: "web",
			Containers:         []corev1.Container{{Name: "app", Image: "example.invalid/app"}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	raw := requestToken(t, c.Client, "bound", "web", 600, &authenticationv1.BoundObjectReference{
		Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID,
	})
	claims, err := token.Decode(raw)
	require.NoError(t, err)
	require.Equal(t, "web-0", claims.Pod)
	require.Equal(t, string(pod.UID), claims.PodUID)
	require.True(t, token.Classify(claims, token.Options{ExpectedAudience: meshAudience}).Has(token.BoundToPod))
	require.True(t, review(t, c.Client, raw, meshAudience).Authenticated)

	require.NoError(t, c.Client.CoreV1().Pods("bound").Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}))
	deleted := time.Now()

	// The API server caches successful authentications for up to 10s.
	var last authenticationv1.TokenReviewStatus
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 20*time.Second, true, func(context.Context) (bool, error) {
		last = review(t, c.Client, raw, meshAudience)
		return !last.Authenticated, nil
	})
	require.NoError(t, err, "the pod-bound token still authenticated 20s after its pod was deleted")
	t.Logf("pod-bound token refused %s after the pod was deleted: %s", time.Since(deleted).Round(time.Millisecond), last.Error)
}

func TestLegacyProfileHasNoTokenRequest(t *testing.T) {
	tests := map[string]struct {
		profile       Profile
		wantSubsource bool
	}{
		"bound lists serviceaccounts/token":          {profile: ProfileBound, wantSubsource: true},
		"legacy does not list serviceaccounts/token": {profile: ProfileLegacy, wantSubsource: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := clusterFor(t, tc.profile)
			resources, err := c.Client.Discovery().ServerResourcesForGroupVersion("v1")
			require.NoError(t, err)
			listed := slices.ContainsFunc(resources.APIResources, func(r metav1.APIResource) bool { return r.Name == "serviceaccounts/token" })
			require.Equal(t, tc.wantSubsource, listed)
		})
	}

	c := clusterFor(t, ProfileLegacy)
	createServiceAccount(t, c.Client, "old", "app")
	_, err := c.Client.CoreV1().ServiceAccounts("old").CreateToken(t.Context(), "app", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: []string{meshAudience}},
	}, metav1.CreateOptions{})
	require.True(t, apierrors.IsNotFound(err), "TokenRequest on the legacy profile must answer 404, got %v", err)
}

func TestLegacySecretTokenFilledAndReviewable(t *testing.T) {
	for _, p := range Profiles {
		t.Run(string(p), func(t *testing.T) {
			c := clusterFor(t, p)
			ctx := t.Context()
			ns := "legacy-secret"
			createServiceAccount(t, c.Client, ns, "worker")
			_, err := c.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: "worker-token", Annotations: map[string]string{corev1.ServiceAccountNameKey: "worker"}},
				Type:       corev1.SecretTypeServiceAccountToken,
			}, metav1.CreateOptions{})
			require.NoError(t, err)

			var raw string
			err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
				s, err := c.Client.CoreV1().Secrets(ns).Get(ctx, "worker-token", metav1.GetOptions{})
				if err != nil {
					return false, err
				}
				raw = string(s.Data[corev1.ServiceAccountTokenKey])
				return raw != "" && len(s.Data[corev1.ServiceAccountRootCAKey]) > 0, nil
			})
			require.NoError(t, err, "the tokens controller did not fill the Secret")

			claims, err := token.Decode(raw)
			require.NoError(t, err)
			require.Equal(t, token.LegacyIssuer, claims.Issuer)
			require.False(t, claims.HasAudienceClaim)
			require.False(t, claims.HasExpirationClaim)
			require.Equal(t, "worker-token", claims.SecretName)
			a := token.Classify(claims, token.Options{ExpectedAudience: meshAudience})
			require.False(t, a.Trustworthy)
			for _, code := range []token.Code{token.MissingAudience, token.MissingExpiry, token.LegacyIssuerFound} {
				require.True(t, a.Has(code), "missing finding %s", code)
			}
			require.ErrorContains(t, a.Err(), "TokenRequest")

			status := review(t, c.Client, raw)
			require.True(t, status.Authenticated, status.Error)
			require.Equal(t, "system:serviceaccount:"+ns+":worker", status.User.Username)
		})
	}
}

func TestIssuerDiscoveryServed(t *testing.T) {
	for _, p := range Profiles {
		t.Run(string(p), func(t *testing.T) {
			c := clusterFor(t, p)
			ctx := t.Context()
			discovery, err := c.Client.CoreV1().RESTClient().Get().AbsPath("/.well-known/openid-configuration").DoRaw(ctx)
			require.NoError(t, err)
			var doc struct {
				Issuer  string `json:"issuer"`
				JWKSURI string `json:"jwks_uri"`
			}
			require.NoError(t, json.Unmarshal(discovery, &doc))
			require.Equal(t, DefaultIssuer, doc.Issuer)

			jwks, err := c.Client.CoreV1().RESTClient().Get().AbsPath("/openid/v1/jwks").DoRaw(ctx)
			require.NoError(t, err)
			var keys struct {
				Keys []map[string]any `json:"keys"`
			}
			require.NoError(t, json.Unmarshal(jwks, &keys))
			require.Len(t, keys.Keys, 1)
			require.Equal(t, "RS256", keys.Keys[0]["alg"])
		})
	}
}

func TestTwoClustersAtOnceAndStop(t *testing.T) {
	started := make([]*Cluster, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	begin := time.Now()
	for i, p := range Profiles {
		wg.Go(func() { started[i], errs[i] = Start(t.Context(), Options{Profile: p}) })
	}
	wg.Wait()
	for i := range started {
		if started[i] != nil {
			defer func() { require.NoError(t, started[i].Stop()) }()
		}
		require.NoError(t, errs[i])
	}
	t.Logf("two clusters ready in %s", time.Since(begin).Round(time.Millisecond))

	a, b := started[0], started[1]
	require.NotEqual(t, a.Host, b.Host)
	_, err := a.Client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "only-in-a"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = b.Client.CoreV1().Namespaces().Get(t.Context(), "only-in-a", metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err), "clusters must not share state: %v", err)

	for _, c := range started {
		pid, dir := c.PID(), c.Dir()
		host, err := url.Parse(c.Host)
		require.NoError(t, err)
		require.NoError(t, c.Stop())
		require.NoError(t, c.Stop(), "Stop must be idempotent")
		require.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "the control plane process is still alive")
		require.NoDirExists(t, dir)
		conn, err := net.DialTimeout("tcp", host.Host, time.Second)
		if err == nil {
			conn.Close()
		}
		require.Error(t, err, "the API server port still accepts connections after Stop")
	}
}

func TestMissingBinaryIsExplained(t *testing.T) {
	_, err := Start(t.Context(), Options{Binary: "/nonexistent/meshcert-controlplane"})
	require.ErrorIs(t, err, ErrBinaryNotFound)
	require.ErrorContains(t, err, "make controlplane")

	t.Setenv(BinaryEnv, t.TempDir())
	_, err = Start(t.Context(), Options{})
	require.ErrorContains(t, err, "is not an executable file")
}

func TestUnknownProfile(t *testing.T) {
	_, err := Start(t.Context(), Options{Profile: "ancient"})
	require.EqualError(t, err, `unknown profile "ancient": use "bound" or "legacy"`)
}

const helperEnv = "MESHCERT_LOCALCLUSTER_HELPER"

// runHelper starts a cluster, prints its PID and waits to be killed. The
// test below kills it with SIGKILL, as a crashed test binary would die.
func runHelper() {
	c, err := Start(context.Background(), Options{})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println(c.PID())
	select {}
}

func TestControlPlaneDiesWithItsParent(t *testing.T) {
	self, err := os.Executable()
	require.NoError(t, err)
	helper := exec.Command(self, "-test.run=^$")
	helper.Env = append(os.Environ(), helperEnv+"=1")
	out, err := helper.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, helper.Start())
	defer func() { _ = helper.Process.Kill() }() // it may have exited already

	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	require.NoError(t, err, "helper printed %q", line)
	require.NoError(t, syscall.Kill(pid, 0), "the control plane should be running")

	require.NoError(t, helper.Process.Kill())
	_ = helper.Wait()
	killed := time.Now()
	err = wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		// The orphan is reparented; once it exits and is reaped, Kill fails.
		return syscall.Kill(pid, 0) == syscall.ESRCH || isZombie(pid), nil
	})
	require.NoError(t, err, "the control plane outlived its killed parent")
	t.Logf("control plane exited %s after its parent was killed", time.Since(killed).Round(time.Millisecond))
}

func isZombie(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	return len(fields) > 0 && fields[0] == "Z"
}

// A restart is a new control-plane process on the same directory: what
// was stored, the tokens issued and the clients made before all still work.
func TestRestartKeepsStateTokensAndClients(t *testing.T) {
	c, err := Start(t.Context(), Options{})
	require.NoError(t, err)
	defer func() { require.NoError(t, c.Stop()) }()
	createServiceAccount(t, c.Client, "kept", "app")
	tok := requestToken(t, c.Client, "kept", "app", 3600, nil)
	pid, host, client := c.PID(), c.Host, c.Client

	require.NoError(t, c.Restart(t.Context()))
	require.NotEqual(t, pid, c.PID(), "Restart must run a new process")
	require.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "the old control plane process is still alive")
	require.Equal(t, host, c.Host)
	_, err = client.CoreV1().ServiceAccounts("kept").Get(t.Context(), "app", metav1.GetOptions{})
	require.NoError(t, err, "the service account created before the restart")
	status := review(t, client, tok, "istio-ca")
	require.True(t, status.Authenticated, "a token issued before the restart: %s", status.Error)
	require.Equal(t, "system:serviceaccount:kept:app", status.User.Username)
}
