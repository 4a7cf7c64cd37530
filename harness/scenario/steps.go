// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package scenario

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/harness/provider"
)

// Action is what one step does. A new step is a type that implements it,
// registered once in actions under the name scenario files give it.
type Action interface {
	// Validate checks the step as loaded, before anything runs.
	Validate() error
	// Run performs the step on p within ctx, the step's timeout.
	Run(ctx context.Context, p provider.Provider) error
}

// actions makes the zero value of each step, by the name files use.
var actions = map[string]func() Action{
	"deploy":           func() Action { return &Deploy{} },
	"expectCert":       func() Action { return &ExpectCert{} },
	"expectCall":       func() Action { return &ExpectCall{} },
	"expectError":      func() Action { return &ExpectError{} },
	"plugin":           func() Action { return &Plugin{} },
	"waitRotation":     func() Action { return &WaitRotation{} },
	"stopCA":           func() Action { return &StopCA{} },
	"startCA":          func() Action { return &StartCA{} },
	"rotateRoot":       func() Action { return &RotateRoot{} },
	"deleteSecret":     func() Action { return &DeleteSecret{} },
	"deletePod":        func() Action { return &DeletePod{} },
	"startTraffic":     func() Action { return &Traffic{} },
	"stopTraffic":      func() Action { return &StopTraffic{} },
	"sleep":            func() Action { return &Sleep{} },
	"expectAccess":     func() Action { return &ExpectAccess{} },
	"expectSocketHeld": func() Action { return &ExpectSocketHeld{} },
	"expectCAMetric":   func() Action { return &ExpectCAMetric{} },
	"restartAgent":     func() Action { return &RestartAgent{} },
	"killCALeader":     func() Action { return &KillCALeader{} },
	"restartAPIServer": func() Action { return &RestartAPIServer{} },
	"expectPlacement":  func() Action { return &ExpectPlacement{} },
	"deleteTokenPod":   func() Action { return &DeleteTokenPod{} },
}

// ActionKinds lists the step names, sorted.
func ActionKinds() []string {
	kinds := make([]string, 0, len(actions))
	for k := range actions {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	return kinds
}

// stretched is a step whose length a provider's timeouts scale changes.
type stretched interface {
	// stretched returns a copy of the step made f times longer.
	stretched(f float64) Action
}

// counted is a step whose count of workloads a provider's scale changes.
type counted interface {
	// scaled returns a copy of the step with its count multiplied by f.
	scaled(f float64) Action
}

// scaleCount multiplies a count by f, keeping at least one workload.
func scaleCount(count int, f float64) int {
	if count <= 1 {
		return count
	}
	return max(1, int(math.Round(float64(count)*f)))
}

// Deploy runs a workload, or Count of them named <name>-<i>.
type Deploy struct {
	Name           string   `yaml:"name"`
	Namespace      string   `yaml:"namespace"`
	ServiceAccount string   `yaml:"serviceAccount"`
	Path           string   `yaml:"path"`
	Allow          []string `yaml:"allow"`
	Count          int      `yaml:"count"`
	// Token replaces the projected token with a bad one: wrong-audience,
	// expired, forged or deleted-pod.
	Token string `yaml:"token"`
}

// Validate checks the workload's names and token.
func (d *Deploy) Validate() error {
	if d.Name == "" || d.Namespace == "" {
		return errors.New("deploy needs a name and a namespace")
	}
	tokens := []string{"", provider.TokenWrongAudience, provider.TokenExpired, provider.TokenForged, provider.TokenDeletedPod, provider.TokenPodBound}
	if !slices.Contains(tokens, d.Token) {
		return fmt.Errorf("unknown token %q: use wrong-audience, expired, forged, deleted-pod or pod-bound", d.Token)
	}
	return nil
}

func (d *Deploy) scaled(f float64) Action {
	c := *d
	c.Count = scaleCount(d.Count, f)
	return &c
}

// Run deploys the workloads, Count of them at once as a scale-up would,
// each with a service account of its own name unless ServiceAccount names
// one for all.
func (d *Deploy) Run(ctx context.Context, p provider.Provider) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for _, name := range names(d.Name, d.Count) {
		sa := d.ServiceAccount
		if sa == "" {
			sa = name
		}
		g.Go(func() error {
			return p.Deploy(ctx, provider.WorkloadSpec{Name: name, Namespace: d.Namespace, ServiceAccount: sa, Path: d.Path, Allow: d.Allow, Token: d.Token})
		})
	}
	return g.Wait()
}

