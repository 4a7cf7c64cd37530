// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package install

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshcert/kubectl-meshcert/plugin/output"
)

func TestValidate(t *testing.T) {
	options := func(mutate func(*InstallOptions)) *InstallOptions {
		o := &InstallOptions{Mode: "auto", DryRun: DryRunNone, Timeout: time.Minute, Render: DefaultRender()}
		mutate(o)
		return o
	}
	tests := map[string]struct {
		options *InstallOptions
		wantErr string
	}{
		"defaults":           {options: options(func(*InstallOptions) {})},
		"sds":                {options: options(func(o *InstallOptions) { o.Mode = "sds" })},
		"dry run as yaml":    {options: options(func(o *InstallOptions) { o.DryRun, o.Output = DryRunClient, output.Options{Format: "yaml"} })},
		"unknown mode":       {options: options(func(o *InstallOptions) { o.Mode = "sidecar" }), wantErr: `unknown --mode "sidecar": use auto, sds or file-mount`},
		"empty mode":         {options: options(func(o *InstallOptions) { o.Mode = "" }), wantErr: `unknown --mode ""`},
		"server dry run":     {options: options(func(o *InstallOptions) { o.DryRun = "server" }), wantErr: "--dry-run=server: use client"},
		"-o without dry run": {options: options(func(o *InstallOptions) { o.Output.Format = "json" }), wantErr: "-o prints manifests: use it with --dry-run=client"},
		"bad -o":             {options: options(func(o *InstallOptions) { o.DryRun, o.Output.Format = DryRunClient, "xml" }), wantErr: `unknown output format "xml"`},
		"zero timeout":       {options: options(func(o *InstallOptions) { o.Timeout = 0 }), wantErr: "--timeout 0s must be positive"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.options.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}
