// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package preflight checks whether a cluster can serve the mesh, and how
// the installed mesh is doing: it mints a real projected token for a probe
// service account, has the API server review it and reads its claims;
// before install it asks whether the caller may install; after, it checks
// the CA and its leader, the node agents on every node, the roots and
// their ConfigMaps, version skew and the workloads' certificates. It
// recommends the certificate path, sds or file-mount.
package preflight

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/utils/ptr"

	"github.com/meshcert/kubectl-meshcert/core/fleet"
	"github.com/meshcert/kubectl-meshcert/core/kubeapi"
	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/core/token"
)

// Statuses of one check.
const (
	Pass = "PASS"
	Warn = "WARN"
	Fail = "FAIL"
)

// Groups of checks, in the order they run and print.
const (
	GroupKubernetes = "kubernetes"
	GroupTokens     = "tokens"
	GroupCA         = "ca"
	GroupAgents     = "agents"
	GroupRoots      = "roots"
	GroupWorkloads  = "workloads"
)

// Result is the preflight's outcome; check prints it as JSON. Field names
// are stable.
type Result struct {
	Server          string  `json:"server"`
	TrustworthyJWT  bool    `json:"trustworthyJWT"`
	RecommendedPath string  `json:"recommendedPath"`
	Checks          []Check `json:"checks"`
	Failed          int     `json:"failed"`
	Warnings        int     `json:"warnings"`
}

// Check is one line of the preflight.
type Check struct {
	Group   string `json:"group"`
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}

// Failing lists the names of the checks that failed.
func (r *Result) Failing() []string {
	var names []string
	for _, c := range r.Checks {
		if c.Status == Fail {
			names = append(names, c.Name)
		}
	}
	return names
}

// recorder appends checks to a result in one group at a time.
type recorder struct {
	result *Result
	group  string
}

func (r *recorder) add(name, status, message, fix string) {
	r.result.Checks = append(r.result.Checks, Check{Group: r.group, Name: name, Status: status, Message: message, Fix: fix})
	switch status {
	case Fail:
		r.result.Failed++
	case Warn:
		r.result.Warnings++
	}
}

// Options say where to probe.
type Options struct {
	// Server is the API server's address, reported as it is.
	Server string
	// Namespace is where the probe service account is made, and where the
	// root ConfigMap is looked for.
	Namespace string
	// Audience is the mesh audience tokens must carry; token.DefaultAudience
	// when empty.
	Audience string
	// CANamespace is where the mesh CA runs; mesh.DefaultNamespace when
	// empty.
	CANamespace string
	// Pre runs only what matters before install: the API, tokens and the
	// permissions install needs. Otherwise the installed mesh is checked too.
	Pre bool
	// RequireSDS makes a cluster that cannot issue trustworthy tokens a
	// failure rather than a warning; so does an installed node agent.
	RequireSDS bool
	// ExpiryWarning is how close to its expiry the root warns;
	// DefaultExpiryWarning when zero.
	ExpiryWarning time.Duration
	// ClientVersion is the plugin's version, compared with the installed
	// images'.
	ClientVersion string
	// Now is the time the checks judge expiry at; time.Now when zero.
	Now time.Time
}

// DefaultExpiryWarning is how long before the root expires check warns, as
// the RootCertificateExpiringSoon alert does.
const DefaultExpiryWarning = 90 * 24 * time.Hour

// probe is the clients and namespace the checks run with.
type probe struct {
	client    kubernetes.Interface
	metadata  metadata.Interface
	namespace string
}

const issuerFix = "start kube-apiserver with --service-account-issuer=https://kubernetes.default.svc.cluster.local, --service-account-signing-key-file=<key> and --api-audiences=<issuer>, then retry; until then use the file-mount path"

