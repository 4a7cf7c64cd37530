// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/yaml"

	"github.com/meshcert/kubectl-meshcert/core/agent"
	"github.com/meshcert/kubectl-meshcert/core/fleet"
)

// inspect prints what a running agent serves: a table, -o wide for more
// columns, or -o json|yaml. It links none of the plugin's packages.
func inspect(ctx context.Context, args []string) error {
	var opts agent.InspectOptions
	var format string
	fs := pflag.NewFlagSet("meshcert-agent inspect", pflag.ContinueOnError)
	fs.StringVar(&opts.SocketPath, "sds-socket", agent.DefaultConfig().SocketPath, "the agent's SDS socket")
	fs.StringVar(&opts.TokenFile, "token-file", "", "workload token to present (node mode)")
	fs.DurationVar(&opts.Timeout, "timeout", 30*time.Second, "how long to wait for the agent")
	fs.StringVarP(&format, "output", "o", "", "output format: wide, json or yaml (default: a table)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch format {
	case "", "wide", "json", "yaml":
	default:
		return fmt.Errorf("unknown output format %q: use wide, json or yaml, or leave -o out", format)
	}
	report, err := agent.Inspect(ctx, opts)
	if err != nil {
		return err
	}
	return printReport(os.Stdout, report, format)
}

func printReport(w io.Writer, report *agent.InspectReport, format string) error {
	switch format {
	case "json":
		data, err := json.MarshalIndent(report, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(data))
		return err
	case "yaml":
		data, err := yaml.Marshal(report)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	}
	table := &metav1.Table{}
	for _, c := range []struct {
		name string
		wide bool
	}{{"RESOURCE", false}, {"TYPE", false}, {"IDENTITY", false}, {"SERIAL", true}, {"NOT AFTER", false},
		{"ROTATION DUE", false}, {"ROOTS", false}, {"KEY TYPE", true}} {
		def := metav1.TableColumnDefinition{Name: c.name, Type: "string"}
		if c.wide {
			def.Priority = 1
		}
		table.ColumnDefinitions = append(table.ColumnDefinitions, def)
	}
	for _, r := range report.Resources {
		roots := fleet.ShortList(r.RootFingerprints)
		if r.ChainsToRoot != "" {
			roots = "chains to " + fleet.Short(r.ChainsToRoot)
		}
		table.Rows = append(table.Rows, metav1.TableRow{Cells: []any{r.Name, r.Type, r.SPIFFEID, r.Serial,
			timeOrEmpty(r.NotAfter), timeOrEmpty(r.RotationDue), roots, r.KeyType}})
	}
	return printers.NewTablePrinter(printers.PrintOptions{Wide: format == "wide"}).PrintObj(table, w)
}

func timeOrEmpty(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
