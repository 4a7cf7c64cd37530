// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package install

import (
	"testing"
	"time"

	"github.com/meshcert/kubectl-meshcert/plugin/command/commandtest"
	"github.com/meshcert/kubectl-meshcert/plugin/output"
)

func TestValidate(t *testing.T) {
	options := func(mutate func(*InstallOptions)) *InstallOptions {
		o := &InstallOptions{Mode: "auto", DryRun: DryRunNone, Timeout: time.Minute, Render: DefaultRender()}
		mutate(o)
		return o
	}
	tests := map[string]commandtest.Case{
		"defaults":           {Options: options(func(*InstallOptions) {})},
		"sds":                {Options: options(func(o *InstallOptions) { o.Mode = "sds" })},
		"dry run as yaml":    {Options: options(func(o *InstallOptions) { o.DryRun, o.Output = DryRunClient, output.Options{Format: "yaml"} })},
		"unknown mode":       {Options: options(func(o *InstallOptions) { o.Mode = "sidecar" }), WantErr: `unknown --mode "sidecar": use auto, sds or file-mount`},
		"empty mode":         {Options: options(func(o *InstallOptions) { o.Mode = "" }), WantErr: `unknown --mode ""`},
		"server dry run":     {Options: options(func(o *InstallOptions) { o.DryRun = "server" })},
		"unknown dry run":    {Options: options(func(o *InstallOptions) { o.DryRun = "all" }), WantErr: "--dry-run=all: use client or server"},
		"-o without dry run": {Options: options(func(o *InstallOptions) { o.Output.Format = "json" }), WantErr: "-o prints manifests: use it with --dry-run=client"},
		"bad -o":             {Options: options(func(o *InstallOptions) { o.DryRun, o.Output.Format = DryRunClient, "xml" }), WantErr: `unknown output format "xml"`},
		"zero timeout":       {Options: options(func(o *InstallOptions) { o.Timeout = 0 }), WantErr: "--timeout 0s must be positive"},
	}
	commandtest.RunValidate(t, tests)
}
