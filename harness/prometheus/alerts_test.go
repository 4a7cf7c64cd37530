// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package prometheus_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshcert/kubectl-meshcert/core/monitoring/dashboard"
	"github.com/meshcert/kubectl-meshcert/core/monitoring/rules"
	"github.com/meshcert/kubectl-meshcert/harness/local"
	"github.com/meshcert/kubectl-meshcert/harness/prometheus"
	"github.com/meshcert/kubectl-meshcert/harness/provider"
)

// shortThresholds are the shipped rules' expressions with thresholds for
// 30-second certificates renewed at 15 seconds. File-mount Secrets keep
// their 24 hours: their alert is proven by promtool alone.
var shortThresholds = rules.Thresholds{
	RotationOverdue: 3 * time.Second,
	WorkloadExpiry:  12 * time.Second,
	FileMountExpiry: 12 * time.Second,
	RootExpiry:      90 * 24 * time.Hour,
	CAErrorRatio:    0.05,
	RateWindow:      10 * time.Second,
}

// firing returns the names of the alerts that fire, with the identity
// label where they have one.
func firing(t require.TestingT, s *prometheus.Server) map[string]string {
	alerts, err := s.Alerts(context.Background())
	require.NoError(t, err)
	out := map[string]string{}
	for _, a := range alerts {
		if a.State == "firing" {
			out[a.Labels["alertname"]] = a.Labels["identity"]
		}
	}
	return out
}

// TestAlertsFireAndResolve runs a real Prometheus with meshcert's rules
// against the local provider: with the CA stopped, a workload's
// certificate passes its rotation point and nears its expiry, and the
// alerts say so; with the CA back they resolve.
func TestAlertsFireAndResolve(t *testing.T) {
	ctx := t.Context()
	p := local.New()
	p.Tune(provider.Tuning{WorkloadTTL: 30 * time.Second})
	require.NoError(t, p.Up(ctx, provider.ProfileBound))
	t.Cleanup(func() { _ = p.Down() })
	_, err := p.InstallMesh(ctx, provider.MeshSDS)
	require.NoError(t, err)

	ruleFile, err := rules.Marshal(shortThresholds)
	require.NoError(t, err)
	server, err := prometheus.Start(ctx, t.TempDir(), ruleFile, p.MonitoringTargets())
	require.NoError(t, err)
	t.Cleanup(server.Stop)

	require.NoError(t, p.Deploy(ctx, provider.WorkloadSpec{Name: "web", Namespace: "shop"}))
	require.NoError(t, p.Deploy(ctx, provider.WorkloadSpec{Name: "db", Namespace: "stock", Path: provider.MeshFileMount}))
	var identity, secret string
	require.EventuallyWithT(t, func(t *assert.CollectT) {
		samples, err := server.Query(context.Background(), "meshcert_agent_cert_expiry_timestamp_seconds")
		require.NoError(t, err)
		require.Len(t, samples, 1)
		identity = samples[0].Metric["identity"]
		secrets, err := server.Query(context.Background(), `meshcert_filemount_secret_not_after_timestamp_seconds{namespace="stock",secret="meshcert.db"}`)
		require.NoError(t, err)
		require.Len(t, secrets, 1)
		secret = secrets[0].Metric["namespace"] + "/" + secrets[0].Metric["secret"]
		leaders, err := server.Query(context.Background(), "meshcert_ca_leader == 1")
		require.NoError(t, err)
		require.Len(t, leaders, 1)
		// The rules are evaluated a moment after the scrape: until then
		// nothing has told them of a leader.
		require.Empty(t, firing(t, server), "nothing fires while the mesh is healthy")
	}, time.Minute, 200*time.Millisecond, "Prometheus scrapes the agent's certificate, the file-mount Secret and the CA's leader, and nothing fires")
	require.Equal(t, "spiffe://cluster.local/ns/shop/sa/web", identity)
	require.Equal(t, "stock/meshcert.db", secret)

	require.NoError(t, p.StopCA(ctx))
	require.NoError(t, server.SetTargets(p.MonitoringTargets()))
	want := map[string]string{
		rules.AlertRotationOverdue:  identity,
		rules.AlertWorkloadExpiring: identity,
		rules.AlertNoCALeader:       "",
		rules.AlertCAUnreachable:    "",
	}
	require.EventuallyWithT(t, func(t *assert.CollectT) {
		got := firing(t, server)
		for name, id := range want {
			assert.Contains(t, got, name)
			assert.Equal(t, id, got[name], name)
		}
	}, time.Minute, 200*time.Millisecond, "with the CA stopped, the rotation-overdue, expiring, no-leader and unreachable alerts fire")

	require.NoError(t, p.StartCA(ctx))
	require.NoError(t, server.SetTargets(p.MonitoringTargets()))
	require.EventuallyWithT(t, func(t *assert.CollectT) {
		got := firing(t, server)
		for name := range want {
			assert.NotContains(t, got, name)
		}
	}, time.Minute, 200*time.Millisecond, "with the CA back, the agent renews and every alert resolves")

	// Now that the outage has made the agent count failed CA calls, every
	// metric the dashboard names has been exported.
	dashboardQueriesWork(t, server)
}

// dashboardQueriesWork evaluates every query of the Grafana dashboard in
// Prometheus, and checks that every meshcert metric it names is one the
// components export (Prometheus has scraped it).
func dashboardQueriesWork(t *testing.T, server *prometheus.Server) {
	t.Helper()
	built, err := dashboard.Build()
	require.NoError(t, err)
	names, err := server.MetricNames(t.Context())
	require.NoError(t, err)
	metricName := regexp.MustCompile(`meshcert_[a-z0-9_]+`)
	for _, expr := range dashboard.Queries(built) {
		_, err := server.Query(t.Context(), strings.ReplaceAll(expr, "$__rate_interval", "10s"))
		require.NoError(t, err, "dashboard query %s", expr)
		named := metricName.FindAllString(expr, -1)
		require.NotEmpty(t, named, "dashboard query %s names no meshcert metric", expr)
		for _, name := range named {
			require.Contains(t, names, name, "dashboard query %s names a metric nothing exports", expr)
		}
	}
}
