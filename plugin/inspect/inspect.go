// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package inspect is `kubectl meshcert inspect`: one view of workload
// certificates across both delivery paths, without base64 or openssl.
package inspect

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/meshcert/kubectl-meshcert/core/ca"
	"github.com/meshcert/kubectl-meshcert/core/filemount"
	"github.com/meshcert/kubectl-meshcert/core/fleet"
	"github.com/meshcert/kubectl-meshcert/core/pki"
	"github.com/meshcert/kubectl-meshcert/core/token"
	"github.com/meshcert/kubectl-meshcert/plugin/cluster"
	"github.com/meshcert/kubectl-meshcert/plugin/exit"
	"github.com/meshcert/kubectl-meshcert/plugin/output"
)

// Options are shared by the inspect commands.
type Options struct {
	ConfigFlags    *genericclioptions.ConfigFlags
	Output         output.Options
	AllNamespaces  bool
	ExpiringWithin time.Duration
	CANamespace    string
	Audience       string
	RootsFile      string
	genericiooptions.IOStreams

	clients *cluster.Clients
	now     time.Time
}

// NewCommand returns inspect and its subcommands.
func NewCommand(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := &Options{ConfigFlags: flags, IOStreams: streams, CANamespace: cluster.DefaultCANamespace, Audience: token.DefaultAudience, Output: output.Options{Table: true}}
	cmd := &cobra.Command{
		Use:   "inspect",
		Short: "Show workload certificates: a fleet report, or one secret, file, pod, token or the CA",
		Long: `Without a subcommand, inspect lists every workload certificate the cluster knows (file-mount
Secrets, and what node agents report serving each pod over SDS), soonest expiry first. With
--expiring-within it lists only those expiring within that time and exits with code 3 when there are any,
for cron jobs and alerts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.complete(true); err != nil {
				return err
			}
			return o.runFleet(cmd.Context())
		},
	}
	cmd.PersistentFlags().StringVar(&o.CANamespace, "ca-namespace", o.CANamespace, "namespace of the mesh CA, to tell which root is current")
	cmd.Flags().BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "report every namespace")
	cmd.Flags().DurationVar(&o.ExpiringWithin, "expiring-within", 0, "only certificates expiring within this time (such as 72h); exit code 3 when any match")
	o.Output.AddFlags(cmd)

	sub := func(use, short string, args cobra.PositionalArgs, run func(context.Context, []string) error) *cobra.Command {
		c := &cobra.Command{Use: use, Short: short, Args: args, RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd.Context(), args)
		}}
		c.Flags().StringVarP(&o.Output.Format, "output", "o", "", "output format: wide|json|yaml (default: a table)")
		return c
	}
	cmd.AddCommand(
		sub("secret NAME", "Inspect the certificate in a Secret (file-mount or kubernetes.io/tls)", cobra.ExactArgs(1), func(ctx context.Context, args []string) error {
			if err := o.complete(true); err != nil {
				return err
			}
			return o.runSecret(ctx, args[0])
		}),
		withRoots(o, sub("file PATH...", "Inspect PEM certificate chains in files", cobra.MinimumNArgs(1), func(_ context.Context, args []string) error {
			if err := o.complete(false); err != nil {
				return err
			}
			return o.runFiles(args)
		})),
		sub("pod POD", "Inspect the certificate a pod holds: its mounted Secret, or what its node agent serves it", cobra.ExactArgs(1), func(ctx context.Context, args []string) error {
			if err := o.complete(true); err != nil {
				return err
			}
			return o.runPod(ctx, args[0])
		}),
		withAudience(o, sub("token [FILE|-]", "Decode a service-account token and say whether it is trustworthy, with every reason", cobra.MaximumNArgs(1), func(_ context.Context, args []string) error {
			if err := o.complete(false); err != nil {
				return err
			}
			return o.runToken(args)
		})),
		sub("ca", "Show the CA's roots, which root signs, and their expiry", cobra.NoArgs, func(ctx context.Context, _ []string) error {
			if err := o.complete(true); err != nil {
				return err
			}
			return o.runCA(ctx)
		}),
	)
	return cmd
}

func withRoots(o *Options, c *cobra.Command) *cobra.Command {
	c.Flags().StringVar(&o.RootsFile, "roots", "", "root bundle to verify the chains against (default: a self-signed root at the end of each file)")
	return c
}

func withAudience(o *Options, c *cobra.Command) *cobra.Command {
	c.Flags().StringVar(&o.Audience, "audience", o.Audience, "the audience the token should carry")
	return c
}

func (o *Options) complete(needCluster bool) error {
	o.now = time.Now()
	if err := o.Output.Validate(); err != nil {
		return err
	}
	if o.ExpiringWithin < 0 {
		return fmt.Errorf("--expiring-within %s must not be negative", o.ExpiringWithin)
	}
	if !needCluster {
		return nil
	}
	var err error
	if o.clients, err = cluster.Connect(o.ConfigFlags); err != nil {
		return err
	}
	return o.clients.RequireNamespace(context.Background())
}

// currentRoot is the CA's signing root, or nil when the CA cannot be read.
func (o *Options) currentRoot(ctx context.Context) *x509.Certificate {
	a, _, err := ca.LoadAuthorityReadOnly(ctx, o.clients.Client, o.CANamespace)
	if err != nil {
		return nil
	}
	return a.SigningRoot()
}

var workloadColumns = []output.Column{
	{Name: "NAMESPACE"}, {Name: "NAME"}, {Name: "IDENTITY"}, {Name: "PATH"}, {Name: "SERIAL", Wide: true},
	{Name: "NOT AFTER"}, {Name: "REMAINING"}, {Name: "ROTATION DUE"}, {Name: "CURRENT ROOT"}, {Name: "KEY TYPE", Wide: true},
	{Name: "TRUSTED ROOTS", Wide: true}, {Name: "PROBLEM", Wide: true},
}

func workloadTable(ws []fleet.Workload) *metav1.Table {
	rows := make([][]any, len(ws))
	for i, w := range ws {
		current := "no"
		if w.ChainsToCurrentRoot {
			current = "yes"
		}
		if w.ChainsTo != "" {
			current += " (" + fleet.Short(w.ChainsTo) + ")"
		}
		rows[i] = []any{w.Namespace, strings.ToLower(w.Kind) + "/" + w.Name, w.SPIFFEID, w.Path, w.Serial,
			timeOrDash(w.NotAfter), w.Remaining, timeOrDash(w.RotationDue), current, w.KeyType, fleet.ShortList(w.TrustedRoots), w.Problem}
	}
	return output.NewTable(workloadColumns, rows)
}

// FleetReport is the JSON of the fleet report. Field names are stable.
type FleetReport struct {
	Workloads []fleet.Workload `json:"workloads"`
}

func (o *Options) runFleet(ctx context.Context) error {
	ns := o.clients.Namespace
	if o.AllNamespaces {
		ns = ""
	}
	ws, err := fleet.Collect(ctx, o.clients.Client, ns, o.currentRoot(ctx), o.now)
	if err != nil {
		return cluster.Explain(err, "collect workload certificates")
	}
	if o.ExpiringWithin > 0 {
		var expiring []fleet.Workload
		for _, w := range ws {
			if w.NotAfter.Before(o.now.Add(o.ExpiringWithin)) {
				expiring = append(expiring, w)
			}
		}
		ws = expiring
	}
	if ws == nil {
		ws = []fleet.Workload{}
	}
	if err := o.Output.Print(o.Out, FleetReport{Workloads: ws}, workloadTable(ws), nil); err != nil {
		return err
	}
	if len(ws) == 0 && !o.Output.Machine() {
		fmt.Fprintln(o.ErrOut, "No workload certificates found.")
	}
	if o.ExpiringWithin > 0 && len(ws) > 0 {
		return exit.Error{Code: 3, Err: fmt.Errorf("%d workload certificate(s) expire within %s", len(ws), o.ExpiringWithin)}
	}
	return nil
}

// CertificateReport is inspect's JSON for a certificate found somewhere.
type CertificateReport struct {
	Source string `json:"source"`
	pki.Report
	Path             string   `json:"path,omitempty"`
	RotationDue      string   `json:"rotationDue,omitempty"`
	RootFingerprints []string `json:"rootFingerprints,omitempty"`
}

var certColumns = []output.Column{
	{Name: "SOURCE"}, {Name: "IDENTITY"}, {Name: "SERIAL", Wide: true}, {Name: "NOT AFTER"}, {Name: "REMAINING"},
	{Name: "VERIFIED"}, {Name: "ROOT"}, {Name: "KEY TYPE"}, {Name: "ISSUER", Wide: true}, {Name: "SHA-256", Wide: true},
}

func certTable(rs []CertificateReport) *metav1.Table {
	rows := make([][]any, len(rs))
	for i, r := range rs {
		id := r.SPIFFEID
		if id == "" {
			id = r.Subject
		}
		root, verified := "-", "no: "+r.VerifyError
		if r.Verified {
			verified, root = "yes", fleet.Short(r.VerifiedRoot.Fingerprint)
		}
		rows[i] = []any{r.Source, id, r.Serial, timeOrDash(r.NotAfter), r.Remaining, verified, root, r.KeyType, r.Issuer, fleet.Short(r.Fingerprint)}
	}
	return output.NewTable(certColumns, rows)
}

func (o *Options) runSecret(ctx context.Context, name string) error {
	s, err := o.clients.Client.CoreV1().Secrets(o.clients.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("Secret %s/%s not found (is -n right? file-mount Secrets are named meshcert.<service-account>)", o.clients.Namespace, name)
	}
	if err != nil {
		return cluster.Explain(err, "read Secret "+name)
	}
	r, err := describeSecret(s, o.now)
	if err != nil {
		return err
	}
	return o.Output.Print(o.Out, r, certTable([]CertificateReport{r}), nil)
}

func describeSecret(s *corev1.Secret, now time.Time) (CertificateReport, error) {
	chainKey, rootKey := filemount.KeyCertChain, filemount.KeyRootCert
	switch {
	case s.Type == filemount.SecretType:
	case s.Type == corev1.SecretTypeTLS:
		chainKey, rootKey = corev1.TLSCertKey, "ca.crt"
	default:
		return CertificateReport{}, fmt.Errorf("Secret %s/%s holds no certificate: its type is %q, want %q or %q", s.Namespace, s.Name, s.Type, filemount.SecretType, corev1.SecretTypeTLS)
	}
	chain, err := pki.DecodeCertificates(s.Data[chainKey])
	if err != nil {
		return CertificateReport{}, fmt.Errorf("Secret %s/%s, key %s: %w", s.Namespace, s.Name, chainKey, err)
	}
	var roots []*x509.Certificate
	if data := s.Data[rootKey]; len(data) > 0 {
		if roots, err = pki.DecodeCertificates(data); err != nil {
			return CertificateReport{}, fmt.Errorf("Secret %s/%s, key %s: %w", s.Namespace, s.Name, rootKey, err)
		}
	}
	report, err := pki.Describe(chain, roots, now)
	if err != nil {
		return CertificateReport{}, err
	}
	r := CertificateReport{Source: "secret/" + s.Namespace + "/" + s.Name, Report: report, Path: fleet.PathFileMount,
		RotationDue: s.Annotations[filemount.AnnotationRenewAt]}
	for _, root := range roots {
		r.RootFingerprints = append(r.RootFingerprints, pki.Fingerprint(root))
	}
	return r, nil
}

func (o *Options) runFiles(paths []string) error {
	var extraRoots []*x509.Certificate
	if o.RootsFile != "" {
		data, err := os.ReadFile(o.RootsFile)
		if err != nil {
			return fmt.Errorf("--roots: %w", err)
		}
		if extraRoots, err = pki.DecodeCertificates(data); err != nil {
			return fmt.Errorf("--roots %s: %w", o.RootsFile, err)
		}
	}
	var reports []CertificateReport
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		chain, err := pki.DecodeCertificates(data)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		roots := extraRoots
		if roots == nil && len(chain) > 1 && chain[len(chain)-1].CheckSignatureFrom(chain[len(chain)-1]) == nil {
			roots = chain[len(chain)-1:]
		}
		report, err := pki.Describe(chain, roots, o.now)
		if err != nil {
			return err
		}
		reports = append(reports, CertificateReport{Source: path, Report: report})
	}
	var v any = reports
	if len(reports) == 1 {
		v = reports[0]
	}
	return o.Output.Print(o.Out, v, certTable(reports), nil)
}

// PodReport is inspect pod's JSON.
type PodReport struct {
	Pod      string         `json:"pod"`
	Workload fleet.Workload `json:"workload"`
}

func (o *Options) runPod(ctx context.Context, name string) error {
	pod, err := o.clients.Client.CoreV1().Pods(o.clients.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("pod %s/%s not found (is -n right?)", o.clients.Namespace, name)
	}
	if err != nil {
		return cluster.Explain(err, "read pod "+name)
	}
	current := ""
	if root := o.currentRoot(ctx); root != nil {
		current = pki.Fingerprint(root)
	}
	var w *fleet.Workload
	for _, v := range pod.Spec.Volumes {
		if v.Secret == nil {
			continue
		}
		if _, ok := filemount.ServiceAccountOf(v.Secret.SecretName); !ok {
			continue
		}
		s, err := o.clients.Client.CoreV1().Secrets(pod.Namespace).Get(ctx, v.Secret.SecretName, metav1.GetOptions{})
		if err != nil {
			return cluster.Explain(err, fmt.Sprintf("read the pod's mounted Secret %s", v.Secret.SecretName))
		}
		found := fleet.FromSecret(s, current, o.now)
		w = &found
	}
	if w == nil {
		report, ok, err := fleet.ParseSDSReport(pod)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("pod %s/%s holds no mesh certificate: it mounts no meshcert.<service-account> Secret and no node agent reports serving it over SDS (annotation %s)", pod.Namespace, pod.Name, fleet.AnnotationSDS)
		}
		found := fleet.FromSDSReport(pod, report, current, o.now)
		w = &found
	}
	return o.Output.Print(o.Out, PodReport{Pod: pod.Namespace + "/" + pod.Name, Workload: *w}, workloadTable([]fleet.Workload{*w}), nil)
}

// TokenReport is inspect token's JSON.
type TokenReport struct {
	Claims     *token.Claims    `json:"claims"`
	Assessment token.Assessment `json:"assessment"`
}

func (o *Options) runToken(args []string) error {
	var data []byte
	var err error
	switch {
	case len(args) == 0 || args[0] == "-":
		data, err = io.ReadAll(io.LimitReader(o.In, token.MaxSize+1))
	default:
		data, err = os.ReadFile(args[0])
	}
	if err != nil {
		return err
	}
	claims, err := token.Decode(string(data))
	if err != nil {
		return err
	}
	r := TokenReport{Claims: claims, Assessment: token.Classify(claims, token.Options{ExpectedAudience: o.Audience, Now: o.now})}
	return o.Output.Print(o.Out, r, nil, func(w io.Writer) error {
		fmt.Fprintf(w, "Issuer:          %s\nSubject:         %s\nAudiences:       %s\n", claims.Issuer, claims.Subject, dash(strings.Join(claims.Audiences, ", ")))
		fmt.Fprintf(w, "Expires:         %s\nService account: %s/%s\n", timeOrDash(claims.Expiry), dash(claims.Namespace), dash(claims.ServiceAccount))
		if claims.Pod != "" {
			fmt.Fprintf(w, "Bound to pod:    %s\n", claims.Pod)
		}
		fmt.Fprintf(w, "Trustworthy:     %t\nUsable for %s: %t\n", r.Assessment.Trustworthy, o.Audience, r.Assessment.Usable)
		for _, f := range r.Assessment.Findings {
			mark := "info"
			if f.Blocking {
				mark = "BLOCKING"
			}
			fmt.Fprintf(w, "  %-8s %s: %s\n", mark, f.Code, f.Message)
		}
		if err := r.Assessment.Err(); err != nil {
			fmt.Fprintf(w, "\n%v\n", err)
		}
		return nil
	})
}

func (o *Options) runCA(ctx context.Context) error {
	st, _, err := ca.ReadRotationStatus(ctx, o.clients.Client, o.CANamespace)
	if errors.Is(err, ca.ErrNotInstalled) {
		return err
	}
	if err != nil {
		return cluster.Explain(err, "read the CA")
	}
	rows := [][]any{}
	add := func(role string, r ca.RootInfo) {
		rows = append(rows, []any{role, fleet.Short(r.Fingerprint), r.Subject, timeOrDash(r.NotAfter), pki.Remaining(r.NotAfter, o.now)})
	}
	for _, r := range st.Bundle {
		role := "trusted"
		if r.Fingerprint == st.SigningRoot.Fingerprint {
			role = "trusted, signing"
		}
		add(role, r)
	}
	if st.Previous != nil && !slices.ContainsFunc(st.Bundle, func(r ca.RootInfo) bool { return r.Fingerprint == st.Previous.Fingerprint }) {
		add("previous", *st.Previous)
	}
	table := output.NewTable([]output.Column{{Name: "ROLE"}, {Name: "SHA-256"}, {Name: "SUBJECT"}, {Name: "NOT AFTER"}, {Name: "REMAINING"}}, rows)
	return o.Output.Print(o.Out, st, table, nil)
}

func timeOrDash(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
