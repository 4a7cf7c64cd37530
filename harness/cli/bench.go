// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshcert/kubectl-meshcert/harness/bench"
)

func benchCommand(out io.Writer) *cobra.Command {
	o, fleet := bench.DefaultOptions(), bench.DefaultFleetOptions()
	var dir string
	withFleet := true
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure meshcert's CA and agent beside Istio's CA and SDS server on one API server; write report.md and its plots",
		Long: `bench runs the embedded control plane with meshcert's CA and agent as their own programs (from --binaries),
and Istio's CA server and SDS server as istio-peer (make bench builds it from bench/istio). One load generator
calls each CA at every --concurrency, with a TokenReview per CSR, with the review cache and with local
verification; an Envoy-style client opens SDS streams and waits for a rotation's push to each. It writes
report.md, throughput.svg, cpu.svg and sds.svg into --out, each figure with its ratio to Istio's, and every
figure of the run as report.json.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Binaries == "" {
				o.Binaries = binDir()
			}
			o.Progress = out
			istioVersion, err := moduleVersion(filepath.Join(o.Binaries, "istio-peer"), "istio.io/istio")
			if err != nil {
				return err
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			report, err := bench.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			if withFleet {
				fleet.Binaries, fleet.Progress = o.Binaries, out
				if report.Fleet, err = bench.RunFleet(cmd.Context(), fleet); err != nil {
					return err
				}
				report.FleetOptions = fleet
			}
			f, err := os.Create(filepath.Join(dir, "report.md"))
			if err != nil {
				return err
			}
			data, jsonErr := json.MarshalIndent(report, "", "  ")
			if jsonErr == nil {
				jsonErr = os.WriteFile(filepath.Join(dir, "report.json"), append(data, '\n'), 0o644)
			}
			err = errors.Join(report.WriteMarkdown(f, istioVersion), f.Close(), report.WritePlots(dir), jsonErr)
			for _, t := range report.Targets() {
				met := "not met"
				if t.Met {
					met = "met"
				}
				floor := ""
				if t.Floor != "" && t.Floor != "—" {
					floor = fmt.Sprintf(" (floor %s", t.Floor)
					if !t.Reachable {
						floor += ", which misses it too"
					}
					floor += ")"
				}
				fmt.Fprintf(out, "%-7s %s: %s%s\n", met, t.What, t.Measured, floor)
			}
			fmt.Fprintf(out, "wrote %s\n", filepath.Join(dir, "report.md"))
			return err
		},
	}
	cmd.Flags().StringVar(&o.Binaries, "binaries", "", "directory of meshcert-ca, meshcert-agent and istio-peer (default: bin/ beside this program)")
	cmd.Flags().IntSliceVar(&o.Concurrency, "concurrency", o.Concurrency, "callers of each CA load")
	cmd.Flags().DurationVar(&o.Duration, "duration", o.Duration, "measured length of each CA load")
	cmd.Flags().IntSliceVar(&o.Streams, "streams", o.Streams, "SDS stream counts a rotation is pushed to (one stream is always measured)")
	cmd.Flags().IntVar(&o.FileMountServiceAccounts, "file-mount-service-accounts", o.FileMountServiceAccounts, "service accounts the file-mount controller writes Secrets for")
	cmd.Flags().StringVar(&dir, "out", "bench", "directory for report.md and its plots")
	cmd.Flags().BoolVar(&withFleet, "fleet", withFleet, "run the fleet benchmark too and add its table (--workloads, --nodes and the rest size it)")
	addFleetFlags(cmd, &fleet)
	return cmd
}

// moduleVersion is the version of module that binary was built with.
func moduleVersion(binary, module string) (string, error) {
	info, err := buildinfo.ReadFile(binary)
	if err != nil {
		return "", fmt.Errorf("read %s (build it with make bench): %w", binary, err)
	}
	for _, dep := range info.Deps {
		if dep.Path == module {
			return dep.Version, nil
		}
	}
	return "", fmt.Errorf("%s was not built with %s", binary, module)
}

// floorCommand runs one of the bench's floor servers as its own program,
// as bench starts it.
func floorCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:    "bench-floor",
		Short:  "Serve one of bench's floor servers (bench starts them)",
		Hidden: true,
	}
	var listen, kubeconfig, rootOut, socket string
	interval := 10 * time.Second
	caCmd := &cobra.Command{
		Use:   "ca",
		Short: "Answer CreateCertificate with a TokenReview, then parse, check and sign, and nothing else",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return bench.ServeReviewFloor(cmd.Context(), listen, kubeconfig, rootOut)
		},
	}
	caCmd.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "address to serve CreateCertificate on")
	caCmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "credentials to create TokenReviews with")
	caCmd.Flags().StringVar(&rootOut, "root-out", "", "file to write the serving root to once listening")
	sdsCmd := &cobra.Command{
		Use:   "sds",
		Short: "Serve one Secret over SDS, and push a new version of it to every stream each --interval",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return bench.ServeSDSFloor(cmd.Context(), socket, interval)
		},
	}
	sdsCmd.Flags().StringVar(&socket, "socket", "", "Unix socket to serve SDS on")
	sdsCmd.Flags().DurationVar(&interval, "interval", interval, "time between pushes")
	for _, c := range []*cobra.Command{caCmd, sdsCmd} {
		cmd.AddCommand(c)
	}
	_ = caCmd.MarkFlagRequired("kubeconfig")
	_ = caCmd.MarkFlagRequired("root-out")
	_ = sdsCmd.MarkFlagRequired("socket")
	return cmd
}

func fleetCommand(out io.Writer) *cobra.Command {
	o := bench.DefaultFleetOptions()
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "Start thousands of workloads on simulated nodes at once, then restart every agent; print how long until all are served",
		Long: `fleet runs the embedded control plane with --nodes simulated nodes, each with a meshcert-agent program of its
own, and the CA's replicas as programs. It creates --workloads pods of --service-accounts service accounts, lets
their workloads connect all at once, then restarts every agent at once, for each --token-verification and each
--ca-replicas, and prints a table: time until every workload is served, CSRs and TokenReviews per second,
ResourceExhausted answers, API-server CPU and peak memory. make bench adds the same table to its report.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Binaries == "" {
				o.Binaries = binDir()
			}
			o.Progress = out
			runs, err := bench.RunFleet(cmd.Context(), o)
			return errors.Join(err, bench.WriteFleetMarkdown(out, o, runs))
		},
	}
	addFleetFlags(cmd, &o)
	return cmd
}

func addFleetFlags(cmd *cobra.Command, o *bench.FleetOptions) {
	cmd.Flags().IntVar(&o.Workloads, "workloads", o.Workloads, "workloads (pods) in the fleet")
	cmd.Flags().IntVar(&o.ServiceAccounts, "service-accounts", o.ServiceAccounts, "service accounts the workloads are drawn from")
	cmd.Flags().IntVar(&o.Nodes, "nodes", o.Nodes, "simulated nodes, each with its own agent")
	cmd.Flags().StringSliceVar(&o.Verifications, "token-verification", o.Verifications, "the CA's token verification modes to run")
	cmd.Flags().IntSliceVar(&o.Replicas, "ca-replicas", o.Replicas, "the CA replica counts to run")
}
