// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package rotate is `kubectl meshcert rotate`: re-issue file-mount Secrets,
// re-key an SDS workload without restarting it, and rotate the CA root in
// guided phases.
package rotate

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/meshcert/kubectl-meshcert/core/ca"
	"github.com/meshcert/kubectl-meshcert/core/filemount"
	"github.com/meshcert/kubectl-meshcert/core/fleet"
	"github.com/meshcert/kubectl-meshcert/core/pki"
	"github.com/meshcert/kubectl-meshcert/plugin/cluster"
	"github.com/meshcert/kubectl-meshcert/plugin/output"
)

// Options are shared by the rotate commands.
type Options struct {
	ConfigFlags   *genericclioptions.ConfigFlags
	Output        output.Options
	All           bool
	AllNamespaces bool
	Wait          bool
	Timeout       time.Duration
	Phase         string
	DryRun        bool
	Force         bool
	CANamespace   string
	genericiooptions.IOStreams

	clients *cluster.Clients
}

// NewCommand returns rotate and its subcommands.
func NewCommand(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := &Options{ConfigFlags: flags, IOStreams: streams, Wait: true, Timeout: 2 * time.Minute, CANamespace: cluster.DefaultCANamespace}
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Re-issue certificates now: file-mount Secrets, an SDS pod's identity, or the CA root",
	}
	cmd.PersistentFlags().BoolVar(&o.Wait, "wait", o.Wait, "wait until the new certificate is served")
	cmd.PersistentFlags().DurationVar(&o.Timeout, "timeout", o.Timeout, "how long --wait waits")
	cmd.PersistentFlags().StringVar(&o.CANamespace, "ca-namespace", o.CANamespace, "namespace of the mesh CA")

	secret := &cobra.Command{
		Use:   "secret [NAME | --all]",
		Short: "Re-issue file-mount Secrets (meshcert.<service-account>) now",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.complete(); err != nil {
				return err
			}
			if (len(args) == 1) == o.All {
				return errors.New("name one Secret, or pass --all")
			}
			if o.AllNamespaces && !o.All {
				return errors.New("-A goes with --all")
			}
			return o.rotateSecrets(cmd.Context(), args)
		},
	}
	secret.Flags().BoolVar(&o.All, "all", false, "every file-mount Secret in the namespace (or with -A, everywhere)")
	secret.Flags().BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "with --all: every namespace")

	pod := &cobra.Command{
		Use:   "pod POD",
		Short: "Make the node agent re-key a pod's SDS identity and push it, without restarting the pod",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.complete(); err != nil {
				return err
			}
			return o.rotatePod(cmd.Context(), args[0])
		},
	}

	root := &cobra.Command{
		Use:   "root --phase prepare|activate|finish | status",
		Short: "Rotate the CA root in three guided phases: prepare, activate, finish",
		Long: `prepare makes a new root and distributes the bundle old+new everywhere: the root ConfigMaps, SDS ROOTCA and
file-mount root-cert.pem. activate makes the CA sign with the new root; it is refused until every known workload
trusts both roots, and then asks every SDS workload to re-key. finish drops the old root, and is refused while a
known workload certificate still chains to it (--force overrides). The phase is kept in the CA Secret, so an
interrupted rotation resumes; "rotate root status" shows where it stands and what blocks the next phase.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.complete(); err != nil {
				return err
			}
			return o.rotateRoot(cmd.Context())
		},
	}
	root.Flags().StringVar(&o.Phase, "phase", "", "prepare, activate or finish")
	root.Flags().BoolVar(&o.DryRun, "dry-run", false, "say what the phase would do, and change nothing")
	root.Flags().BoolVar(&o.Force, "force", false, "run the phase despite blockers")
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the root rotation phase, the roots, and what blocks the next phase",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.complete(); err != nil {
				return err
			}
			return o.rootStatus(cmd.Context())
		},
	}
	for _, c := range []*cobra.Command{secret, pod, root, status} {
		c.Flags().StringVarP(&o.Output.Format, "output", "o", "", "output format: json|yaml (default: text)")
	}
	root.AddCommand(status)
	cmd.AddCommand(secret, pod, root)
	return cmd
}

func (o *Options) complete() error {
	if err := o.Output.Validate(); err != nil {
		return err
	}
	var err error
	if o.clients, err = cluster.Connect(o.ConfigFlags); err != nil {
		return err
	}
	return o.clients.RequireNamespace(context.Background())
}

func requestValue() string { return time.Now().UTC().Format(time.RFC3339Nano) }

func annotationPatch(key, value string) []byte {
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{key: value}}})
	return patch
}

// SecretsResult is rotate secret's JSON.
type SecretsResult struct {
	Rotated []string `json:"rotated"`
}

func (o *Options) rotateSecrets(ctx context.Context, args []string) error {
	var targets []corev1.Secret
	if len(args) == 1 {
		s, err := o.clients.Client.CoreV1().Secrets(o.clients.Namespace).Get(ctx, args[0], metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("Secret %s/%s not found (is -n right? file-mount Secrets are named meshcert.<service-account>)", o.clients.Namespace, args[0])
		}
		if err != nil {
			return cluster.Explain(err, "read Secret "+args[0])
		}
		if !filemount.Owned(s) {
			return fmt.Errorf("Secret %s/%s is not a meshcert file-mount Secret (type %q): meshcert only rotates what it manages", s.Namespace, s.Name, s.Type)
		}
		targets = append(targets, *s)
	} else {
		ns := o.clients.Namespace
		if o.AllNamespaces {
			ns = ""
		}
		list, err := o.clients.Client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{
			LabelSelector: labels.SelectorFromSet(labels.Set{filemount.LabelManagedBy: filemount.ManagedByValue}).String(),
		})
		if err != nil {
			return cluster.Explain(err, "list file-mount Secrets")
		}
		for _, s := range list.Items {
			if filemount.Owned(&s) {
				targets = append(targets, s)
			}
		}
	}
	value := requestValue()
	result := SecretsResult{Rotated: []string{}}
	for _, s := range targets {
		if _, err := o.clients.Client.CoreV1().Secrets(s.Namespace).Patch(ctx, s.Name, types.MergePatchType,
			annotationPatch(filemount.AnnotationRotate, value), metav1.PatchOptions{FieldManager: "kubectl-meshcert"}); err != nil {
			return cluster.Explain(err, "request rotation of Secret "+s.Name)
		}
		result.Rotated = append(result.Rotated, s.Namespace+"/"+s.Name)
	}
	if o.Wait {
		for _, s := range targets {
			err := o.waitFor(ctx, "Secret "+s.Namespace+"/"+s.Name, func(ctx context.Context) (bool, error) {
				got, err := o.clients.Client.CoreV1().Secrets(s.Namespace).Get(ctx, s.Name, metav1.GetOptions{})
				return err == nil && got.Annotations[filemount.AnnotationRotated] == value, nil
			})
			if err != nil {
				return fmt.Errorf("%w: is the CA running with --file-mount, and is the namespace opted in?", err)
			}
		}
	}
	return o.Output.Print(o.Out, result, nil, func(w io.Writer) error {
		if len(targets) == 0 {
			_, err := fmt.Fprintln(w, "No file-mount Secrets found.")
			return err
		}
		for _, name := range result.Rotated {
			fmt.Fprintf(w, "secret/%s rotated\n", name)
		}
		return nil
	})
}

// PodResult is rotate pod's JSON.
type PodResult struct {
	Pod       string          `json:"pod"`
	OldSerial string          `json:"oldSerial"`
	Report    fleet.SDSReport `json:"served"`
}

func (o *Options) rotatePod(ctx context.Context, name string) error {
	pods := o.clients.Client.CoreV1().Pods(o.clients.Namespace)
	pod, err := pods.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("pod %s/%s not found (is -n right?)", o.clients.Namespace, name)
	}
	if err != nil {
		return cluster.Explain(err, "read pod "+name)
	}
	before, ok, err := fleet.ParseSDSReport(pod)
	if err != nil {
		return err
	}
	if !ok {
		sa := pod.Spec.ServiceAccountName
		return fmt.Errorf("no node agent reports serving pod %s/%s over SDS; if it mounts its certificate, rotate the Secret instead: kubectl meshcert rotate secret %s -n %s",
			pod.Namespace, pod.Name, filemount.SecretName(sa), pod.Namespace)
	}
	value := requestValue()
	if _, err := pods.Patch(ctx, name, types.MergePatchType, annotationPatch(fleet.AnnotationRotate, value), metav1.PatchOptions{FieldManager: "kubectl-meshcert"}); err != nil {
		return cluster.Explain(err, "request rotation of pod "+name)
	}
	result := PodResult{Pod: pod.Namespace + "/" + pod.Name, OldSerial: before.Serial, Report: before}
	if o.Wait {
		err := o.waitFor(ctx, "pod "+result.Pod, func(ctx context.Context) (bool, error) {
			got, err := pods.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			report, ok, _ := fleet.ParseSDSReport(got)
			if ok && got.Annotations[fleet.AnnotationRotated] == value && report.Serial != before.Serial {
				result.Report = report
				return true, nil
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("%w: is the node agent on %s running?", err, before.Node)
		}
	}
	return o.Output.Print(o.Out, result, nil, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "pod/%s re-keyed: serial %s -> %s, valid until %s\n", result.Pod, result.OldSerial, result.Report.Serial, result.Report.NotAfter.Format(time.RFC3339))
		return err
	})
}

func (o *Options) waitFor(ctx context.Context, what string, done wait.ConditionWithContextFunc) error {
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, o.Timeout, true, done); err != nil {
		return fmt.Errorf("%s did not get its new certificate within %s (--timeout)", what, o.Timeout)
	}
	return nil
}

// RootStatus is `rotate root status` JSON, and what the phases print.
type RootStatus struct {
	*ca.RotationStatus
	// Blockers stop the next phase.
	Blockers []string `json:"blockers"`
	// Done says what the command just did; empty for status.
	Done string `json:"done,omitempty"`
}

func (o *Options) rootStatus(ctx context.Context) error {
	st, _, err := ca.ReadRotationStatus(ctx, o.clients.Client, o.CANamespace)
	if err != nil {
		return err
	}
	blockers, err := o.blockers(ctx, st)
	if err != nil {
		return err
	}
	return o.printRoot(RootStatus{RotationStatus: st, Blockers: blockers})
}

func (o *Options) rotateRoot(ctx context.Context) error {
	st, _, err := ca.ReadRotationStatus(ctx, o.clients.Client, o.CANamespace)
	if err != nil {
		return err
	}
	var done string
	switch o.Phase {
	case "prepare":
		if _, err := ca.PrepareRootRotation(ctx, o.clients.Client, o.CANamespace, time.Now(), o.DryRun); err != nil {
			return err
		}
		done = "prepared a new root; the bundle now holds old and new. Next, once every workload trusts both: --phase activate"
	case "activate", "finish":
		want := ca.PhasePrepared
		if o.Phase == "finish" {
			want = ca.PhaseActivated
		}
		if st.Phase == want {
			blockers, err := o.blockers(ctx, st)
			if err != nil {
				return err
			}
			if len(blockers) > 0 && !o.Force {
				return fmt.Errorf("refusing to %s: %d blocker(s):\n  - %s\n(wait and retry, fix them, or pass --force)", o.Phase, len(blockers), strings.Join(blockers, "\n  - "))
			}
		}
		if o.Phase == "activate" {
			if _, err := ca.ActivateRootRotation(ctx, o.clients.Client, o.CANamespace, o.DryRun); err != nil {
				return err
			}
			n := 0
			if !o.DryRun {
				if n, err = o.rekeySDSWorkloads(ctx); err != nil {
					return err
				}
			}
			done = fmt.Sprintf("the CA signs with the new root; asked %d SDS workload(s) to re-key (file-mount Secrets are re-issued by the CA). Next, once none chains to the old root: --phase finish", n)
		} else {
			if _, err := ca.FinishRootRotation(ctx, o.clients.Client, o.CANamespace, o.DryRun); err != nil {
				return err
			}
			done = "dropped the old root from the bundle; the rotation is complete"
		}
	case "":
		return errors.New("--phase is required: prepare, activate or finish (or use `rotate root status`)")
	default:
		return fmt.Errorf("unknown --phase %q: use prepare, activate or finish", o.Phase)
	}
	if o.DryRun {
		done = "dry run, nothing changed: would have " + done
	}
	after, _, err := ca.ReadRotationStatus(ctx, o.clients.Client, o.CANamespace)
	if err != nil {
		return err
	}
	return o.printRoot(RootStatus{RotationStatus: after, Blockers: []string{}, Done: done})
}

// blockers lists what stops the next phase: for activate, workloads that do
// not trust the new root yet; for finish, workload certificates that still
// chain to the old root.
func (o *Options) blockers(ctx context.Context, st *ca.RotationStatus) ([]string, error) {
	blockers := []string{}
	switch st.Phase {
	case ca.PhasePrepared:
		next := st.Next.Fingerprint
		cms, err := o.clients.Client.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + ca.RootConfigMapName})
		if err != nil {
			return nil, cluster.Explain(err, "list root ConfigMaps")
		}
		for _, cm := range cms.Items {
			if !bundleHas(cm.Data[ca.KeyRootCert], next) {
				blockers = append(blockers, fmt.Sprintf("ConfigMap %s/%s does not hold the new root yet", cm.Namespace, cm.Name))
			}
		}
		ws, err := fleet.Collect(ctx, o.clients.Client, "", nil, time.Now())
		if err != nil {
			return nil, cluster.Explain(err, "collect workloads")
		}
		now := time.Now()
		for _, w := range ws {
			switch {
			case !w.Trusts(next):
				blockers = append(blockers, fmt.Sprintf("%s %s/%s (%s) does not trust the new root yet", strings.ToLower(w.Kind), w.Namespace, w.Name, w.Path))
			case !w.Delivered(now):
				blockers = append(blockers, undelivered(w))
			}
		}
	case ca.PhaseActivated:
		if st.Previous == nil {
			return blockers, nil
		}
		ws, err := fleet.Collect(ctx, o.clients.Client, "", nil, time.Now())
		if err != nil {
			return nil, cluster.Explain(err, "collect workloads")
		}
		now := time.Now()
		for _, w := range ws {
			switch {
			case w.ChainsTo == st.Previous.Fingerprint:
				blockers = append(blockers, fmt.Sprintf("%s %s/%s (%s) still chains to the old root (serial %s)", strings.ToLower(w.Kind), w.Namespace, w.Name, w.Path, w.Serial))
			case !w.Delivered(now):
				blockers = append(blockers, undelivered(w))
			}
		}
	}
	slices.Sort(blockers)
	return blockers, nil
}

// undelivered says that pods may still read a Secret's previous content.
func undelivered(w fleet.Workload) string {
	return fmt.Sprintf("%s %s/%s (%s) changed; the kubelets may bring it into its pods as late as %s (the CA's --file-mount-propagation)",
		strings.ToLower(w.Kind), w.Namespace, w.Name, w.Path, w.DeliveredBy.Format(time.RFC3339))
}

func bundleHas(bundlePEM, fingerprint string) bool {
	roots, err := pki.DecodeCertificates([]byte(bundlePEM))
	if err != nil {
		return false
	}
	return slices.ContainsFunc(roots, func(r *x509.Certificate) bool { return pki.Fingerprint(r) == fingerprint })
}

// rekeySDSWorkloads asks the node agents to re-key every pod they serve, so
// that SDS workloads move to the new root without restarts.
func (o *Options) rekeySDSWorkloads(ctx context.Context) (int, error) {
	pods, err := o.clients.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, cluster.Explain(err, "list pods")
	}
	value := requestValue()
	n := 0
	for _, p := range pods.Items {
		if _, ok := p.Annotations[fleet.AnnotationSDS]; !ok {
			continue
		}
		if _, err := o.clients.Client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.MergePatchType,
			annotationPatch(fleet.AnnotationRotate, value), metav1.PatchOptions{FieldManager: "kubectl-meshcert"}); err != nil && !apierrors.IsNotFound(err) {
			return n, cluster.Explain(err, "request rotation of pod "+p.Name)
		}
		n++
	}
	return n, nil
}

func (o *Options) printRoot(st RootStatus) error {
	return o.Output.Print(o.Out, st, nil, func(w io.Writer) error {
		if st.Done != "" {
			fmt.Fprintln(w, st.Done)
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "CA:           %s (%s)\nPhase:        %s\nSigning root: %s (until %s)\n", st.Namespace, st.Source, st.Phase,
			st.SigningRoot.Fingerprint, st.SigningRoot.NotAfter.Format(time.RFC3339))
		for _, r := range st.Bundle {
			fmt.Fprintf(w, "Trusted root: %s (until %s)\n", r.Fingerprint, r.NotAfter.Format(time.RFC3339))
		}
		if st.Next != nil {
			fmt.Fprintf(w, "Next root:    %s\n", st.Next.Fingerprint)
		}
		if st.Previous != nil {
			fmt.Fprintf(w, "Previous:     %s\n", st.Previous.Fingerprint)
		}
		if len(st.Blockers) > 0 {
			fmt.Fprintf(w, "Blockers of the next phase:\n  - %s\n", strings.Join(st.Blockers, "\n  - "))
		}
		return nil
	})
}
