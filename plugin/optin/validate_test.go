// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package optin

import (
	"testing"

	"github.com/meshcert/kubectl-meshcert/plugin/command/commandtest"
	"github.com/meshcert/kubectl-meshcert/plugin/output"
)

func TestValidate(t *testing.T) {
	commandtest.RunValidate(t, map[string]commandtest.Case{
		"enable":                   {Options: &Options{Enable: true, Namespaces: []string{"legacy"}, CANamespace: "meshcert-system"}},
		"disable the CA namespace": {Options: &Options{Namespaces: []string{"meshcert-system"}, CANamespace: "meshcert-system"}},
		"no namespace":             {Options: &Options{Enable: true, CANamespace: "meshcert-system"}, WantErr: "name at least one namespace"},
		"the CA's namespace":       {Options: &Options{Enable: true, Namespaces: []string{"a", "meshcert-system"}, CANamespace: "meshcert-system"}, WantErr: "namespace meshcert-system is the CA's own"},
		"kube-system":              {Options: &Options{Enable: true, Namespaces: []string{"kube-system"}, CANamespace: "meshcert-system"}, WantErr: "would let a stolen CA token read its Secrets"},
		"no CA namespace":          {Options: &Options{Enable: true, Namespaces: []string{"a"}}, WantErr: "--ca-namespace is empty"},
		"an unknown output":        {Options: &Options{Enable: true, Namespaces: []string{"a"}, CANamespace: "m", Output: output.Options{Format: "xml"}}, WantErr: `unknown output format "xml"`},
	})
}
