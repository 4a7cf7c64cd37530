// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package rotate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/meshcert/kubectl-meshcert/core/ca"
	"github.com/meshcert/kubectl-meshcert/plugin/cluster"
	"github.com/meshcert/kubectl-meshcert/plugin/command"
	"github.com/meshcert/kubectl-meshcert/plugin/output"
)

// Phases of `rotate root --phase`.
const (
	PhasePrepare  = "prepare"
	PhaseActivate = "activate"
	PhaseFinish   = "finish"
)

// RootStatus is `rotate root status` JSON, and what the phases print.
type RootStatus struct {
	*ca.RotationStatus
	// Blockers stop the next phase.
	Blockers []string `json:"blockers"`
	// Done says what the command just did; empty for status.
	Done string `json:"done,omitempty"`
}

// RootOptions are `rotate root`'s flags and state.
type RootOptions struct {
	*CommonOptions
	Output output.Options
	Phase  string
	DryRun bool
	Force  bool
	// Wait retries a phase its gates refuse until they let it, for at
	// most this long; 0 refuses at once.
	Wait time.Duration
	genericiooptions.IOStreams

	factory *cluster.Factory
	clients *cluster.Clients
}

func newRootCommand(factory *cluster.Factory, streams genericiooptions.IOStreams, common *CommonOptions) *cobra.Command {
	o := &RootOptions{CommonOptions: common, IOStreams: streams, factory: factory}
	cmd := &cobra.Command{
		Use:   "root --phase prepare|activate|finish | status",
		Short: "Rotate the CA root in three guided phases: prepare, activate, finish",
		Long: `prepare makes a new root and distributes the bundle old+new everywhere: the root ConfigMaps, SDS ROOTCA and
file-mount root-cert.pem. activate makes the CA sign with the new root; it is refused until every known workload
trusts both roots, and then asks every SDS workload to re-key. finish drops the old root, and is refused while a
known workload certificate still chains to it (--force overrides). The phase is kept in the CA Secret, so an
interrupted rotation resumes; "rotate root status" shows where it stands and what blocks the next phase.`,
		Example: `  # Start a rotation: the bundle now holds the old and the new root
  kubectl meshcert rotate root --phase prepare

  # See what still blocks the next phase
  kubectl meshcert rotate root status

  # Say what activate would do, and change nothing
  kubectl meshcert rotate root --phase activate --dry-run

  # Activate as soon as every workload trusts both roots, waiting up to ten minutes
  kubectl meshcert rotate root --phase activate --wait 10m`,
		Args: cobra.NoArgs,
		RunE: command.RunE(o),
	}
	cmd.Flags().StringVar(&o.Phase, "phase", "", "prepare, activate or finish")
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "say what the phase would do, and change nothing")
	cmd.Flags().BoolVar(&o.Force, "force", false, "run the phase despite blockers")
	cmd.Flags().DurationVar(&o.Wait, "wait", 0, "while blockers remain, wait for them to clear for up to this long (checking every 2s) instead of refusing")
	o.Output.Kind = "RootRotation"
	o.Output.AddFlags(cmd)
	return cmd
}

// Validate checks the flags, before any API call.
func (o *RootOptions) Validate() error {
	switch o.Phase {
	case PhasePrepare, PhaseActivate, PhaseFinish:
	case "":
		return errors.New("--phase is required: prepare, activate or finish (or use `rotate root status`)")
	default:
		return fmt.Errorf("unknown --phase %q: use prepare, activate or finish", o.Phase)
	}
	if o.Wait < 0 {
		return fmt.Errorf("--wait %s must not be negative", o.Wait)
	}
	if err := o.CommonOptions.Validate(); err != nil {
		return err
	}
	return o.Output.Validate()
}

// Complete has nothing to fill in: the command takes no arguments.
func (o *RootOptions) Complete([]string) error { return nil }

// Run runs the phase; core/ca refuses it while something blocks it.
func (o *RootOptions) Run(ctx context.Context) error {
	var err error
	if o.clients, err = o.factory.Connect(ctx); err != nil {
		return err
	}
	client := o.clients.Client
	done, err := o.runPhaseWaiting(ctx)
	if err != nil {
		return err
	}
	if o.DryRun {
		done = "dry run, nothing changed: would have " + done
	}
	after, _, err := ca.ReadRotationStatus(ctx, client, o.CANamespace)
	if err != nil {
		return err
	}
	return printRoot(o.Out, o.Output, RootStatus{RotationStatus: after, Blockers: []string{}, Done: done})
}

