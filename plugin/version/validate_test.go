// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package version

import (
	"testing"

	"github.com/meshcert/kubectl-meshcert/plugin/command/commandtest"
	"github.com/meshcert/kubectl-meshcert/plugin/output"
)

func TestValidate(t *testing.T) {
	commandtest.RunValidate(t, map[string]commandtest.Case{
		"text":           {Options: &Options{}},
		"json":           {Options: &Options{Output: output.Options{Format: "json"}, ClientOnly: true}},
		"a table format": {Options: &Options{Output: output.Options{Format: "wide"}}, WantErr: `unknown output format "wide"`},
	})
}
