// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package check is `kubectl meshcert check`: an end-to-end preflight that
// mints and reviews a real token and recommends a certificate path.
package check

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/utils/ptr"

	"github.com/meshcert/kubectl-meshcert/core/ca"
	"github.com/meshcert/kubectl-meshcert/core/deploy"
	"github.com/meshcert/kubectl-meshcert/core/token"
	"github.com/meshcert/kubectl-meshcert/plugin/cluster"
	"github.com/meshcert/kubectl-meshcert/plugin/exit"
	"github.com/meshcert/kubectl-meshcert/plugin/output"
)

// Statuses of one check.
const (
	Pass = "PASS"
	Warn = "WARN"
	Fail = "FAIL"
)

// Paths check can recommend: the modes of install.
const (
	PathSDS       = deploy.ModeSDS
	PathFileMount = deploy.ModeFileMount
)

// Result is check's JSON output. Field names are stable.
type Result struct {
	Server          string  `json:"server"`
	TrustworthyJWT  bool    `json:"trustworthyJWT"`
	RecommendedPath string  `json:"recommendedPath"`
	Checks          []Check `json:"checks"`
}

// Check is one line of the preflight.
type Check struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}

// Options are check's flags and state.
type Options struct {
	ConfigFlags *genericclioptions.ConfigFlags
	Output      output.Options
	Audience    string
	Require     string
	CANamespace string
	genericiooptions.IOStreams

	clients *cluster.Clients
}

