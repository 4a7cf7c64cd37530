// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package rotate

import (
	"testing"
	"time"

	"github.com/meshcert/kubectl-meshcert/plugin/command/commandtest"
	"github.com/meshcert/kubectl-meshcert/plugin/output"
)

func common() *CommonOptions {
	return &CommonOptions{Wait: true, Timeout: time.Minute, CANamespace: "meshcert-system"}
}

func TestValidate(t *testing.T) {
	tests := map[string]commandtest.Case{
		"secret by name":          {Options: &SecretOptions{CommonOptions: common(), Name: "meshcert.web"}},
		"secret --all -A":         {Options: &SecretOptions{CommonOptions: common(), All: true, AllNamespaces: true}},
		"secret neither":          {Options: &SecretOptions{CommonOptions: common()}, WantErr: "name one Secret, or pass --all"},
		"secret name and --all":   {Options: &SecretOptions{CommonOptions: common(), Name: "x", All: true}, WantErr: "name one Secret, or pass --all"},
		"secret -A alone":         {Options: &SecretOptions{CommonOptions: common(), Name: "x", AllNamespaces: true}, WantErr: "-A goes with --all"},
		"secret -l -A":            {Options: &SecretOptions{CommonOptions: common(), Selector: "meshcert.io/service-account=web", AllNamespaces: true}},
		"secret --field-selector": {Options: &SecretOptions{CommonOptions: common(), FieldSelector: "metadata.name=meshcert.web"}},
		"secret name and -l":      {Options: &SecretOptions{CommonOptions: common(), Name: "x", Selector: "app=web"}, WantErr: "name one Secret, or pass --all, -l or --field-selector"},
		"secret bad -l":           {Options: &SecretOptions{CommonOptions: common(), Selector: "app=(web"}, WantErr: `-l "app=(web"`},
		"secret bad field":        {Options: &SecretOptions{CommonOptions: common(), FieldSelector: "metadata.name"}, WantErr: `--field-selector "metadata.name"`},
		"secret bad -o":           {Options: &SecretOptions{CommonOptions: common(), Name: "x", Output: output.Options{Format: "wide"}}, WantErr: `unknown output format "wide"`},
		"secret zero timeout":     {Options: &SecretOptions{CommonOptions: &CommonOptions{CANamespace: "x"}, Name: "x"}, WantErr: "--timeout 0s must be positive"},
		"pod":                     {Options: &PodOptions{CommonOptions: common(), Pod: "web-0", Output: output.Options{Format: "json"}}},
		"pod without name":        {Options: &PodOptions{CommonOptions: common()}, WantErr: "name the pod"},
		"root prepare":            {Options: &RootOptions{CommonOptions: common(), Phase: PhasePrepare}},
		"root finish forced":      {Options: &RootOptions{CommonOptions: common(), Phase: PhaseFinish, Force: true}},
		"root without phase":      {Options: &RootOptions{CommonOptions: common()}, WantErr: "--phase is required"},
		"root unknown phase":      {Options: &RootOptions{CommonOptions: common(), Phase: "rollback"}, WantErr: `unknown --phase "rollback"`},
		"root negative wait":      {Options: &RootOptions{CommonOptions: common(), Phase: PhaseActivate, Wait: -time.Second}, WantErr: "--wait -1s must not be negative"},
		"root empty CA namespace": {Options: &RootOptions{CommonOptions: &CommonOptions{Timeout: time.Second}, Phase: PhasePrepare}, WantErr: "--ca-namespace must not be empty"},
		"status yaml":             {Options: &StatusOptions{CommonOptions: common(), Output: output.Options{Format: "yaml"}}},
		"status bad -o":           {Options: &StatusOptions{CommonOptions: common(), Output: output.Options{Format: "xml"}}, WantErr: `unknown output format "xml"`},
	}
	commandtest.RunValidate(t, tests)
}
