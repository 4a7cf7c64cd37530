// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package scenario reads the declarative scenario files in scenarios/ and
// runs them against any provider.
package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

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
	// NotOn names providers the scenario cannot run on, with the reason.
	NotOn map[string]string `yaml:"notOn"`
	Steps []Step            `yaml:"steps"`

	File string `yaml:"-"`
}

// Step is one action or expectation; exactly one of its action fields is
// set.
type Step struct {
	Timeout Duration `yaml:"timeout"`

	Deploy       *Deploy       `yaml:"deploy"`
	ExpectCert   *ExpectCert   `yaml:"expectCert"`
	ExpectCall   *ExpectCall   `yaml:"expectCall"`
	ExpectError  *ExpectError  `yaml:"expectError"`
	Plugin       *Plugin       `yaml:"plugin"`
	WaitRotation *WaitRotation `yaml:"waitRotation"`
	StopCA       *struct{}     `yaml:"stopCA"`
	StartCA      *struct{}     `yaml:"startCA"`
	RotateRoot   *RotateRoot   `yaml:"rotateRoot"`
	DeleteSecret *DeleteSecret `yaml:"deleteSecret"`
	DeletePod    *DeletePod    `yaml:"deletePod"`
	StartTraffic *Traffic      `yaml:"startTraffic"`
	StopTraffic  *StopTraffic  `yaml:"stopTraffic"`
	Sleep        *Duration     `yaml:"sleep"`

	Line int `yaml:"-"`
}

// Deploy runs a workload, or Count of them named <name>-<i>.
type Deploy struct {
	Name           string   `yaml:"name"`
	Namespace      string   `yaml:"namespace"`
	ServiceAccount string   `yaml:"serviceAccount"`
	Path           string   `yaml:"path"`
	Allow          []string `yaml:"allow"`
	Count          int      `yaml:"count"`
	// Token replaces the projected token with a bad one: wrong-audience,
	// expired, forged or deleted-pod.
	Token string `yaml:"token"`
}

// ExpectCert waits until the workload (or all Count of them) holds a
// certificate for SPIFFEID, delivered by Path.
type ExpectCert struct {
	Workload string `yaml:"workload"`
	Path     string `yaml:"path"`
	SPIFFEID string `yaml:"spiffeID"`
	Count    int    `yaml:"count"`
}

// ExpectCall calls From → To over mTLS.
type ExpectCall struct {
	From string `yaml:"from"`
	To   string `yaml:"to"`
	// Succeed defaults to true.
	Succeed       *bool  `yaml:"succeed"`
	Peer          string `yaml:"peer"`
	ErrorContains string `yaml:"errorContains"`
}

// ExpectError waits until the workload reports an error containing every
// text.
type ExpectError struct {
	Workload string   `yaml:"workload"`
	Contains []string `yaml:"contains"`
}

// Plugin runs kubectl meshcert and checks its exit code and JSON output.
type Plugin struct {
	Args     []string          `yaml:"args"`
	ExitCode int               `yaml:"exitCode"`
	JSON     map[string]string `yaml:"json"`
	Contains []string          `yaml:"contains"`
}

// WaitRotation waits until the workload has held Count more certificates
// than its first.
type WaitRotation struct {
	Workload string `yaml:"workload"`
	Count    int    `yaml:"count"`
}

// RotateRoot runs one phase of a root rotation, retrying while blockers
// remain.
type RotateRoot struct {
	Phase string `yaml:"phase"`
}

// DeleteSecret deletes a Secret.
type DeleteSecret struct {
	Namespace string `yaml:"namespace"`
	Name      string `yaml:"name"`
}

// DeletePod deletes a workload's pod object.
type DeletePod struct {
	Workload string `yaml:"workload"`
}

// Traffic starts steady calls.
type Traffic struct {
	From     string   `yaml:"from"`
	To       string   `yaml:"to"`
	Interval Duration `yaml:"interval"`
}

// StopTraffic stops them and bounds the failures.
type StopTraffic struct {
	From        string `yaml:"from"`
	MaxFailures int    `yaml:"maxFailures"`
	MinCalls    int    `yaml:"minCalls"`
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

// Kind names a step's action.
func (s Step) Kind() string {
	var kinds []string
	for name, set := range map[string]bool{
		"deploy": s.Deploy != nil, "expectCert": s.ExpectCert != nil, "expectCall": s.ExpectCall != nil,
		"expectError": s.ExpectError != nil, "plugin": s.Plugin != nil, "waitRotation": s.WaitRotation != nil,
		"stopCA": s.StopCA != nil, "startCA": s.StartCA != nil, "rotateRoot": s.RotateRoot != nil,
		"deleteSecret": s.DeleteSecret != nil, "deletePod": s.DeletePod != nil, "startTraffic": s.StartTraffic != nil,
		"stopTraffic": s.StopTraffic != nil, "sleep": s.Sleep != nil,
	} {
		if set {
			kinds = append(kinds, name)
		}
	}
	sort.Strings(kinds)
	return strings.Join(kinds, "+")
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
	if len(s.Steps) == 0 {
		errs = append(errs, errors.New("no steps"))
	}
	for i, step := range s.Steps {
		kind := step.Kind()
		switch {
		case kind == "":
			errs = append(errs, fmt.Errorf("line %d: step %d has no action", step.Line, i+1))
		case strings.Contains(kind, "+"):
			errs = append(errs, fmt.Errorf("line %d: step %d has several actions (%s): give one per step", step.Line, i+1, kind))
		}
		if step.RotateRoot != nil && !slices.Contains([]string{"prepare", "activate", "finish"}, step.RotateRoot.Phase) {
			errs = append(errs, fmt.Errorf("line %d: rotateRoot phase %q: use prepare, activate or finish", step.Line, step.RotateRoot.Phase))
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