// NewCommand returns the check command.
func NewCommand(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := &Options{ConfigFlags: flags, IOStreams: streams, Audience: token.DefaultAudience, CANamespace: cluster.DefaultCANamespace}
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check whether the cluster can issue trustworthy tokens, and recommend sds or file-mount",
		Long: `Check mints a real projected token for a probe service account, has the API server review it,
reads its claims, and looks for the mesh CA and its root ConfigMap. Each check is PASS, WARN or FAIL with
the reason and the fix. It ends with the recommended certificate path. Anything it creates, it removes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Complete(); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&o.Audience, "audience", o.Audience, "the mesh audience tokens must carry")
	cmd.Flags().StringVar(&o.Require, "require", "", "exit with code 2 unless this path is possible (sds)")
	cmd.Flags().StringVar(&o.CANamespace, "ca-namespace", o.CANamespace, "namespace of the mesh CA")
	o.Output.AddFlags(cmd)
	return cmd
}

// Complete connects to the cluster.
func (o *Options) Complete() error {
	var err error
	o.clients, err = cluster.Connect(o.ConfigFlags)
	return err
}

// Validate checks the flags.
func (o *Options) Validate() error {
	if o.Require != "" && o.Require != PathSDS {
		return fmt.Errorf("--require %q: the only requirement check knows is %q", o.Require, PathSDS)
	}
	if o.Audience == "" {
		return errors.New("--audience must not be empty")
	}
	return o.Output.Validate()
}

// Run performs the checks and prints them.
func (o *Options) Run(ctx context.Context) error {
	result, err := Preflight(ctx, o.clients, o.Audience, o.CANamespace)
	if err != nil {
		return err
	}
	if err := o.Output.Print(o.Out, result, nil, func(w io.Writer) error { return printText(w, result) }); err != nil {
		return err
	}
	if o.Require == PathSDS && result.RecommendedPath != PathSDS {
		return exit.Error{Code: 2, Err: errors.New("SDS is not possible on this cluster: it cannot issue trustworthy tokens for the mesh (see the FAIL lines above)")}
	}
	return nil
}

func printText(w io.Writer, r *Result) error {
	fmt.Fprintf(w, "Cluster %s\n\n", r.Server)
	for _, c := range r.Checks {
		fmt.Fprintf(w, "[%s] %s: %s\n", c.Status, c.Name, c.Message)
		if c.Fix != "" {
			fmt.Fprintf(w, "       fix: %s\n", c.Fix)
		}
	}
	fmt.Fprintf(w, "\nTrustworthy JWTs: %t\nRecommended path: %s\n", r.TrustworthyJWT, r.RecommendedPath)
	return nil
}

const issuerFix = "start kube-apiserver with --service-account-issuer=https://kubernetes.default.svc.cluster.local, --service-account-signing-key-file=<key> and --api-audiences=<issuer>, then retry; until then use the file-mount path"

// Preflight runs every check against the cluster.
func Preflight(ctx context.Context, c *cluster.Clients, audience, caNamespace string) (*Result, error) {
	r := &Result{Server: c.Config.Host, RecommendedPath: PathFileMount}
	add := func(name, status, message, fix string) {
		r.Checks = append(r.Checks, Check{Name: name, Status: status, Message: message, Fix: fix})
	}

	version, err := c.Client.Discovery().ServerVersion()
	if err != nil {
		return nil, cluster.Explain(err, "read the server version")
	}
	add("server-version", Pass, "Kubernetes "+version.GitVersion, "")

	tokenAPI := false
	if resources, err := c.Client.Discovery().ServerResourcesForGroupVersion("v1"); err != nil {
		add("token-request-api", Warn, "cannot read API discovery: "+err.Error(), "")
	} else if slices.ContainsFunc(resources.APIResources, func(r metav1.APIResource) bool { return r.Name == "serviceaccounts/token" }) {
		tokenAPI = true
		add("token-request-api", Pass, "serviceaccounts/token is served", "")
	} else {
		add("token-request-api", Fail, "serviceaccounts/token is not in API discovery: the cluster cannot issue projected tokens", issuerFix)
	}

	claims, raw, cleanup := probeToken(ctx, c, audience, tokenAPI, add)
	defer cleanup()
	if claims != nil {
		reviewed := reviewToken(ctx, c, raw, audience, add)
		assessment := token.Classify(claims, token.Options{ExpectedAudience: audience})
		var missing []string
		if !claims.HasAudienceClaim {
			missing = append(missing, "aud")
		}
		if !claims.HasExpirationClaim {
			missing = append(missing, "exp")
		}
		switch {
		case len(missing) > 0:
			add("token-claims", Fail, "the token lacks "+strings.Join(missing, " and "), issuerFix)
		default:
			bound := "binding to objects (pods) works"
			if claims.SecretName == "" {
				bound = "binding to objects was not confirmed"
			}
			add("token-claims", Pass, fmt.Sprintf("aud=%s, exp in %s, issuer %s; %s", strings.Join(claims.Audiences, ","),
				time.Until(claims.Expiry).Round(time.Minute), claims.Issuer, bound), "")
		}
		r.TrustworthyJWT = assessment.Usable && reviewed
	}

	if _, err := c.Client.CoreV1().RESTClient().Get().AbsPath("/.well-known/openid-configuration").DoRaw(ctx); err != nil {
		add("issuer-discovery", Warn, "the issuer discovery document is not served: "+firstLine(err.Error()),
			"set --service-account-issuer to an https URL on kube-apiserver (discovery is optional for the mesh)")
	} else {
		add("issuer-discovery", Pass, "/.well-known/openid-configuration is served", "")
	}

	st, _, err := ca.ReadRotationStatus(ctx, c.Client, caNamespace)
	switch {
	case err == nil:
		add("ca-installed", Pass, fmt.Sprintf("mesh CA in %s (%s root %s)", caNamespace, st.Source, st.SigningRoot.Fingerprint[:12]), "")
	case errors.Is(err, ca.ErrNotInstalled):
		add("ca-installed", Warn, "no mesh CA in namespace "+caNamespace, "kubectl meshcert install (or pass --ca-namespace)")
	default:
		add("ca-installed", Warn, "cannot read the CA: "+err.Error(), "")
	}
	if _, err := c.Client.CoreV1().ConfigMaps(c.Namespace).Get(ctx, ca.RootConfigMapName, metav1.GetOptions{}); err == nil {
		add("root-configmap", Pass, fmt.Sprintf("ConfigMap %s/%s is published", c.Namespace, ca.RootConfigMapName), "")
	} else {
		add("root-configmap", Warn, fmt.Sprintf("ConfigMap %s/%s is missing", c.Namespace, ca.RootConfigMapName),
			"the CA publishes it in every namespace once installed and elected")
	}

	if r.TrustworthyJWT {
		r.RecommendedPath = PathSDS
	}
	return r, nil
}

// probeToken mints a token for a probe service account, bound to a probe
// Secret. cleanup removes both.
func probeToken(ctx context.Context, c *cluster.Clients, audience string, tokenAPI bool, add func(name, status, message, fix string)) (claims *token.Claims, raw string, cleanup func()) {
	var undo []func()
	cleanup = func() {
		for _, f := range undo {
			f()
		}
	}
	name := fmt.Sprintf("meshcert-check-%d", time.Now().UnixNano()%1_000_000)
	sas := c.Client.CoreV1().ServiceAccounts(c.Namespace)
	if _, err := sas.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		add("token-request", Warn, cluster.Explain(err, "create a probe ServiceAccount in "+c.Namespace).Error(), "run check with -n set to a namespace you may write to")
		return nil, "", cleanup
	}
	undo = append(undo, func() { _ = sas.Delete(context.WithoutCancel(ctx), name, metav1.DeleteOptions{}) })
	secrets := c.Client.CoreV1().Secrets(c.Namespace)
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
		add("token-request", Fail, "TokenRequest answered 404: the cluster predates trustworthy JWTs (or has no service-account issuer)", issuerFix)
		return nil, "", cleanup
	case err != nil:
		status := Fail
		if !tokenAPI || apierrors.IsForbidden(err) {
			status = Warn
		}
		add("token-request", status, cluster.Explain(err, "TokenRequest").Error(), issuerFix)
		return nil, "", cleanup
	}
	claims, err = token.Decode(tr.Status.Token)
	if err != nil {
		add("token-request", Fail, "the API server returned a token that does not decode: "+err.Error(), "")
		return nil, "", cleanup
	}
	add("token-request", Pass, fmt.Sprintf("minted a token for the probe service account with audience %s and a 10-minute expiry", audience), "")
	return claims, tr.Status.Token, cleanup
}

func reviewToken(ctx context.Context, c *cluster.Clients, raw, audience string, add func(name, status, message, fix string)) bool {
	review, err := c.Client.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: raw, Audiences: []string{audience}},
	}, metav1.CreateOptions{})
	switch {
	case err != nil:
		add("token-review", Warn, cluster.Explain(err, "TokenReview").Error(), "the mesh CA needs permission to create tokenreviews")
		return false
	case !review.Status.Authenticated:
		add("token-review", Fail, "the API server refused its own token for audience "+audience+": "+review.Status.Error,
			"add "+audience+" to kube-apiserver's --api-audiences, or configure the mesh with an audience the cluster accepts")
		return false
	}
	add("token-review", Pass, fmt.Sprintf("reviewed with audience %s as %s", audience, review.Status.User.Username), "")
	return true
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