// runPhaseWaiting runs the phase; with --wait it runs it again every 2s
// while its gates refuse, saying on ErrOut what it waits for.
func (o *RootOptions) runPhaseWaiting(ctx context.Context) (string, error) {
	deadline := time.Now().Add(o.Wait)
	var said string
	for {
		done, err := o.runPhase(ctx)
		var blocked *ca.BlockedError
		if o.Wait == 0 || !errors.As(err, &blocked) {
			return done, err
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%w\n(still blocked after --wait %s)", err, o.Wait)
		}
		if now := strings.Join(blocked.Blockers, "; "); now != said {
			fmt.Fprintf(o.ErrOut, "waiting: %d blocker(s): %s\n", len(blocked.Blockers), now)
			said = now
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// runPhase runs the phase once and says what it did.
func (o *RootOptions) runPhase(ctx context.Context) (string, error) {
	client, opts := o.clients.Client, ca.PhaseOptions{DryRun: o.DryRun, Force: o.Force}
	var done string
	switch o.Phase {
	case PhasePrepare:
		if _, err := ca.PrepareRootRotation(ctx, client, o.CANamespace, opts); err != nil {
			return "", err
		}
		done = "prepared a new root; the bundle now holds old and new. Next, once every workload trusts both: --phase activate"
	case PhaseActivate:
		result, err := ca.ActivateRootRotation(ctx, o.clients.Fleet, o.CANamespace, opts)
		if err != nil {
			return "", err
		}
		done = fmt.Sprintf("the CA signs with the new root; asked %d SDS workload(s) to re-key (file-mount Secrets are re-issued by the CA). Next, once none chains to the old root: --phase finish", result.Rekeyed)
		done = forced(done, result.Blockers)
	case PhaseFinish:
		result, err := ca.FinishRootRotation(ctx, o.clients.Fleet, o.CANamespace, opts)
		if err != nil {
			return "", err
		}
		done = forced("dropped the old root from the bundle; the rotation is complete", result.Blockers)
	}
	return done, nil
}

// forced notes the blockers --force overrode.
func forced(done string, blockers []string) string {
	if len(blockers) == 0 {
		return done
	}
	return fmt.Sprintf("%s (forced past %d blocker(s): %s)", done, len(blockers), strings.Join(blockers, "; "))
}

// StatusOptions are `rotate root status`'s flags and state.
type StatusOptions struct {
	*CommonOptions
	Output output.Options
	Watch  bool
	genericiooptions.IOStreams

	factory *cluster.Factory
	clients *cluster.Clients
}

func newStatusCommand(factory *cluster.Factory, streams genericiooptions.IOStreams, common *CommonOptions) *cobra.Command {
	o := &StatusOptions{CommonOptions: common, IOStreams: streams, factory: factory}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the root rotation phase, the roots, and what blocks the next phase",
		Example: `  # Where the rotation stands, as JSON
  kubectl meshcert rotate root status -o json

  # Follow the rotation: print the status again whenever it or its blockers change
  kubectl meshcert rotate root status -w`,
		Args: cobra.NoArgs,
		RunE: command.RunE(o),
	}
	o.Output.Kind = "RootRotation"
	o.Output.AddFlags(cmd)
	cmd.Flags().BoolVarP(&o.Watch, "watch", "w", false, "print the status again whenever the CA's Secret or the blockers change, until interrupted")
	return cmd
}

// Validate checks the flags, before any API call.
func (o *StatusOptions) Validate() error {
	if err := o.CommonOptions.Validate(); err != nil {
		return err
	}
	return o.Output.Validate()
}

// Complete has nothing to fill in: the command takes no arguments.
func (o *StatusOptions) Complete([]string) error { return nil }

// Run prints the rotation status and its blockers.
func (o *StatusOptions) Run(ctx context.Context) error {
	var err error
	if o.clients, err = o.factory.Connect(ctx); err != nil {
		return err
	}
	if o.Watch {
		return o.watch(ctx)
	}
	st, err := o.status(ctx)
	if err != nil {
		return err
	}
	return printRoot(o.Out, o.Output, *st)
}

func (o *StatusOptions) status(ctx context.Context) (*RootStatus, error) {
	st, _, err := ca.ReadRotationStatus(ctx, o.clients.Client, o.CANamespace)
	if err != nil {
		return nil, err
	}
	blockers, err := ca.RotationBlockers(ctx, o.clients.Fleet, st, time.Now())
	if err != nil {
		return nil, err
	}
	return &RootStatus{RotationStatus: st, Blockers: blockers}, nil
}

// watchRecheck is how often -w looks at the blockers, which depend on
// every workload, besides whenever the CA's Secret changes.
const watchRecheck = 5 * time.Second

// watch prints the status, then again whenever it changes: at once when
// the CA's Secret changes (a watch), and the blockers within watchRecheck.
func (o *StatusOptions) watch(ctx context.Context) error {
	changed := make(chan struct{}, 1)
	poke := func(any) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	factory := informers.NewSharedInformerFactoryWithOptions(o.clients.Client, 0, informers.WithNamespace(o.CANamespace))
	if _, err := factory.Core().V1().Secrets().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: poke, UpdateFunc: func(_, obj any) { poke(obj) }, DeleteFunc: poke,
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	last := ""
	for {
		st, err := o.status(ctx)
		if err != nil && ctx.Err() == nil {
			return err
		}
		if st != nil {
			var b strings.Builder
			if err := printRoot(&b, o.Output, *st); err != nil {
				return err
			}
			if b.String() != last {
				if last != "" && !o.Output.Machine() {
					fmt.Fprintln(o.Out)
				}
				fmt.Fprint(o.Out, b.String())
				last = b.String()
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-time.After(watchRecheck):
		}
	}
}

func printRoot(out io.Writer, format output.Options, st RootStatus) error {
	return format.Print(out, st, nil, func(w io.Writer) error {
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
			_, err := fmt.Fprintf(w, "Blockers of the next phase:\n  - %s\n", strings.Join(st.Blockers, "\n  - "))
			return err
		}
		return nil
	})
}
