// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package cli is the meshcert-harness command line.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/meshcert/kubectl-meshcert/harness/kind"
	"github.com/meshcert/kubectl-meshcert/harness/local"
	"github.com/meshcert/kubectl-meshcert/harness/provider"
	"github.com/meshcert/kubectl-meshcert/harness/scenario"
)

// Execute runs meshcert-harness with args and returns its exit code.
func Execute(ctx context.Context, args []string, out, errOut io.Writer) int {
	root := &cobra.Command{
		Use:           "meshcert-harness",
		Short:         "Bring up clusters with and without bound tokens and prove the mesh's certificate paths on them",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(out)
	root.SetErr(errOut)
	root.AddCommand(runCommand(out), upCommand(out), soakCommand(out), benchCommand(out), fleetCommand(out), floorCommand())
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		if errors.Is(err, context.Canceled) {
			return 130
		}
		fmt.Fprintf(errOut, "error: %v\n", err)
		return 1
	}
	return 0
}

// newProvider returns a factory of providers named name, and what to call
// when the run ends.
func newProvider(name string, kindOpts kind.Options) (func() provider.Provider, func() error, error) {
	switch name {
	case "local":
		return func() provider.Provider { return local.New() }, func() error { return nil }, nil
	case "kind":
		clusters, err := kind.NewClusters(kindOpts)
		if err != nil {
			return nil, nil, err
		}
		return func() provider.Provider { return kind.NewProvider(clusters) }, clusters.Close, nil
	}
	return nil, nil, fmt.Errorf("unknown --provider %q: use local or kind", name)
}

