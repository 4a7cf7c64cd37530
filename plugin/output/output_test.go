// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package output

import (
	"bytes"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

type cert struct {
	Serial   string `json:"serial"`
	Days     int    `json:"days"`
	Verified bool   `json:"verified"`
}

func list() List {
	return List{
		{Name: "web", Namespace: "shop", Value: cert{Serial: "0b", Days: 30, Verified: true}},
		{Name: "cart", Namespace: "shop", Value: cert{Serial: "0a", Days: 7}},
		{Name: "db", Namespace: "stock", Value: cert{Serial: "0c", Days: 120, Verified: true}},
	}
}

func table(l List) [][]any {
	rows := make([][]any, len(l))
	for i, item := range l {
		rows[i] = []any{item.Name, item.Value.(cert).Days}
	}
	return rows
}

func TestPrintFormats(t *testing.T) {
	tests := map[string]struct {
		options Options
		want    string
	}{
		"the table":  {options: Options{}, want: "NAME   DAYS\nweb    30\ncart   7\ndb     120\n"},
		"no headers": {options: Options{NoHeaders: true}, want: "web    30\ncart   7\ndb     120\n"},
		"sorted by a number, and the table with it": {options: Options{SortBy: "{.days}"}, want: "NAME   DAYS\ncart   7\nweb    30\ndb     120\n"},
		"sorted by a string, kubectl's short form":  {options: Options{SortBy: ".metadata.name"}, want: "NAME   DAYS\ncart   7\ndb     120\nweb    30\n"},
		"name":        {options: Options{Format: "name"}, want: "certificate.meshcert.io/web\ncertificate.meshcert.io/cart\ncertificate.meshcert.io/db\n"},
		"jsonpath":    {options: Options{Format: "jsonpath={.items[*].serial}"}, want: "0b 0a 0c"},
		"go-template": {options: Options{Format: `go-template={{range .items}}{{.metadata.namespace}}/{{.metadata.name}}={{.verified}} {{end}}`}, want: "shop/web=true shop/cart=false stock/db=true "},
		"custom columns": {options: Options{Format: "custom-columns=NAME:.metadata.name,SERIAL:.serial,MISSING:.nothing"},
			want: "NAME   SERIAL   MISSING\nweb    0b       <none>\ncart   0a       <none>\ndb     0c       <none>\n"},
		"custom columns, sorted, no headers": {options: Options{Format: "custom-columns=S:.serial", SortBy: "serial", NoHeaders: true}, want: "0a\n0b\n0c\n"},
		"a List of a meshcert.io kind": {options: Options{Format: "yaml", SortBy: "{.days}"}, want: `apiVersion: meshcert.io/v1alpha1
items:
- apiVersion: meshcert.io/v1alpha1
  days: 7
  kind: Certificate
  metadata:
    name: cart
    namespace: shop
  serial: 0a
  verified: false
`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o := tc.options
			o.Table, o.Kind = true, "Certificate"
			require.NoError(t, o.Validate())
			l := list()
			var out bytes.Buffer
			require.NoError(t, o.Print(&out, l, NewTable([]Column{{Name: "NAME"}, {Name: "DAYS"}}, table(l)), func(io.Writer) error { return nil }))
			if o.Format == "yaml" {
				require.Contains(t, out.String(), tc.want)
				require.Contains(t, out.String(), "kind: CertificateList\n")
				return
			}
			require.Equal(t, tc.want, out.String())
		})
	}
}

func TestValidateRefuses(t *testing.T) {
	tests := map[string]struct {
		options Options
		want    string
	}{
		"an unknown format":            {options: Options{Format: "xml"}, want: `unknown output format "xml": use json, yaml, name`},
		"wide without a table":         {options: Options{Format: "wide"}, want: `unknown output format "wide"`},
		"custom columns without one":   {options: Options{Format: "custom-columns=A:.a"}, want: `unknown output format "custom-columns=A:.a"`},
		"a column without a path":      {options: Options{Table: true, Format: "custom-columns=A"}, want: `-o custom-columns: "A" is not HEADER:.json.path`},
		"a template that cannot parse": {options: Options{Format: "go-template={{.a"}, want: "-o go-template={{.a: error parsing template"},
		"a missing columns file":       {options: Options{Table: true, Format: "custom-columns-file=/nonexistent"}, want: "-o custom-columns-file: open /nonexistent"},
		"a bad sort key":               {options: Options{Table: true, SortBy: "{.a["}, want: `--sort-by "{.a["`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			require.ErrorContains(t, tc.options.Validate(), tc.want)
		})
	}
}
