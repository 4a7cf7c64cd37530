// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshcert/kubectl-meshcert/core/monitoring"
)

// metrics are one agent's collectors, on a registry of its own.
type metrics struct {
	registry       *prometheus.Registry
	certExpiry     *prometheus.GaugeVec
	rotationDue    *prometheus.GaugeVec
	rotations      prometheus.Counter
	caErrors       *prometheus.CounterVec
	streams        prometheus.Gauge
	identities     prometheus.Gauge
	pushes         prometheus.Counter
	acks           prometheus.Counter
	nacks          prometheus.Counter
	expiredStreams prometheus.Counter
	refusedStreams prometheus.Counter
	renewalFails   prometheus.Counter
	peerLimited    prometheus.Counter
	fileLoads      *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		certExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "meshcert_agent_cert_expiry_timestamp_seconds",
			Help: "Not-after time of the certificate served for each identity, in Unix seconds.",
		}, []string{"identity"}),
		rotationDue: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "meshcert_agent_rotation_due_timestamp_seconds",
			Help: "When each identity's certificate is due for renewal, in Unix seconds.",
		}, []string{"identity"}),
		rotations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshcert_agent_rotations_total",
			Help: "Certificates renewed.",
		}),
		caErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshcert_agent_ca_errors_total",
			Help: "Failed CA requests by gRPC code.",
		}, []string{"code"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "meshcert_agent_open_streams",
			Help: "Open SDS streams.",
		}),
		identities: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "meshcert_agent_identities",
			Help: "Identities held in the secret cache.",
		}),
		pushes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshcert_agent_sds_pushes_total",
			Help: "SDS responses sent on streams.",
		}),
		acks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshcert_agent_sds_acks_total",
			Help: "SDS responses Envoy accepted.",
		}),
		nacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshcert_agent_sds_nacks_total",
			Help: "SDS responses Envoy rejected.",
		}),
		expiredStreams: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshcert_agent_sds_expired_streams_total",
			Help: "SDS streams ended because the token they presented expired; Envoy reconnects with its refreshed token.",
		}),
		refusedStreams: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshcert_agent_sds_refused_streams_total",
			Help: "SDS streams ended because the CA refused the token they presented when renewing; Envoy reconnects with its refreshed token.",
		}),
		renewalFails: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshcert_agent_renewal_failures_total",
			Help: "Renewals that failed and will be retried; the current certificate stays served.",
		}),
		peerLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshcert_agent_sds_peer_limited_total",
			Help: "SDS calls refused because the workloads of their UID held --max-streams-per-peer calls already.",
		}),
		fileLoads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshcert_agent_file_loads_total",
			Help: "Changes of the mounted key/cert files by result (loaded, refused).",
		}, []string{"result"}),
	}
	m.registry = monitoring.NewRegistry(m.certExpiry, m.rotationDue, m.rotations, m.caErrors, m.streams, m.identities,
		m.pushes, m.acks, m.nacks, m.expiredStreams, m.refusedStreams, m.renewalFails, m.peerLimited, m.fileLoads)
	return m
}
