// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package scenario reads the declarative scenario files in scenarios/ and
// runs them against any provider.
package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/meshcert/kubectl-meshcert/core/ca"
	"github.com/meshcert/kubectl-meshcert/harness/provider"
)

// Scenario is one file.
type Scenario struct {
	Name     string   `yaml:"name"`
	Profiles []string `yaml:"profiles"`
	Mesh     string   `yaml:"mesh"`
	// WorkloadTTL is the lifetime workload certificates are asked for.
	WorkloadTTL Duration `yaml:"workloadTTL"`
	// MaxConcurrentSignings bounds the CA.
	MaxConcurrentSignings int `yaml:"maxConcurrentSignings"`
	// CAReplicas is how many replicas the CA runs; one when unset.
	CAReplicas int `yaml:"caReplicas"`
	// TokenVerification is how the CA authenticates tokens: tokenreview
	// (the default) or local.
	TokenVerification string `yaml:"tokenVerification"`
	// Scale adjusts the scenario's numbers on one provider, by provider
	// name; every scenario runs on every provider.
	Scale map[string]Scale `yaml:"scale"`
	Steps []Step           `yaml:"steps"`

	File string `yaml:"-"`
}

// Step is one action or expectation: a timeout, and exactly one of the
// actions registered in steps.go, under its kind.
type Step struct {
	Timeout Duration
	// Kind names the action, as the file does ("deploy", "expectCert").
	Kind   string
	Action Action

	Line int
}

// UnmarshalYAML reads a step: an optional timeout and one action, decoded
// strictly into the action's type.
func (s *Step) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a step is a mapping such as {deploy: {...}}", n.Line)
	}
	var kinds []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		if key.Value == "timeout" {
			if err := value.Decode(&s.Timeout); err != nil {
				return err
			}
			continue
		}
		newAction, ok := actions[key.Value]
		if !ok {
			return fmt.Errorf("line %d: field %s not found: the steps are %s", key.Line, key.Value, strings.Join(ActionKinds(), ", "))
		}
		kinds = append(kinds, key.Value)
		action := newAction()
		if err := decodeStrict(value, action); err != nil {
			return err
		}
		s.Kind, s.Action = key.Value, action
	}
	sort.Strings(kinds)
	switch len(kinds) {
	case 0:
		return fmt.Errorf("line %d: the step has no action", n.Line)
	case 1:
		return nil
	}
	return fmt.Errorf("line %d: the step has several actions (%s): give one per step", n.Line, strings.Join(kinds, "+"))
}

// decodeStrict decodes n into v, refusing fields v does not have, as the
// whole file is decoded.
func decodeStrict(n *yaml.Node, v any) error {
	data, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	return nil
}

// Scale is how a scenario's numbers differ on one provider, and why.
type Scale struct {
	// WorkloadTTL replaces the scenario's workloadTTL.
	WorkloadTTL Duration `yaml:"workloadTTL"`
	// Timeouts multiplies every step's timeout.
	Timeouts float64 `yaml:"timeouts"`
	// Counts multiplies every count of workloads (at least one stays).
	Counts float64 `yaml:"counts"`
	// Why says why the numbers differ there; it is required.
	Why string `yaml:"why"`
}

// validate checks one provider's scale.
func (sc Scale) validate(provider string) error {
	switch {
	case strings.TrimSpace(sc.Why) == "":
		return fmt.Errorf("scale %s: say why the numbers differ there (why)", provider)
	case sc.Timeouts < 0 || sc.Counts < 0 || sc.Counts > 1:
		return fmt.Errorf("scale %s: timeouts must not be negative and counts must be between 0 and 1", provider)
	case sc.WorkloadTTL.Duration < 0:
		return fmt.Errorf("scale %s: workloadTTL must not be negative", provider)
	}
	return nil
}

// Duration is a time.Duration written as "30s".
type Duration struct{ time.Duration }

// UnmarshalYAML reads "30s".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration such as 30s", n.Line, n.Value)
	}
	d.Duration = v
	return nil
}

var profiles = []string{provider.ProfileBound, provider.ProfileLegacy}
var meshes = []string{provider.MeshSDS, provider.MeshFileMount, provider.MeshAuto, provider.MeshNone}

// Load reads and checks one scenario file. Errors name the file and line.
func Load(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var s Scenario
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s.File = path
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if lines := stepLines(&doc); len(lines) == len(s.Steps) {
		for i := range s.Steps {
			s.Steps[i].Line = lines[i]
		}
	}
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &s, nil
}

func stepLines(doc *yaml.Node) []int {
	if len(doc.Content) == 0 {
		return nil
	}
	m := doc.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "steps" {
			var lines []int
			for _, item := range m.Content[i+1].Content {
				lines = append(lines, item.Line)
			}
			return lines
		}
	}
	return nil
}

func (s *Scenario) validate() error {
	var errs []error
	if s.Name == "" {
		errs = append(errs, errors.New("name is required"))
	}
	if len(s.Profiles) == 0 {
		errs = append(errs, errors.New("profiles is required: bound, legacy or both"))
	}
	for _, p := range s.Profiles {
		if !slices.Contains(profiles, p) {
			errs = append(errs, fmt.Errorf("unknown profile %q: use bound or legacy", p))
		}
	}
	if !slices.Contains(meshes, s.Mesh) {
		errs = append(errs, fmt.Errorf("unknown mesh %q: use sds, file-mount, auto or none", s.Mesh))
	}
	if v := s.TokenVerification; v != "" && v != ca.TokenVerificationReview && v != ca.TokenVerificationLocal {
		errs = append(errs, fmt.Errorf("unknown tokenVerification %q: use %s or %s", v, ca.TokenVerificationReview, ca.TokenVerificationLocal))
	}
	if len(s.Steps) == 0 {
		errs = append(errs, errors.New("no steps"))
	}
	for provider, sc := range s.Scale {
		if err := sc.validate(provider); err != nil {
			errs = append(errs, err)
		}
	}
	for i, step := range s.Steps {
		if err := step.Action.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("line %d: step %d (%s): %w", step.Line, i+1, step.Kind, err))
		}
	}
	return errors.Join(errs...)
}

// LoadAll reads every .yaml file in paths, which may be files or
// directories.
func LoadAll(paths []string) ([]*Scenario, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		matches, err := filepath.Glob(filepath.Join(p, "*.yaml"))
		if err != nil {
			return nil, err
		}
		files = append(files, matches...)
	}
	sort.Strings(files)
	var out []*Scenario
	var errs []error
	for _, f := range files {
		s, err := Load(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, s)
	}
	return out, errors.Join(errs...)
}
