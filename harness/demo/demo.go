// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package demo shows, on the embedded control plane, the difference the mesh
// is built on: a cluster with bound tokens issues trustworthy JWTs, a legacy
// cluster only secret-based ones. For each profile it starts a cluster,
// mints the best token the cluster can give a workload, classifies it and
// has the API server review it.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/meshcert/kubectl-meshcert/core/identity"
	"github.com/meshcert/kubectl-meshcert/core/token"
	"github.com/meshcert/kubectl-meshcert/harness/localcluster"
)

// Options configure Run.
type Options struct {
	Audience  string
	Namespace string
	Account   string
	Out       io.Writer
}

// Result is what the demo saw on one profile.
type Result struct {
	Profile       localcluster.Profile
	StartTime     time.Duration
	TokenRequest  string
	TokenSource   string
	Assessment    token.Assessment
	ReviewedUser  string
	ReviewError   string
	Identity      identity.ID
	RecommendPath string
}

// Run walks both profiles and writes a report to opts.Out. It fails if a
// profile does not behave as its kind of cluster must.
func Run(ctx context.Context, opts Options) ([]Result, error) {
	if opts.Audience == "" {
		opts.Audience = "istio-ca"
	}
	if opts.Namespace == "" {
		opts.Namespace = "demo"
	}
	if opts.Account == "" {
		opts.Account = "productpage"
	}
	var results []Result
	for _, p := range localcluster.Profiles {
		r, err := runProfile(ctx, p, opts)
		if err != nil {
			return results, fmt.Errorf("profile %s: %w", p, err)
		}
		results = append(results, r)
		report(opts.Out, r)
	}
	return results, nil
}

func runProfile(ctx context.Context, p localcluster.Profile, opts Options) (Result, error) {
	r := Result{Profile: p}
	begin := time.Now()
	cluster, err := localcluster.Start(ctx, localcluster.Options{Profile: p})
	if err != nil {
		return r, err
	}
	defer cluster.Stop()
	r.StartTime = time.Since(begin)
	client := cluster.Client

	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: opts.Namespace}}, metav1.CreateOptions{}); err != nil {
		return r, err
	}
	if _, err := client.CoreV1().ServiceAccounts(opts.Namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: opts.Account}}, metav1.CreateOptions{}); err != nil {
		return r, err
	}

	raw, err := mintProjected(ctx, client, opts)
	switch {
	case err == nil:
		r.TokenRequest = "served"
		r.TokenSource = "TokenRequest (audience " + opts.Audience + ", 10m)"
	case apierrors.IsNotFound(err):
		r.TokenRequest = "404 Not Found"
		r.TokenSource = "legacy Secret of type " + string(corev1.SecretTypeServiceAccountToken)
		if raw, err = mintLegacy(ctx, client, opts); err != nil {
			return r, err
		}
	default:
		return r, fmt.Errorf("TokenRequest: %w", err)
	}

	claims, err := token.Decode(raw)
	if err != nil {
		return r, err
	}
	r.Assessment = token.Classify(claims, token.Options{ExpectedAudience: opts.Audience})

	reviewAudiences := []string{opts.Audience}
	if !claims.HasAudienceClaim {
		// A legacy token carries no audience; review it as the API server
		// itself would accept it.
		reviewAudiences = nil
	}
	tr, err := client.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: raw, Audiences: reviewAudiences},
	}, metav1.CreateOptions{})
	if err != nil {
		return r, fmt.Errorf("TokenReview: %w", err)
	}
	if !tr.Status.Authenticated {
		return r, fmt.Errorf("the API server refused its own token: %s", tr.Status.Error)
	}
	r.ReviewedUser = tr.Status.User.Username
	ns, sa, ok := token.SplitServiceAccountUsername(tr.Status.User.Username)
	if !ok {
		return r, fmt.Errorf("reviewed user %q is not a service account", tr.Status.User.Username)
	}
	if r.Identity, err = identity.New(identity.DefaultTrustDomain, ns, sa); err != nil {
		return r, err
	}

	r.RecommendPath = "file-mount"
	if r.Assessment.Usable {
		r.RecommendPath = "sds"
	}
	want := map[localcluster.Profile]string{localcluster.ProfileBound: "sds", localcluster.ProfileLegacy: "file-mount"}[p]
	if r.RecommendPath != want {
		return r, fmt.Errorf("expected path %s, concluded %s: %v", want, r.RecommendPath, r.Assessment.Err())
	}
	return r, nil
}

func mintProjected(ctx context.Context, client kubernetes.Interface, opts Options) (string, error) {
	tr, err := client.CoreV1().ServiceAccounts(opts.Namespace).CreateToken(ctx, opts.Account, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: []string{opts.Audience}, ExpirationSeconds: ptr.To[int64](600)},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return tr.Status.Token, nil
}

func mintLegacy(ctx context.Context, client kubernetes.Interface, opts Options) (string, error) {
	name := opts.Account + "-token"
	_, err := client.CoreV1().Secrets(opts.Namespace).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{corev1.ServiceAccountNameKey: opts.Account}},
		Type:       corev1.SecretTypeServiceAccountToken,
	}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	var raw string
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 15*time.Second, true, func(ctx context.Context) (bool, error) {
		s, err := client.CoreV1().Secrets(opts.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		raw = string(s.Data[corev1.ServiceAccountTokenKey])
		return raw != "", nil
	})
	if err != nil {
		return "", errors.New("the tokens controller did not fill the legacy token Secret within 15s")
	}
	return raw, nil
}

func report(out io.Writer, r Result) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "== profile %s (cluster ready in %s)\n", r.Profile, r.StartTime.Round(time.Millisecond))
	fmt.Fprintf(w, "TokenRequest:\t%s\n", r.TokenRequest)
	fmt.Fprintf(w, "token from:\t%s\n", r.TokenSource)
	fmt.Fprintf(w, "trustworthy:\t%t\n", r.Assessment.Trustworthy)
	for _, f := range r.Assessment.Findings {
		mark := "info"
		if f.Blocking {
			mark = "BLOCKING"
		}
		fmt.Fprintf(w, "  %s\t%s: %s\n", mark, f.Code, f.Message)
	}
	fmt.Fprintf(w, "TokenReview:\tauthenticated as %s\n", r.ReviewedUser)
	fmt.Fprintf(w, "identity:\t%s\n", r.Identity)
	fmt.Fprintf(w, "certificate path:\t%s\n", r.RecommendPath)
	if err := r.Assessment.Err(); err != nil {
		fmt.Fprintf(w, "why:\t%s\n", strings.TrimSpace(err.Error()))
	}
	fmt.Fprintln(w)
	_ = w.Flush()
}
