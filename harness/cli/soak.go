// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/meshcert/kubectl-meshcert/harness/soak"
)

func soakCommand(out io.Writer) *cobra.Command {
	o := soak.DefaultOptions()
	var dir string
	cmd := &cobra.Command{
		Use:   "soak",
		Short: "Run the mesh for an hour with short-lived certificates and traffic; write the CA's and the agent's memory and goroutines as CSV and SVG",
		Long: `soak runs the CA and the node agent as their own processes (meshcert-ca and meshcert-agent from
--binaries) on the embedded control plane, starts --workloads workloads of as many service accounts, each
calling the next every --call-every, and samples both processes every --sample-every for --duration.
It writes soak.csv and soak.svg into --out, prints the fitted trend of each series, and fails when a call
failed or a series grew after the first quarter of the run (memory more than 10%, goroutines more than 5%).`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Binaries == "" {
				o.Binaries = binDir()
			}
			o.Progress = out
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			report, runErr := soak.Run(cmd.Context(), o)
			if report == nil || len(report.Samples) == 0 {
				return runErr
			}
			writeErr := writeReport(report, dir)
			for _, t := range report.Trends() {
				fmt.Fprintf(out, "trend %-17s %14.0f → %14.0f  (%+.1f%%, %+.0f/h)\n", t.Series, t.First, t.Last, 100*t.Growth(), t.PerHour)
			}
			fmt.Fprintf(out, "wrote %s and %s\n", filepath.Join(dir, "soak.csv"), filepath.Join(dir, "soak.svg"))
			if runErr != nil {
				return errors.Join(runErr, writeErr)
			}
			return errors.Join(report.Analyze(), writeErr)
		},
	}
	cmd.Flags().StringVar(&o.Binaries, "binaries", "", "directory of meshcert-ca and meshcert-agent (default: bin/ beside this program)")
	cmd.Flags().DurationVar(&o.Duration, "duration", o.Duration, "how long to run once every workload is deployed")
	cmd.Flags().DurationVar(&o.SampleEvery, "sample-every", o.SampleEvery, "how often to sample both processes")
	cmd.Flags().IntVar(&o.Workloads, "workloads", o.Workloads, "workloads, each with its own service account")
	cmd.Flags().DurationVar(&o.WorkloadTTL, "workload-cert-ttl", o.WorkloadTTL, "lifetime of the workloads' certificates")
	cmd.Flags().DurationVar(&o.CallEvery, "call-every", o.CallEvery, "how often each workload calls the next")
	cmd.Flags().StringVar(&dir, "out", "soak", "directory for soak.csv and soak.svg")
	return cmd
}

func writeReport(report *soak.Report, dir string) error {
	write := func(name string, to func(io.Writer) error) error {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		return errors.Join(to(f), f.Close())
	}
	return errors.Join(write("soak.csv", report.WriteCSV), write("soak.svg", report.WriteSVG))
}

// binDir is the directory of this program, where make build puts the
// others.
func binDir() string {
	exe, err := os.Executable()
	if err != nil {
		return "bin"
	}
	return filepath.Dir(exe)
}
