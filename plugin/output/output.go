// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package output prints command results as kubectl does, through
// cli-runtime's printers: a table by default (-o wide for more columns,
// --no-headers), -o json, yaml, name, jsonpath=, go-template= and
// custom-columns= for machines, --sort-by for lists. Every result is an
// object of apiVersion meshcert.io/v1alpha1; several results are a List.
package output

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/util/jsonpath"
)

// APIVersion is the apiVersion of every object meshcert prints.
const APIVersion = "meshcert.io/v1alpha1"

// Options hold -o and the flags that shape a table or a list.
type Options struct {
	Format string
	// Table says whether the command prints a table, and so takes -o wide
	// and --no-headers.
	Table bool
	// Extra lists formats the command prints itself, such as html.
	Extra []string
	// Kind is the kind of the object the command prints; for a List, of
	// each of its items. Every command that prints sets it.
	Kind      string
	NoHeaders bool
	// SortBy is a JSONPath expression the items of a List are sorted by.
	SortBy string
}

// Item is one object of a List, or printed alone: its name, its namespace
// when it has one, and its fields.
type Item struct {
	Name, Namespace string
	Value           any
}

// List is a result of several objects of one kind.
type List []Item

// AddFlags registers -o/--output, and for tables --no-headers and
// --sort-by.
func (o *Options) AddFlags(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&o.Format, "output", "o", o.Format, "output format: "+strings.Join(o.formats(), "|")+" (default: "+o.defaultName()+")")
	_ = cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return o.formats(), cobra.ShellCompDirectiveNoFileComp
	})
	if o.Table {
		cmd.Flags().BoolVar(&o.NoHeaders, "no-headers", false, "print the table without its header row (also for -o custom-columns)")
		cmd.Flags().StringVar(&o.SortBy, "sort-by", "", "sort the list by a JSONPath expression on each item, such as '{.notAfter}' or '.metadata.name'")
	}
}

func (o *Options) defaultName() string {
	if o.Table {
		return "a table"
	}
	return "text"
}

func (o *Options) formats() []string {
	formats := []string{"json", "yaml", "name", "jsonpath=...", "jsonpath-file=...", "go-template=...", "go-template-file=..."}
	if o.Table {
		formats = append([]string{"wide"}, append(formats, "custom-columns=...", "custom-columns-file=...")...)
	}
	return append(formats, o.Extra...)
}

func (o *Options) printFlags() *genericclioptions.PrintFlags {
	f := genericclioptions.NewPrintFlags("")
	f.OutputFormat = &o.Format
	return f
}

// Validate refuses an unknown format, template or sort key before any work
// is done.
func (o *Options) Validate() error {
	switch {
	case o.Format == "", slices.Contains(o.Extra, o.Format), o.Format == "wide" && o.Table:
	case o.customColumns():
		if !o.Table {
			return o.unknown()
		}
		if _, err := o.columns(); err != nil {
			return err
		}
	default:
		if _, err := o.printFlags().ToPrinter(); err != nil {
			if genericclioptions.IsNoCompatiblePrinterError(err) {
				return o.unknown()
			}
			return fmt.Errorf("-o %s: %w", o.Format, err)
		}
	}
	if o.SortBy != "" {
		if _, err := parseJSONPath(o.SortBy); err != nil {
			return fmt.Errorf("--sort-by %q: %w", o.SortBy, err)
		}
	}
	return nil
}

func (o *Options) unknown() error {
	return fmt.Errorf("unknown output format %q: use %s, or leave -o out", o.Format, strings.Join(o.formats(), ", "))
}

func (o *Options) customColumns() bool {
	return strings.HasPrefix(o.Format, "custom-columns=") || strings.HasPrefix(o.Format, "custom-columns-file=")
}

// Machine reports whether the output is for machines: anything but the
// table or text.
func (o *Options) Machine() bool { return o.Format != "" && o.Format != "wide" }