// Run runs every check against the cluster. With o.Pre, c.Metadata may be
// nil: it lists the workloads of an installed mesh.
func Run(ctx context.Context, c fleet.Cluster, o Options) (*Result, error) {
	if o.Audience == "" {
		o.Audience = token.DefaultAudience
	}
	if o.CANamespace == "" {
		o.CANamespace = mesh.DefaultNamespace
	}
	if o.ExpiryWarning == 0 {
		o.ExpiryWarning = DefaultExpiryWarning
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	p := probe{client: c.Client, metadata: c.Metadata, namespace: o.Namespace}
	r := &Result{Server: o.Server}
	rec := &recorder{result: r, group: GroupKubernetes}

	version, err := p.client.Discovery().ServerVersion()
	if err != nil {
		return nil, kubeapi.Explain(err, "read the server version")
	}
	rec.add("server-version", Pass, "Kubernetes "+version.GitVersion, "")
	var installation *installation
	if o.Pre {
		installPermissions(ctx, p.client, o.CANamespace, rec)
	} else {
		installation = readInstallation(ctx, p.client, o.CANamespace)
		o.RequireSDS = o.RequireSDS || installation.mode == mesh.ModeSDS
	}

	rec.group = GroupTokens
	checkTokens(ctx, p, o, rec)
	r.RecommendedPath, _ = mesh.ResolveMode(mesh.ModeAuto, r.TrustworthyJWT)
	if installation != nil {
		checkInstallation(ctx, p, o, installation, rec)
	}
	return r, nil
}

// checkTokens mints, reviews and reads a real token. Without trustworthy
// tokens only the file-mount path works: that is a failure when SDS is
// required or installed, and a warning otherwise.
func checkTokens(ctx context.Context, c probe, o Options, rec *recorder) {
	unusable := Warn
	if o.RequireSDS {
		unusable = Fail
	}
	tokenAPI := false
	if resources, err := c.client.Discovery().ServerResourcesForGroupVersion("v1"); err != nil {
		rec.add("token-request-api", Warn, "cannot read API discovery: "+err.Error(), "")
	} else if slices.ContainsFunc(resources.APIResources, func(r metav1.APIResource) bool { return r.Name == "serviceaccounts/token" }) {
		tokenAPI = true
		rec.add("token-request-api", Pass, "serviceaccounts/token is served", "")
	} else {
		rec.add("token-request-api", unusable, "serviceaccounts/token is not in API discovery: the cluster cannot issue projected tokens, so only the file-mount path works", issuerFix)
	}

	claims, raw, cleanup := probeToken(ctx, c, o.Audience, tokenAPI, unusable, rec)
	defer cleanup()
	if claims != nil {
		reviewed := reviewToken(ctx, c, raw, o.Audience, unusable, rec)
		assessment := token.Classify(claims, token.Options{ExpectedAudience: o.Audience})
		var missing []string
		if !claims.HasAudienceClaim {
			missing = append(missing, "aud")
		}
		if !claims.HasExpirationClaim {
			missing = append(missing, "exp")
		}
		switch {
		case len(missing) > 0:
			rec.add("token-claims", unusable, "the token lacks "+strings.Join(missing, " and "), issuerFix)
		default:
			bound := "binding to objects (pods) works"
			if claims.SecretName == "" {
				bound = "binding to objects was not confirmed"
			}
			rec.add("token-claims", Pass, fmt.Sprintf("aud=%s, exp in %s, issuer %s; %s", strings.Join(claims.Audiences, ","),
				time.Until(claims.Expiry).Round(time.Minute), claims.Issuer, bound), "")
		}
		rec.result.TrustworthyJWT = assessment.Usable && reviewed
	}

	if _, err := c.client.CoreV1().RESTClient().Get().AbsPath("/.well-known/openid-configuration").DoRaw(ctx); err != nil {
		rec.add("issuer-discovery", Warn, "the issuer discovery document is not served: "+firstLine(err.Error()),
			"set --service-account-issuer to an https URL on kube-apiserver (discovery is optional for the mesh)")
	} else {
		rec.add("issuer-discovery", Pass, "/.well-known/openid-configuration is served", "")
	}
}

// probeToken mints a token for a probe service account, bound to a probe
// Secret. cleanup removes both.
func probeToken(ctx context.Context, c probe, audience string, tokenAPI bool, unusable string, rec *recorder) (claims *token.Claims, raw string, cleanup func()) {
	var undo []func()
	cleanup = func() {
		for _, f := range undo {
			f()
		}
	}
	name := fmt.Sprintf("meshcert-check-%d", time.Now().UnixNano()%1_000_000)
	sas := c.client.CoreV1().ServiceAccounts(c.namespace)
	if _, err := sas.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		rec.add("token-request", Warn, kubeapi.Explain(err, "create a probe ServiceAccount in "+c.namespace).Error(), "run check with -n set to a namespace you may write to")
		return nil, "", cleanup
	}
	undo = append(undo, func() { _ = sas.Delete(context.WithoutCancel(ctx), name, metav1.DeleteOptions{}) })
	secrets := c.client.CoreV1().Secrets(c.namespace)
	probe, err := secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err == nil {
		undo = append(undo, func() { _ = secrets.Delete(context.WithoutCancel(ctx), name, metav1.DeleteOptions{}) })
	}
	spec := authenticationv1.TokenRequestSpec{Audiences: []string{audience}, ExpirationSeconds: ptr.To[int64](600)}
	if probe != nil {
		spec.BoundObjectRef = &authenticationv1.BoundObjectReference{Kind: "Secret", APIVersion: "v1", Name: probe.Name, UID: probe.UID}
	}
	tr, err := sas.CreateToken(ctx, name, &authenticationv1.TokenRequest{Spec: spec}, metav1.CreateOptions{})
	switch {
	case apierrors.IsNotFound(err):
		rec.add("token-request", unusable, "TokenRequest answered 404: the cluster predates trustworthy JWTs (or has no service-account issuer)", issuerFix)
		return nil, "", cleanup
	case err != nil:
		status := unusable
		if !tokenAPI || apierrors.IsForbidden(err) {
			status = Warn
		}
		rec.add("token-request", status, kubeapi.Explain(err, "TokenRequest").Error(), issuerFix)
		return nil, "", cleanup
	}
	claims, err = token.Decode(tr.Status.Token)
	if err != nil {
		rec.add("token-request", Fail, "the API server returned a token that does not decode: "+err.Error(), "")
		return nil, "", cleanup
	}
	rec.add("token-request", Pass, fmt.Sprintf("minted a token for the probe service account with audience %s and a 10-minute expiry", audience), "")
	return claims, tr.Status.Token, cleanup
}

func reviewToken(ctx context.Context, c probe, raw, audience, unusable string, rec *recorder) bool {
	review, err := c.client.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: raw, Audiences: []string{audience}},
	}, metav1.CreateOptions{})
	switch {
	case err != nil:
		rec.add("token-review", Warn, kubeapi.Explain(err, "TokenReview").Error(), "the mesh CA needs permission to create tokenreviews")
		return false
	case !review.Status.Authenticated:
		rec.add("token-review", unusable, "the API server refused its own token for audience "+audience+": "+review.Status.Error,
			"add "+audience+" to kube-apiserver's --api-audiences, or configure the mesh with an audience the cluster accepts")
		return false
	}
	rec.add("token-review", Pass, fmt.Sprintf("reviewed with audience %s as %s", audience, review.Status.User.Username), "")
	return true
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
