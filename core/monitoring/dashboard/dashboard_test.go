// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package dashboard_test

import (
	"encoding/json"
	"flag"
	"os"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	grafana "github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/stretchr/testify/require"

	"github.com/meshcert/kubectl-meshcert/core/monitoring/dashboard"
)

var update = flag.Bool("update", false, "rewrite meshcert.json from the code")

const dashboardFile = "meshcert.json"

func TestCommittedDashboardIsGenerated(t *testing.T) {
	generated, err := dashboard.Marshal()
	require.NoError(t, err)
	if *update {
		require.NoError(t, os.WriteFile(dashboardFile, generated, 0o644))
	}
	committed, err := os.ReadFile(dashboardFile)
	require.NoError(t, err)
	require.Equal(t, string(generated), string(committed), "run make monitoring to regenerate %s", dashboardFile)
}

// TestCommittedDashboardLoads reads meshcert.json back as Grafana's model:
// every panel has a query, and each query is the one the code builds.
func TestCommittedDashboardLoads(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	data, err := os.ReadFile(dashboardFile)
	require.NoError(t, err)
	var loaded grafana.Dashboard //nolint:staticcheck // the classic model, deliberately
	require.NoError(t, json.Unmarshal(data, &loaded))
	built, err := dashboard.Build()
	require.NoError(t, err)
	require.Equal(t, dashboard.Queries(built), dashboard.Queries(loaded))
	for _, p := range loaded.Panels {
		if p.Panel != nil {
			require.NotEmpty(t, p.Panel.Targets, "panel %q has no query", *p.Panel.Title)
		}
	}
	require.GreaterOrEqual(t, len(dashboard.Queries(loaded)), 10)
}