// Print writes v, an object or a List, in the chosen format; by default
// the table, or else text.
func (o *Options) Print(w io.Writer, v any, table *metav1.Table, text func(io.Writer) error) error {
	obj, err := o.object(v)
	if err != nil {
		return err
	}
	if list, ok := obj.(*unstructured.UnstructuredList); ok && o.SortBy != "" {
		if err := sortList(list, table, o.SortBy); err != nil {
			return err
		}
	}
	switch {
	case o.Format == "" || o.Format == "wide":
		if table != nil {
			return printers.NewTablePrinter(printers.PrintOptions{Wide: o.Format == "wide", NoHeaders: o.NoHeaders}).PrintObj(table, w)
		}
		return text(w)
	case o.customColumns():
		columns, err := o.columns()
		if err != nil {
			return err
		}
		return printColumns(w, obj, columns, o.NoHeaders)
	}
	printer, err := o.printFlags().ToPrinter()
	if err != nil {
		return err
	}
	return printer.PrintObj(obj, w)
}

// object turns a result into an object: its fields, with apiVersion and
// kind; a List into a List of such objects, each with its metadata.
func (o *Options) object(v any) (runtime.Object, error) {
	kind := o.Kind
	if kind == "" {
		return nil, fmt.Errorf("printing %T: the command set no output kind", v)
	}
	if item, ok := v.(Item); ok {
		u, err := itemObject(kind, item)
		return &u, err
	}
	if list, ok := v.(List); ok {
		out := &unstructured.UnstructuredList{Object: map[string]any{"apiVersion": APIVersion, "kind": kind + "List"}}
		for _, item := range list {
			u, err := itemObject(kind, item)
			if err != nil {
				return nil, err
			}
			out.Items = append(out.Items, u)
		}
		return out, nil
	}
	fields, err := fieldsOf(v)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: fields}
	u.SetAPIVersion(APIVersion)
	u.SetKind(kind)
	return u, nil
}

// itemObject is one item as an object with its metadata.
func itemObject(kind string, item Item) (unstructured.Unstructured, error) {
	fields, err := fieldsOf(item.Value)
	if err != nil {
		return unstructured.Unstructured{}, err
	}
	u := unstructured.Unstructured{Object: fields}
	u.SetAPIVersion(APIVersion)
	u.SetKind(kind)
	u.SetName(item.Name)
	if item.Namespace != "" {
		u.SetNamespace(item.Namespace)
	}
	return u, nil
}

// fieldsOf is v as JSON fields.
func fieldsOf(v any) (map[string]any, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	fields := map[string]any{}
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.UseNumber()
	if err := decoder.Decode(&fields); err != nil {
		return nil, fmt.Errorf("%T does not print as an object: %w", v, err)
	}
	return jsonNumbers(fields).(map[string]any), nil
}

// jsonNumbers turns json.Numbers into int64 or float64, which unstructured
// objects hold.
func jsonNumbers(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = jsonNumbers(e)
		}
	case []any:
		for i, e := range t {
			t[i] = jsonNumbers(e)
		}
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	}
	return v
}

// parseJSONPath reads an expression as kubectl's --sort-by does: braces
// and a leading dot are optional.
func parseJSONPath(expr string) (*jsonpath.JSONPath, error) {
	if !strings.HasPrefix(expr, "{") {
		if !strings.HasPrefix(expr, ".") {
			expr = "." + expr
		}
		expr = "{" + expr + "}"
	}
	p := jsonpath.New("sort").AllowMissingKeys(true)
	return p, p.Parse(expr)
}

func value(p *jsonpath.JSONPath, item map[string]any) (string, float64, bool, error) {
	results, err := p.FindResults(item)
	if err != nil || len(results) == 0 || len(results[0]) == 0 {
		return "", 0, false, err
	}
	v := results[0][0].Interface()
	switch n := v.(type) {
	case int64:
		return "", float64(n), true, nil
	case float64:
		return "", n, true, nil
	}
	return fmt.Sprint(v), 0, false, nil
}

