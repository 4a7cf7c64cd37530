// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package scenario

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/meshcert/kubectl-meshcert/harness/provider"
)

// ExpectCAMetric waits until the CA's counter or gauge Name, summed over
// the series whose labels include Labels, is at least AtLeast.
type ExpectCAMetric struct {
	Name    string            `yaml:"name"`
	Labels  map[string]string `yaml:"labels"`
	AtLeast float64           `yaml:"atLeast"`
}

// Validate checks that there is a metric and a positive bound.
func (e *ExpectCAMetric) Validate() error {
	if e.Name == "" {
		return errors.New("expectCAMetric needs the metric's name")
	}
	if e.AtLeast <= 0 {
		return fmt.Errorf("expectCAMetric atLeast %v must be positive: a zero bound holds by itself", e.AtLeast)
	}
	return nil
}

// Run scrapes the CA until the sum reaches the bound.
func (e *ExpectCAMetric) Run(ctx context.Context, p provider.Provider) error {
	return eventually(ctx, func() error {
		text, err := p.ScrapeCA(ctx)
		if err != nil {
			return err
		}
		sum, err := provider.MetricSum(text, e.Name, e.Labels)
		if err != nil {
			return fmt.Errorf("the CA's metrics: %w", err)
		}
		if sum < e.AtLeast {
			return fmt.Errorf("the CA's %s{%s} is %v, want at least %v", e.Name, labels.Set(e.Labels), sum, e.AtLeast)
		}
		return nil
	})
}

// scaled scales the bound with the workload counts: it counts what they do.
func (e *ExpectCAMetric) scaled(f float64) Action {
	c := *e
	c.AtLeast = float64(scaleCount(int(e.AtLeast), f))
	return &c
}