// ExpectCert waits until the workload (or all Count of them) holds a
// certificate for SPIFFEID, delivered by Path.
type ExpectCert struct {
	Workload string `yaml:"workload"`
	Path     string `yaml:"path"`
	SPIFFEID string `yaml:"spiffeID"`
	Count    int    `yaml:"count"`
	// Certificates, when set, is the fewest distinct certificates each
	// workload must have held since it started.
	Certificates int `yaml:"certificates"`
	// Mark records each workload's serial under this name, once the rest
	// holds; SameAs and NewerThan compare with a serial recorded so.
	Mark      string `yaml:"mark"`
	SameAs    string `yaml:"sameAs"`
	NewerThan string `yaml:"newerThan"`
}

// Validate checks the workload's name and the path.
func (e *ExpectCert) Validate() error {
	if e.Path != "" && e.Path != provider.MeshSDS && e.Path != provider.MeshFileMount {
		return fmt.Errorf("expectCert path %q: use sds or file-mount", e.Path)
	}
	return needWorkload(e.Workload)
}

func (e *ExpectCert) scaled(f float64) Action {
	c := *e
	c.Count = scaleCount(e.Count, f)
	return &c
}

// Run waits for every workload's certificate.
func (e *ExpectCert) Run(ctx context.Context, p provider.Provider) error {
	for _, name := range names(e.Workload, e.Count) {
		err := eventually(ctx, func() error {
			st, err := p.Status(ctx, name)
			if err != nil {
				return err
			}
			switch {
			case st.Identity == "":
				return fmt.Errorf("%s holds no certificate yet (last error: %q)", name, st.LastError)
			case e.SPIFFEID != "" && st.Identity != e.SPIFFEID:
				return fmt.Errorf("%s holds %s, want %s", name, st.Identity, e.SPIFFEID)
			case e.Path != "" && st.Path != e.Path:
				return fmt.Errorf("%s got its certificate via %q by its own report, want %s", name, st.Path, e.Path)
			case st.Certificates < e.Certificates:
				return fmt.Errorf("%s has held %d certificate(s), want at least %d", name, st.Certificates, e.Certificates)
			}
			if err := e.compare(ctx, name, st.Serial); err != nil {
				return err
			}
			if e.Mark != "" {
				marksOf(ctx).record(e.Mark, name, st.Serial)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// compare checks serial against the marks SameAs and NewerThan name.
func (e *ExpectCert) compare(ctx context.Context, name, serial string) error {
	for _, c := range []struct {
		mark string
		same bool
	}{{e.SameAs, true}, {e.NewerThan, false}} {
		if c.mark == "" {
			continue
		}
		recorded, ok := marksOf(ctx).serial(c.mark, name)
		if !ok {
			return fmt.Errorf("no serial of %s is marked %q: record one with an earlier expectCert mark", name, c.mark)
		}
		if c.same && serial != recorded {
			return fmt.Errorf("%s serves serial %s, not %s as when marked %q", name, serial, recorded, c.mark)
		}
		if !c.same && serial == recorded {
			return fmt.Errorf("%s still serves serial %s, marked %q", name, serial, c.mark)
		}
	}
	return nil
}

// ExpectCall calls From → To over mTLS.
type ExpectCall struct {
	From string `yaml:"from"`
	To   string `yaml:"to"`
	// Succeed defaults to true.
	Succeed       *bool  `yaml:"succeed"`
	Peer          string `yaml:"peer"`
	ErrorContains string `yaml:"errorContains"`
}

// Validate checks both ends.
func (e *ExpectCall) Validate() error {
	if e.From == "" || e.To == "" {
		return errors.New("expectCall needs from and to")
	}
	return nil
}

// Run calls until the outcome is the one expected.
func (e *ExpectCall) Run(ctx context.Context, p provider.Provider) error {
	succeed := e.Succeed == nil || *e.Succeed
	return eventually(ctx, func() error {
		peer, err := p.Call(ctx, e.From, e.To)
		switch {
		case succeed && err != nil:
			return fmt.Errorf("%s → %s failed: %w", e.From, e.To, err)
		case succeed && e.Peer != "" && peer != e.Peer:
			return fmt.Errorf("%s → %s reached %s, want %s", e.From, e.To, peer, e.Peer)
		case !succeed && err == nil:
			return fmt.Errorf("%s → %s succeeded (peer %s), want a failure", e.From, e.To, peer)
		case !succeed && !strings.Contains(err.Error(), e.ErrorContains):
			return fmt.Errorf("%s → %s failed with %q, which lacks %q", e.From, e.To, err, e.ErrorContains)
		}
		return nil
	})
}

// ExpectError waits until the workload reports an error containing every
// text.
type ExpectError struct {
	Workload string   `yaml:"workload"`
	Contains []string `yaml:"contains"`
	// Holding says the workload keeps the certificate it held, as Envoy
	// does when its stream ends; by default it must hold none.
	Holding bool `yaml:"holding"`
}

// Validate checks the workload's name.
func (e *ExpectError) Validate() error { return needWorkload(e.Workload) }

// Run waits for the error, and for the workload to hold no certificate
// (with Holding, to hold one).
func (e *ExpectError) Run(ctx context.Context, p provider.Provider) error {
	return eventually(ctx, func() error {
		st, err := p.Status(ctx, e.Workload)
		if err != nil {
			return err
		}
		for _, want := range e.Contains {
			if !strings.Contains(st.LastError, want) {
				return fmt.Errorf("%s's last error %q lacks %q", e.Workload, st.LastError, want)
			}
		}
		if e.Holding && st.Identity == "" {
			return fmt.Errorf("%s holds no certificate, want the one it held", e.Workload)
		}
		if !e.Holding && st.Identity != "" {
			return fmt.Errorf("%s holds a certificate for %s, want none", e.Workload, st.Identity)
		}
		return nil
	})
}

// Plugin runs kubectl meshcert once and checks its exit code, output and
// JSON; with Retry it runs it again until they match, for state that
// settles (a report, a push).
type Plugin struct {
	Args     []string          `yaml:"args"`
	ExitCode int               `yaml:"exitCode"`
	JSON     map[string]string `yaml:"json"`
	Contains []string          `yaml:"contains"`
	Retry    bool              `yaml:"retry"`
}

// Validate checks that there is a command to run.
func (pl *Plugin) Validate() error {
	if len(pl.Args) == 0 {
		return errors.New("plugin needs args")
	}
	return nil
}

// Run runs the command, until its outcome is the one expected with Retry.
func (pl *Plugin) Run(ctx context.Context, p provider.Provider) error {
	return once(ctx, pl.Retry, func() error { return runPlugin(ctx, p, pl) })
}

// once runs check, and again until it passes when retry is set.
func once(ctx context.Context, retry bool, check func() error) error {
	if retry {
		return eventually(ctx, check)
	}
	return check()
}

// WaitRotation waits until the workload has held Count more certificates
// than it held when the step began.
type WaitRotation struct {
	Workload string `yaml:"workload"`
	Count    int    `yaml:"count"`
}

// Validate checks the workload's name and the count.
func (w *WaitRotation) Validate() error {
	if w.Count < 1 {
		return fmt.Errorf("waitRotation count %d must be at least 1", w.Count)
	}
	return needWorkload(w.Workload)
}

// Run waits for the rotations.
func (w *WaitRotation) Run(ctx context.Context, p provider.Provider) error {
	start := -1
	return eventually(ctx, func() error {
		st, err := p.Status(ctx, w.Workload)
		if err != nil {
			return err
		}
		if st.Certificates == 0 {
			return fmt.Errorf("%s holds no certificate yet (last error: %q)", w.Workload, st.LastError)
		}
		if start < 0 {
			start = st.Certificates
		}
		if rotated := st.Certificates - start; rotated < w.Count {
			return fmt.Errorf("%s has rotated %d time(s) since the step began, want %d", w.Workload, rotated, w.Count)
		}
		return nil
	})
}

// StopCA stops the CA, as if its pods were gone.
type StopCA struct{}

// Validate has nothing to check.
func (StopCA) Validate() error { return nil }

// Run stops the CA.
func (StopCA) Run(ctx context.Context, p provider.Provider) error { return p.StopCA(ctx) }

// RestartAgent restarts the node agents, as a rollout or a crash would; with
// Workload, only the agent of that workload's node.
type RestartAgent struct {
	Workload string `yaml:"workload"`
}

// Validate has nothing to check.
func (RestartAgent) Validate() error { return nil }

// Run restarts the agents and returns once they serve again.
func (r RestartAgent) Run(ctx context.Context, p provider.Provider) error {
	return p.RestartAgent(ctx, r.Workload)
}

// KillCALeader kills the CA replica that holds the leader lease, as a crash
// of its pod, and waits until another replica (or the killed one, started
// again under a new identity) leads: the lease stays with the dead replica
// until it expires, and leader-only work (root publication, file-mount
// Secrets) waits meanwhile.
type KillCALeader struct {
	// Leaderless returns at once, while the lease still names the dead
	// replica, so that the next steps run with no leader at work.
	Leaderless bool `yaml:"leaderless"`
}

// Validate has nothing to check.
func (KillCALeader) Validate() error { return nil }

// Run kills the leader and waits for a new one, or with Leaderless checks
// that none leads yet.
func (k KillCALeader) Run(ctx context.Context, p provider.Provider) error {
	killed, err := p.KillCALeader(ctx)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(p.RESTConfig())
	if err != nil {
		return err
	}
	if k.Leaderless {
		leader, err := provider.CALeader(ctx, client)
		if err != nil {
			return err
		}
		if leader != killed {
			return fmt.Errorf("replica %s leads already: the killed %s's lease passed before the next steps could run leaderless", leader, killed)
		}
		return nil
	}
	return eventually(ctx, func() error {
		leader, err := provider.CALeader(ctx, client)
		if err != nil {
			return err
		}
		if leader == killed {
			return fmt.Errorf("the killed replica %s still holds the leader lease", killed)
		}
		return nil
	})
}

// RestartAPIServer restarts the cluster's API server, as a crash would.
type RestartAPIServer struct{}

// Validate has nothing to check.
func (RestartAPIServer) Validate() error { return nil }

// Run restarts the API server and returns once it serves again.
func (RestartAPIServer) Run(ctx context.Context, p provider.Provider) error {
	return p.RestartAPIServer(ctx)
}

// DeleteTokenPod deletes the pod a workload's pod-bound token is bound to,
// so that the token goes bad while the workload runs, and waits until the
// API server refuses it.
type DeleteTokenPod struct {
	Workload string `yaml:"workload"`
}

// Validate checks the workload's name.
func (d *DeleteTokenPod) Validate() error { return needWorkload(d.Workload) }

// Run deletes the holder pod and waits until it is gone.
func (d *DeleteTokenPod) Run(ctx context.Context, p provider.Provider) error {
	pod, err := p.Pod(ctx, d.Workload)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(p.RESTConfig())
	if err != nil {
		return err
	}
	pods := client.CoreV1().Pods(pod.Namespace)
	holder := provider.TokenHolderPod(d.Workload)
	if err := pods.Delete(ctx, holder, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		return fmt.Errorf("delete %s/%s, the pod %s's token is bound to (deploy it with token: pod-bound): %w", pod.Namespace, holder, d.Workload, err)
	}
	return eventually(ctx, func() error {
		_, err := pods.Get(ctx, holder, metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("pod %s/%s is not gone yet (%v)", pod.Namespace, holder, err)
		}
		return nil
	})
}

// StartCA starts the CA again.
type StartCA struct{}

// Validate has nothing to check.
func (StartCA) Validate() error { return nil }

// Run starts the CA.
func (StartCA) Run(ctx context.Context, p provider.Provider) error { return p.StartCA(ctx) }

// RotateRoot runs one phase of a root rotation, retrying while blockers
// remain.
type RotateRoot struct {
	Phase string `yaml:"phase"`
	// Retry runs the phase again until its gates let it (delivery takes
	// a moment); without it one refusal fails the step.
	Retry bool `yaml:"retry"`
	// ExpectRefusal, when set, is the refusal the phase must meet: the
	// step passes only if the plugin refuses with that exit code and
	// message.
	ExpectRefusal *Refusal `yaml:"expectRefusal"`
}

// Refusal is how a command must fail.
type Refusal struct {
	ExitCode int    `yaml:"exitCode"`
	Contains string `yaml:"contains"`
}

// Validate checks the phase.
func (r *RotateRoot) Validate() error {
	if !slices.Contains([]string{"prepare", "activate", "finish"}, r.Phase) {
		return fmt.Errorf("rotateRoot phase %q: use prepare, activate or finish", r.Phase)
	}
	if r.ExpectRefusal != nil && (r.ExpectRefusal.ExitCode == 0 || r.ExpectRefusal.Contains == "") {
		return errors.New("rotateRoot expectRefusal needs the non-zero exitCode and the message (contains)")
	}
	return nil
}

// Run runs the phase once, or until the plugin lets it with Retry, or
// checks that the plugin refuses it as expected.
func (r *RotateRoot) Run(ctx context.Context, p provider.Provider) error {
	run := func() (string, int) {
		_, stderr, code := provider.Plugin(ctx, p, "rotate", "root", "--phase", r.Phase, "--ca-namespace", mesh.DefaultNamespace)
		return strings.TrimSpace(stderr), code
	}
	if want := r.ExpectRefusal; want != nil {
		stderr, code := run()
		if code != want.ExitCode || !strings.Contains(stderr, want.Contains) {
			return fmt.Errorf("rotate root --phase %s exited %d (%s), want exit %d with %q", r.Phase, code, stderr, want.ExitCode, want.Contains)
		}
		return nil
	}
	return once(ctx, r.Retry, func() error {
		if stderr, code := run(); code != 0 {
			return fmt.Errorf("rotate root --phase %s exited %d: %s", r.Phase, code, stderr)
		}
		return nil
	})
}

// DeleteSecret deletes a Secret.
type DeleteSecret struct {
	Namespace string `yaml:"namespace"`
	Name      string `yaml:"name"`
}

// Validate checks the Secret's names.
func (d *DeleteSecret) Validate() error {
	if d.Namespace == "" || d.Name == "" {
		return errors.New("deleteSecret needs a namespace and a name")
	}
	return nil
}

// Run deletes the Secret.
func (d *DeleteSecret) Run(ctx context.Context, p provider.Provider) error {
	return provider.DeleteSecret(ctx, p, d.Namespace, d.Name)
}

// DeletePod deletes a workload's pod object.
type DeletePod struct {
	Workload string `yaml:"workload"`
}

// Validate checks the workload's name.
func (d *DeletePod) Validate() error { return needWorkload(d.Workload) }

// Run deletes the pod.
func (d *DeletePod) Run(ctx context.Context, p provider.Provider) error {
	return p.DeletePod(ctx, d.Workload)
}

// Traffic starts steady calls.
type Traffic struct {
	From     string   `yaml:"from"`
	To       string   `yaml:"to"`
	Interval Duration `yaml:"interval"`
}

// Validate checks both ends.
func (t *Traffic) Validate() error {
	if t.From == "" || t.To == "" {
		return errors.New("startTraffic needs from and to")
	}
	return nil
}

// Run starts the calls, every 100ms unless the step says otherwise.
func (t *Traffic) Run(ctx context.Context, p provider.Provider) error {
	interval := t.Interval.Duration
	if interval == 0 {
		interval = 100 * time.Millisecond
	}
	return p.StartTraffic(ctx, t.From, t.To, interval)
}

// StopTraffic stops them and bounds the failures.
type StopTraffic struct {
	From        string `yaml:"from"`
	MaxFailures int    `yaml:"maxFailures"`
	// MinCalls is the fewest successful calls that pass, DefaultMinCalls
	// when unset: traffic that never ran proves nothing. The step lets the
	// calls go on until there are that many (a slow machine makes fewer
	// calls in a step's time) and fails at its timeout.
	MinCalls int `yaml:"minCalls"`
}

// DefaultMinCalls is stopTraffic's minCalls when a scenario gives none.
const DefaultMinCalls = 10

// Validate checks the workload's name.
func (t *StopTraffic) Validate() error { return needWorkload(t.From) }

// Run waits for the fewest calls, stops the calls and checks their counts.
func (t *StopTraffic) Run(ctx context.Context, p provider.Provider) error {
	minCalls := t.MinCalls
	if minCalls == 0 {
		minCalls = DefaultMinCalls
	}
	// Failures end the wait at once; they are judged below.
	waited := eventually(ctx, func() error {
		st, err := p.Status(ctx, t.From)
		if err != nil {
			return err
		}
		if st.CallsOK < int64(minCalls) && st.CallsFailed <= int64(t.MaxFailures) {
			return fmt.Errorf("%s made %d successful calls, want at least %d", t.From, st.CallsOK, minCalls)
		}
		return nil
	})
	st, err := p.StopTraffic(context.WithoutCancel(ctx), t.From)
	if err != nil {
		return err
	}
	if st.CallsFailed > int64(t.MaxFailures) {
		return fmt.Errorf("%s: %d of %d calls failed (at most %d allowed); last: %s", t.From, st.CallsFailed, st.CallsFailed+st.CallsOK, t.MaxFailures, st.LastCallErr)
	}
	if st.CallsOK < int64(minCalls) {
		return fmt.Errorf("%s made %d successful calls, want at least %d: %w", t.From, st.CallsOK, minCalls, waited)
	}
	return nil
}

// Sleep waits, written as "2s".
type Sleep struct{ Duration }

// UnmarshalYAML reads "2s".
func (s *Sleep) UnmarshalYAML(n *yaml.Node) error { return s.Duration.UnmarshalYAML(n) }

// Validate checks that the wait is positive.
func (s *Sleep) Validate() error {
	if s.Duration.Duration <= 0 {
		return fmt.Errorf("sleep %s must be positive", s.Duration.Duration)
	}
	return nil
}

func (s *Sleep) stretched(f float64) Action {
	return &Sleep{Duration{time.Duration(float64(s.Duration.Duration) * f)}}
}

// Run waits.
func (s *Sleep) Run(ctx context.Context, _ provider.Provider) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(s.Duration.Duration):
		return nil
	}
}

func needWorkload(name string) error {
	if name == "" {
		return errors.New("the step names no workload")
	}
	return nil
}