// sortList sorts a List's items, and the table's rows with them, by expr.
func sortList(list *unstructured.UnstructuredList, table *metav1.Table, expr string) error {
	p, err := parseJSONPath(expr)
	if err != nil {
		return err
	}
	type key struct {
		s       string
		n       float64
		numeric bool
	}
	keys := make([]key, len(list.Items))
	for i, item := range list.Items {
		s, n, numeric, err := value(p, item.Object)
		if err != nil {
			return fmt.Errorf("--sort-by %q: %w", expr, err)
		}
		keys[i] = key{s, n, numeric}
	}
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		ka, kb := keys[order[a]], keys[order[b]]
		if ka.numeric && kb.numeric {
			return ka.n < kb.n
		}
		return ka.s < kb.s
	})
	items := make([]unstructured.Unstructured, len(order))
	for i, j := range order {
		items[i] = list.Items[j]
	}
	list.Items = items
	if table != nil && len(table.Rows) == len(order) {
		rows := make([]metav1.TableRow, len(order))
		for i, j := range order {
			rows[i] = table.Rows[j]
		}
		table.Rows = rows
	}
	return nil
}

type column struct {
	header string
	path   *jsonpath.JSONPath
}

// columns reads -o custom-columns=HEADER:.path,... or a file of a header
// line and a line of paths, as kubectl does.
func (o *Options) columns() ([]column, error) {
	var headers, paths []string
	if spec, ok := strings.CutPrefix(o.Format, "custom-columns="); ok {
		for _, part := range strings.Split(spec, ",") {
			header, path, found := strings.Cut(part, ":")
			if !found || header == "" || path == "" {
				return nil, fmt.Errorf("-o custom-columns: %q is not HEADER:.json.path", part)
			}
			headers, paths = append(headers, header), append(paths, path)
		}
	} else {
		file, _ := strings.CutPrefix(o.Format, "custom-columns-file=")
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("-o custom-columns-file: %w", err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) != 2 {
			return nil, fmt.Errorf("-o custom-columns-file %s: want a line of headers and a line of JSON paths", file)
		}
		headers, paths = strings.Fields(lines[0]), strings.Fields(lines[1])
		if len(headers) != len(paths) {
			return nil, fmt.Errorf("-o custom-columns-file %s: %d headers for %d paths", file, len(headers), len(paths))
		}
	}
	columns := make([]column, len(headers))
	for i := range headers {
		p, err := parseJSONPath(paths[i])
		if err != nil {
			return nil, fmt.Errorf("-o custom-columns: column %s: %w", headers[i], err)
		}
		columns[i] = column{header: headers[i], path: p}
	}
	return columns, nil
}

func printColumns(w io.Writer, obj runtime.Object, columns []column, noHeaders bool) error {
	var items []map[string]any
	switch t := obj.(type) {
	case *unstructured.UnstructuredList:
		for _, item := range t.Items {
			items = append(items, item.Object)
		}
	case *unstructured.Unstructured:
		items = append(items, t.Object)
	}
	table := &metav1.Table{}
	for _, c := range columns {
		table.ColumnDefinitions = append(table.ColumnDefinitions, metav1.TableColumnDefinition{Name: c.header, Type: "string"})
	}
	for _, item := range items {
		row := metav1.TableRow{}
		for _, c := range columns {
			results, err := c.path.FindResults(item)
			if err != nil {
				return err
			}
			var values []string
			for _, r := range results {
				for _, v := range r {
					values = append(values, fmt.Sprint(v.Interface()))
				}
			}
			cell := strings.Join(values, ",")
			if cell == "" {
				cell = "<none>"
			}
			row.Cells = append(row.Cells, cell)
		}
		table.Rows = append(table.Rows, row)
	}
	return printers.NewTablePrinter(printers.PrintOptions{NoHeaders: noHeaders}).PrintObj(table, w)
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
