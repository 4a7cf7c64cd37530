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
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/meshcert/kubectl-meshcert/core/ca"
	"github.com/meshcert/kubectl-meshcert/core/fleet"
	"github.com/meshcert/kubectl-meshcert/core/fleetview"
	"github.com/meshcert/kubectl-meshcert/core/kubeapi"
	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/core/pki"
	"github.com/meshcert/kubectl-meshcert/plugin/cluster"
	"github.com/meshcert/kubectl-meshcert/plugin/command"
	"github.com/meshcert/kubectl-meshcert/plugin/exit"
	"github.com/meshcert/kubectl-meshcert/plugin/output"
)

// CommonOptions are the flags every inspect command shares: persistent
// flags of inspect itself.
type CommonOptions struct {
	CANamespace string
}

// Validate checks the shared flags.
func (c *CommonOptions) Validate() error {
	if c.CANamespace == "" {
		return errors.New("--ca-namespace must not be empty")
	}
	return nil
}

// connection is what the commands that read the cluster share: the
// factory they connect through, the clients, and the time they report at.
type connection struct {
	factory *cluster.Factory
	clients *cluster.Clients
	now     time.Time
}

// connect builds the clients and checks -n.
func (c *connection) connect(ctx context.Context) error {
	c.now = time.Now()
	var err error
	c.clients, err = c.factory.Connect(ctx)
	return err
}

// currentRoot is the CA's signing root, or nil when the CA cannot be read.
func (c *connection) currentRoot(ctx context.Context, caNamespace string) *x509.Certificate {
	a, _, err := ca.LoadAuthorityReadOnly(ctx, c.clients.Client, caNamespace)
	if err != nil {
		return nil
	}
	return a.SigningRoot()
}

// FleetOptions are inspect's own flags and state: the fleet report.
type FleetOptions struct {
	*CommonOptions
	Output         output.Options
	AllNamespaces  bool
	ExpiringWithin time.Duration
	Selector       string
	FieldSelector  string
	Watch          bool
	genericiooptions.IOStreams
	connection
}

// NewCommand returns inspect and its subcommands.
func NewCommand(factory *cluster.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	common := &CommonOptions{CANamespace: mesh.DefaultNamespace}
	o := &FleetOptions{CommonOptions: common, IOStreams: streams, Output: output.Options{Table: true, Extra: []string{FormatHTML}}, connection: connection{factory: factory}}
	cmd := &cobra.Command{
		Use:   "inspect",
		Short: "Show workload certificates: a fleet report, or one secret, file, pod, token or the CA",
		Long: `Without a subcommand, inspect lists every workload certificate the cluster knows (file-mount
Secrets, and what node agents report serving each pod over SDS), soonest expiry first. With
--expiring-within it lists only those expiring within that time and exits with code 3 when there are any,
for cron jobs and alerts. -o html writes one self-contained page (inline SVG, no script, nothing loaded) with a
timeline per workload from notBefore through its rotation point to notAfter, a line at now, the roots'
validity and the rotation phase, grouped by namespace and path, problems in red.`,
		Example: `  # Every workload certificate in every namespace, soonest expiry first
  kubectl meshcert inspect -A

  # Exit with code 3 when any certificate expires within three days
  kubectl meshcert inspect -A --expiring-within 72h -o json

  # A picture of the fleet: one self-contained page with a timeline per workload
  kubectl meshcert inspect -A -o html > fleet.html`,
		Args: cobra.NoArgs,
		RunE: command.RunE(o),
	}
	cmd.PersistentFlags().StringVar(&common.CANamespace, "ca-namespace", common.CANamespace, "namespace of the mesh CA, to tell which root is current")
	cmd.Flags().BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "report every namespace")
	cmd.Flags().DurationVar(&o.ExpiringWithin, "expiring-within", 0, "only certificates expiring within this time (such as 72h); exit code 3 when any match")
	cmd.Flags().StringVarP(&o.Selector, "selector", "l", "", "only the pods and Secrets with these labels (app=web,tier!=db), selected by the API server")
	cmd.Flags().BoolVarP(&o.Watch, "watch", "w", false, "after the list, print each workload again when its certificate changes (a renewal, a rotation, an Envoy NACK), until interrupted")
	cmd.Flags().StringVar(&o.FieldSelector, "field-selector", "", "only the pods and Secrets with these fields (metadata.name=web-0); a pod-only field such as spec.nodeName=worker-1 leaves the Secrets out")
	o.Output.Kind = "Workload"
	o.Output.AddFlags(cmd)
	cmd.AddCommand(
		newSecretCommand(factory, streams, common),
		newFileCommand(streams),
		newPodCommand(factory, streams, common),
		newTokenCommand(streams),
		newCACommand(factory, streams, common),
	)
	return cmd
}

