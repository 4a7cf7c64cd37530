// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package check

import (
	"testing"

	"github.com/meshcert/kubectl-meshcert/plugin/command/commandtest"
	"github.com/meshcert/kubectl-meshcert/plugin/output"
)

func TestValidate(t *testing.T) {
	tests := map[string]commandtest.Case{
		"defaults":         {Options: &Options{Audience: "istio-ca"}},
		"require sds":      {Options: &Options{Audience: "istio-ca", Require: "sds", Output: output.Options{Format: "json"}}},
		"require unknown":  {Options: &Options{Audience: "istio-ca", Require: "file-mount"}, WantErr: `--require "file-mount": the only requirement check knows is "sds"`},
		"empty audience":   {Options: &Options{}, WantErr: "--audience must not be empty"},
		"unknown -o value": {Options: &Options{Audience: "istio-ca", Output: output.Options{Format: "wide"}}, WantErr: `unknown output format "wide"`},
	}
	commandtest.RunValidate(t, tests)
}
