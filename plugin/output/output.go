// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package output prints command results as kubectl does: a table by
// default, -o wide for more columns, -o json or -o yaml for machines.
package output

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/yaml"
)

// Options hold the -o flag.
type Options struct {
	Format string
	// Table says whether the command prints a table, and so takes -o wide.
	Table bool
	// Extra lists formats the command prints itself, such as html.
	Extra []string
}

// AddFlags registers -o/--output.
func (o *Options) AddFlags(cmd *cobra.Command) {
	formats := strings.Join(o.formats(), "|")
	cmd.Flags().StringVarP(&o.Format, "output", "o", o.Format, "output format: "+formats+" (default: a table)")
	_ = cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return o.formats(), cobra.ShellCompDirectiveNoFileComp
	})
}

func (o *Options) formats() []string {
	formats := []string{"json", "yaml"}
	if o.Table {
		formats = append([]string{"wide"}, formats...)
	}
	return append(formats, o.Extra...)
}

// Validate refuses an unknown format before any work is done.
func (o *Options) Validate() error {
	formats := o.formats()
	if o.Format == "" || slices.Contains(formats, o.Format) {
		return nil
	}
	return fmt.Errorf("unknown output format %q: use %s or %s, or leave -o out", o.Format, strings.Join(formats[:len(formats)-1], ", "), formats[len(formats)-1])
}

// Machine reports whether the output is for machines (json or yaml).
func (o *Options) Machine() bool { return o.Format == "json" || o.Format == "yaml" }

// Print writes v as JSON or YAML, or else the table, or else text.
func (o *Options) Print(w io.Writer, v any, table *metav1.Table, text func(io.Writer) error) error {
	switch o.Format {
	case "json":
		data, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(data))
		return err
	case "yaml":
		data, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	}
	if table != nil {
		return printers.NewTablePrinter(printers.PrintOptions{Wide: o.Format == "wide"}).PrintObj(table, w)
	}
	return text(w)
}

// Column is a table column; Wide columns show only with -o wide.
type Column struct {
	Name string
	Wide bool
}

// NewTable builds a table from columns and rows of cells.
func NewTable(columns []Column, rows [][]any) *metav1.Table {
	t := &metav1.Table{}
	for _, c := range columns {
		def := metav1.TableColumnDefinition{Name: c.Name, Type: "string"}
		if c.Wide {
			def.Priority = 1
		}
		t.ColumnDefinitions = append(t.ColumnDefinitions, def)
	}
	for _, r := range rows {
		t.Rows = append(t.Rows, metav1.TableRow{Cells: r})
	}
	return t
}
