// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package inspect

import (
	"testing"
	"time"

	"github.com/meshcert/kubectl-meshcert/plugin/command/commandtest"
	"github.com/meshcert/kubectl-meshcert/plugin/output"
)

func TestValidate(t *testing.T) {
	common := &CommonOptions{CANamespace: "meshcert-system"}
	table := output.Options{Table: true}
	tests := map[string]commandtest.Case{
		"fleet":                    {Options: &FleetOptions{CommonOptions: common, Output: table, ExpiringWithin: 72 * time.Hour}},
		"fleet wide":               {Options: &FleetOptions{CommonOptions: common, Output: output.Options{Table: true, Format: "wide"}}},
		"fleet negative expiring":  {Options: &FleetOptions{CommonOptions: common, ExpiringWithin: -time.Hour}, WantErr: "--expiring-within -1h0m0s must not be negative"},
		"fleet bad -o":             {Options: &FleetOptions{CommonOptions: common, Output: output.Options{Table: true, Format: "xml"}}, WantErr: `unknown output format "xml": use wide, json, yaml, name`},
		"fleet empty CA namespace": {Options: &FleetOptions{CommonOptions: &CommonOptions{}}, WantErr: "--ca-namespace must not be empty"},
		"secret":                   {Options: &SecretOptions{CommonOptions: common, Name: "meshcert.web", Output: table}},
		"secret without name":      {Options: &SecretOptions{CommonOptions: common, Output: table}, WantErr: "name the Secret"},
		"file":                     {Options: &FileOptions{Paths: []string{"chain.pem"}, Output: table}},
		"file without paths":       {Options: &FileOptions{Output: table}, WantErr: "name at least one file"},
		"pod":                      {Options: &PodOptions{CommonOptions: common, Pod: "web-0", Output: table}},
		"pod without name":         {Options: &PodOptions{CommonOptions: common, Output: table}, WantErr: "name the pod"},
		"token":                    {Options: &TokenOptions{Audience: "istio-ca", Output: table}},
		"token empty audience":     {Options: &TokenOptions{Output: table}, WantErr: "--audience must not be empty"},
		"ca json":                  {Options: &CAOptions{CommonOptions: common, Output: output.Options{Table: true, Format: "json"}}},
		"ca bad -o":                {Options: &CAOptions{CommonOptions: common, Output: output.Options{Table: true, Format: "toml"}}, WantErr: `unknown output format "toml"`},
	}
	commandtest.RunValidate(t, tests)
}