func runCommand(out io.Writer) *cobra.Command {
	var providerName, profile, junit, logs string
	kindOpts := kind.Options{Out: out}
	cmd := &cobra.Command{
		Use:   "run [PATH...]",
		Short: "Run scenario files (default: scenarios/) and end with a line \"N passed, N failed\"",
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			factory, closeProvider, err := newProvider(providerName, kindOpts)
			if err != nil {
				return err
			}
			defer func() { err = errors.Join(err, closeProvider()) }()
			if len(args) == 0 {
				args = []string{"scenarios"}
			}
			scenarios, err := scenario.LoadAll(args)
			if err != nil {
				return err
			}
			if logs == "" {
				if logs, err = os.MkdirTemp("", "meshcert-scenario-logs-"); err != nil {
					return err
				}
			}
			runner := &scenario.Runner{NewProvider: factory, Profile: profile, Out: out, LogDir: logs}
			results := runner.Run(cmd.Context(), scenarios)
			if junit != "" {
				if err := scenario.WriteJUnit(junit, results); err != nil {
					return err
				}
			}
			var failed []string
			collected := false
			for _, r := range results {
				if r.Err != nil {
					failed = append(failed, r.Scenario+"/"+r.Profile)
					collected = collected || r.Logs != ""
				}
			}
			if len(failed) > 0 {
				where := ""
				if collected {
					where = " (logs in " + logs + ")"
				}
				return fmt.Errorf("%d scenario run(s) failed: %s%s", len(failed), strings.Join(failed, ", "), where)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&providerName, "provider", "local", "cluster provider: local (the embedded control plane) or kind")
	cmd.Flags().StringVar(&profile, "profile", "", "run only this profile (bound or legacy)")
	cmd.Flags().StringVar(&junit, "junit", "", "write a JUnit XML report here")
	cmd.Flags().StringVar(&logs, "logs", "", "directory for the logs of failed scenarios (default: a new temporary one)")
	cmd.Flags().StringVar(&kindOpts.NodeImage, "node-image", kind.DefaultNodeImage, "kind: node image (`make kind-node-image` builds "+kind.OfflineNodeImage+" offline)")
	cmd.Flags().StringVar(&kindOpts.Image, "image", kind.DefaultImage, "kind: the project's image, loaded into the nodes (`make image` builds it)")
	cmd.Flags().BoolVar(&kindOpts.Keep, "keep", false, "kind: keep the clusters after the run")
	return cmd
}

// UpReport is the JSON line `up` prints when ready. Field names are stable.
type UpReport struct {
	Kubeconfig string       `json:"kubeconfig"`
	Profile    string       `json:"profile"`
	Mesh       string       `json:"mesh"`
	CAAddress  string       `json:"caAddress"`
	CARootFile string       `json:"caRootFile"`
	AgentSock  string       `json:"agentSocket"`
	Workloads  []UpWorkload `json:"workloads"`
}

// UpWorkload describes one workload `up` started.
type UpWorkload struct {
	Namespace      string `json:"namespace"`
	ServiceAccount string `json:"serviceAccount"`
	Pod            string `json:"pod"`
	TokenFile      string `json:"tokenFile"`
	CertDir        string `json:"certDir"`
}

func upCommand(out io.Writer) *cobra.Command {
	var providerName, profile, mesh, kubeconfig string
	var workloads []string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Bring up a cluster with the mesh, print one JSON line, and run until interrupted",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if providerName != "local" {
				return fmt.Errorf("up supports --provider local; for kind clusters use run --provider kind --keep")
			}
			p := local.New()
			defer func() {
				if err := p.Down(); err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: tear down: %v\n", err)
				}
			}()
			ctx := cmd.Context()
			if err := p.Up(ctx, profile); err != nil {
				return err
			}
			mode, err := p.InstallMesh(ctx, mesh)
			if err != nil {
				return err
			}
			report := UpReport{Kubeconfig: p.Cluster().Kubeconfig, Profile: profile, Mesh: mode, CAAddress: p.CAAddress(), CARootFile: p.RootFile(), AgentSock: p.Socket(), Workloads: []UpWorkload{}}
			if kubeconfig != "" {
				data, err := os.ReadFile(p.Cluster().Kubeconfig)
				if err != nil {
					return err
				}
				if err := os.WriteFile(kubeconfig, data, 0o600); err != nil {
					return err
				}
				defer os.Remove(kubeconfig)
				report.Kubeconfig, _ = filepath.Abs(kubeconfig)
			}
			for _, w := range workloads {
				ns, sa, ok := strings.Cut(w, "/")
				if !ok || ns == "" || sa == "" {
					return fmt.Errorf("--workload %q: use NAMESPACE/SERVICEACCOUNT", w)
				}
				if err := p.Deploy(ctx, provider.WorkloadSpec{Name: sa, Namespace: ns, ServiceAccount: sa}); err != nil {
					return err
				}
				uw := UpWorkload{Namespace: ns, ServiceAccount: sa, Pod: sa}
				dir := p.PodDir(ns, sa)
				// Workloads follow the installed mesh's path.
				if mode == provider.MeshFileMount {
					uw.CertDir = filepath.Join(dir, "certs")
				} else if _, err := os.Stat(filepath.Join(dir, "token")); err == nil && profile == provider.ProfileBound {
					uw.TokenFile = filepath.Join(dir, "token")
				}
				report.Workloads = append(report.Workloads, uw)
			}
			line, err := json.Marshal(report)
			if err != nil {
				return err
			}
			fmt.Fprintln(out, string(line))
			<-ctx.Done()
			return nil
		},
	}
	cmd.Flags().StringVar(&providerName, "provider", "local", "cluster provider")
	cmd.Flags().StringVar(&profile, "profile", provider.ProfileBound, "bound or legacy")
	cmd.Flags().StringVar(&mesh, "mesh", provider.MeshAuto, "sds, file-mount, auto or none")
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "also write the cluster's kubeconfig here (removed on exit)")
	cmd.Flags().StringArrayVar(&workloads, "workload", nil, "run a workload NAMESPACE/SERVICEACCOUNT (repeatable)")
	return cmd
}