// Validate checks the flags, before any API call.
func (o *FleetOptions) Validate() error {
	if o.ExpiringWithin < 0 {
		return fmt.Errorf("--expiring-within %s must not be negative", o.ExpiringWithin)
	}
	if _, err := labels.Parse(o.Selector); err != nil {
		return fmt.Errorf("-l %q: %w", o.Selector, err)
	}
	if _, err := fields.ParseSelector(o.FieldSelector); err != nil {
		return fmt.Errorf("--field-selector %q: %w", o.FieldSelector, err)
	}
	if o.Watch && (o.ExpiringWithin > 0 || o.Output.Format == FormatHTML || o.Output.SortBy != "") {
		return errors.New("-w prints changes as they come: it does not take --expiring-within, --sort-by or -o html")
	}
	if err := o.CommonOptions.Validate(); err != nil {
		return err
	}
	return o.Output.Validate()
}

// Complete has nothing to fill in: inspect takes no arguments.
func (o *FleetOptions) Complete([]string) error { return nil }

var workloadColumns = []output.Column{
	{Name: "NAMESPACE"}, {Name: "NAME"}, {Name: "IDENTITY"}, {Name: "PATH"}, {Name: "SERIAL", Wide: true},
	{Name: "NOT AFTER"}, {Name: "REMAINING"}, {Name: "ROTATION DUE"}, {Name: "CURRENT ROOT"}, {Name: "ENVOY"}, {Name: "KEY TYPE", Wide: true},
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
			timeOrDash(w.NotAfter), w.Remaining, timeOrDash(w.RotationDue), current, dash(w.Envoy), w.KeyType, fleet.ShortList(w.TrustedRoots), w.Problem}
	}
	return output.NewTable(workloadColumns, rows)
}

// FormatHTML is -o html: the fleet as a picture.
const FormatHTML = "html"

// workloadList is the fleet as a List of Workloads, each named after the
// pod or Secret it was found in.
func workloadList(ws []fleet.Workload) output.List {
	list := make(output.List, len(ws))
	for i, w := range ws {
		list[i] = output.Item{Name: w.Name, Namespace: w.Namespace, Value: w}
	}
	return list
}

// Run prints the fleet report.
func (o *FleetOptions) Run(ctx context.Context) error {
	if err := o.connect(ctx); err != nil {
		return err
	}
	ns := o.clients.Namespace
	if o.AllNamespaces {
		ns = ""
	}
	if o.Watch {
		return o.watchFleet(ctx, ns, o.currentRoot(ctx, o.CANamespace))
	}
	ws, err := fleet.CollectSelected(ctx, o.clients.Fleet, ns, fleet.Selection{Labels: o.Selector, Fields: o.FieldSelector}, o.currentRoot(ctx, o.CANamespace), o.now)
	if err != nil {
		return kubeapi.Explain(err, "collect workload certificates")
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
	if o.Output.Format == FormatHTML {
		view := fleetview.View{Cluster: o.clients.Config.Host, Now: o.now, Workloads: ws}
		if st, _, err := ca.ReadRotationStatus(ctx, o.clients.Client, o.CANamespace); err == nil {
			view.Rotation = st
		}
		if err := fleetview.Render(o.Out, view); err != nil {
			return err
		}
	} else if err := o.Output.Print(o.Out, workloadList(ws), workloadTable(ws), nil); err != nil {
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
	// ChainsToCurrentRoot says whether the chain verifies against the
	// signing root of the CA in --ca-namespace (not the roots the source
	// carries); absent when that CA could not be read.
	ChainsToCurrentRoot *bool `json:"chainsToCurrentRoot,omitempty"`
	// Events are the recent Events about a Secret and its service account
	// (inspect secret only).
	Events []EventReport `json:"events,omitempty"`
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
