// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package rules holds meshcert's Prometheus alerting rules: the same group
// goes into a PrometheusRule (install --monitoring) and into the plain
// rules file for Prometheus without the operator.
package rules

import (
	"fmt"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// GroupName names the rule group.
const GroupName = "meshcert"

// Names of the alerts.
const (
	AlertRotationOverdue   = "MeshcertWorkloadCertificateRotationOverdue"
	AlertWorkloadExpiring  = "MeshcertWorkloadCertificateExpiringSoon"
	AlertFileMountExpiring = "MeshcertFileMountSecretExpiringSoon"
	AlertRootExpiring      = "MeshcertRootCertificateExpiringSoon"
	AlertSDSRejected       = "MeshcertSDSUpdatesRejected"
	AlertCAErrors          = "MeshcertCAErrorRateHigh"
	AlertNoCALeader        = "MeshcertCANoLeader"
	AlertCAUnreachable     = "MeshcertCAUnreachableFromAgents"
)

// Severities of the alerts, as kube-prometheus labels them.
const (
	severityWarning  = "warning"
	severityCritical = "critical"
)

// Thresholds are the numbers the rules compare with. Tests shrink them to
// seconds; the expressions stay the same.
type Thresholds struct {
	// RotationOverdue is how long past its rotation point a workload
	// certificate may go unrenewed.
	RotationOverdue time.Duration
	// WorkloadExpiry alerts on a workload certificate (SDS) expiring within
	// it; FileMountExpiry on a file-mount Secret's certificate.
	WorkloadExpiry  time.Duration
	FileMountExpiry time.Duration
	// RootExpiry alerts on a trusted root expiring within it.
	RootExpiry time.Duration
	// CAErrorRatio is the share of CSRs that may fail in the CA before it
	// alerts.
	CAErrorRatio float64
	// RateWindow is the range of rate() and increase().
	RateWindow time.Duration
	// For is how long a condition must hold before most alerts fire; the
	// expiry alerts fire at once, their condition being a deadline.
	For time.Duration
}

// DefaultThresholds suit 24-hour workload certificates renewed at half
// life and a ten-year root.
func DefaultThresholds() Thresholds {
	return Thresholds{
		RotationOverdue: 15 * time.Minute,
		WorkloadExpiry:  2 * time.Hour,
		FileMountExpiry: 2 * time.Hour,
		RootExpiry:      90 * 24 * time.Hour,
		CAErrorRatio:    0.05,
		RateWindow:      5 * time.Minute,
		For:             5 * time.Minute,
	}
}

func duration(d time.Duration) *monitoringv1.Duration {
	s := monitoringv1.Duration(model.Duration(d).String())
	return &s
}

func seconds(d time.Duration) string { return fmt.Sprintf("%g", d.Seconds()) }

// Group returns the rule group with thresholds t.
func Group(t Thresholds) monitoringv1.RuleGroup {
	window := model.Duration(t.RateWindow).String()
	const check = " Run `kubectl meshcert check` for the whole mesh."
	alert := func(name, expr string, forDuration time.Duration, severity, summary, description string) monitoringv1.Rule {
		r := monitoringv1.Rule{Alert: name, Expr: intstr.FromString(expr),
			Labels:      map[string]string{"severity": severity},
			Annotations: map[string]string{"summary": summary, "description": description + check}}
		if forDuration > 0 {
			r.For = duration(forDuration)
		}
		return r
	}
	return monitoringv1.RuleGroup{Name: GroupName, Rules: []monitoringv1.Rule{
		alert(AlertRotationOverdue,
			fmt.Sprintf(`time() - meshcert_agent_rotation_due_timestamp_seconds > %s`, seconds(t.RotationOverdue)),
			0, severityWarning, "Workload certificate {{ $labels.identity }} is overdue for rotation",
			"The node agent at {{ $labels.instance }} should have renewed {{ $labels.identity }} {{ $value | humanizeDuration }} ago. Is the CA reachable from the agent (MeshcertCAUnreachableFromAgents)? `kubectl meshcert inspect -A` lists what each pod holds."),
		alert(AlertWorkloadExpiring,
			fmt.Sprintf(`meshcert_agent_cert_expiry_timestamp_seconds - time() < %s`, seconds(t.WorkloadExpiry)),
			0, severityCritical, "Workload certificate {{ $labels.identity }} expires in {{ $value | humanizeDuration }}",
			"The certificate the node agent at {{ $labels.instance }} serves for {{ $labels.identity }} expires soon and has not been renewed; after it expires the workload's mTLS connections fail."),
		alert(AlertFileMountExpiring,
			fmt.Sprintf(`meshcert_filemount_secret_not_after_timestamp_seconds - time() < %s`, seconds(t.FileMountExpiry)),
			0, severityCritical, "File-mount Secret {{ $labels.namespace }}/{{ $labels.secret }} expires in {{ $value | humanizeDuration }}",
			"The CA's file-mount controller has not refreshed the Secret. `kubectl meshcert inspect secret {{ $labels.secret }} -n {{ $labels.namespace }}` shows its certificate; `kubectl meshcert rotate secret` renews it."),
		alert(AlertRootExpiring,
			fmt.Sprintf(`meshcert_ca_root_expiry_timestamp_seconds - time() < %s`, seconds(t.RootExpiry)),
			t.For, severityWarning, "Mesh root {{ $labels.fingerprint }} expires in {{ $value | humanizeDuration }}",
			"Rotate the root well before it expires: `kubectl meshcert rotate root --phase prepare`, then activate and finish."),
		alert(AlertSDSRejected,
			fmt.Sprintf(`increase(meshcert_agent_sds_nacks_total[%s]) > 0`, window),
			0, severityWarning, "Envoy rejected SDS updates from the node agent at {{ $labels.instance }}",
			"An Envoy NACKed a secret the agent pushed: it keeps its previous certificate, which will expire. The agent's log names the pod and Envoy's error; `kubectl meshcert inspect pod` shows NACKED."),
		alert(AlertCAErrors,
			fmt.Sprintf(`sum without (result) (rate(meshcert_ca_csr_total{result=~"internal|unavailable|invalid_csr"}[%[1]s])) / sum without (result) (rate(meshcert_ca_csr_total[%[1]s])) > %[2]g`, window, t.CAErrorRatio),
			t.For, severityWarning, "The mesh CA at {{ $labels.instance }} fails {{ $value | humanizePercentage }} of CSRs",
			"CSRs fail for a reason other than a refused token or back-pressure: the CA's log says why (TokenReview unreachable, internal errors)."),
		alert(AlertNoCALeader,
			`sum(meshcert_ca_leader) < 1 or absent(meshcert_ca_leader)`,
			t.For, severityCritical, "No mesh CA replica leads",
			"Without a leader, root ConfigMaps, file-mount Secrets and root rotations are not kept; signing goes on while replicas run. Check the CA's pods and its Lease."),
		alert(AlertCAUnreachable,
			fmt.Sprintf(`sum by (instance) (rate(meshcert_agent_ca_errors_total{code=~"Unavailable|DeadlineExceeded"}[%s])) > 0`, window),
			t.For, severityCritical, "The node agent at {{ $labels.instance }} cannot reach the mesh CA",
			"Renewals fail; workloads keep their current certificates until they expire. Check the CA's Service and pods, and NetworkPolicies between the agents and the CA."),
	}}
}

// File is a Prometheus rules file.
type File struct {
	Groups []monitoringv1.RuleGroup `json:"groups"`
}

// Marshal renders the rules file of thresholds t as YAML.
func Marshal(t Thresholds) ([]byte, error) {
	data, err := yaml.Marshal(File{Groups: []monitoringv1.RuleGroup{Group(t)}})
	if err != nil {
		return nil, err
	}
	return append([]byte("# Generated by `make monitoring` from core/monitoring/rules; do not edit.\n"), data...), nil
}
