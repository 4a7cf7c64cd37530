// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package ca

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshcert/kubectl-meshcert/core/monitoring"
)

// Results of one CreateCertificate call, the label of meshcert_ca_csr_total.
const (
	resultSuccess           = "success"
	resultUnauthenticated   = "unauthenticated"
	resultInvalidCSR        = "invalid_csr"
	resultResourceExhausted = "resource_exhausted"
	resultUnavailable       = "unavailable"
	resultInternal          = "internal"
)

// Reasons for an authentication failure, the label of
// meshcert_ca_auth_failures_total.
const (
	reasonMissingToken      = "missing_token"
	reasonMalformedToken    = "malformed_token"
	reasonUntrustworthy     = "untrustworthy_token"
	reasonReviewRejected    = "review_rejected"
	reasonNotServiceAccount = "not_service_account"
	reasonReviewUnavailable = "review_unavailable"
	reasonReviewError       = "review_error"
	reasonAudienceMismatch  = "audience_mismatch"
	// reasonReviewsExhausted counts tokens not reviewed because
	// --max-concurrent-authentications reviews were in flight.
	reasonReviewsExhausted = "reviews_exhausted"
	// reasonRefusedBefore counts replays of a token the API server refused
	// within --token-refusal-cache-ttl, answered without a TokenReview.
	reasonRefusedBefore = "refused_before"
)

// metrics are one CA's Prometheus collectors, on a registry of its own so
// that several CAs can run in one process.
type metrics struct {
	registry     *prometheus.Registry
	csrs         *prometheus.CounterVec
	authFailures *prometheus.CounterVec
	signDuration prometheus.Histogram
	rootExpiry   *prometheus.GaugeVec
	reviews      *prometheus.CounterVec
	// localVerifications counts the tokens decided on locally
	// (--token-verification=local).
	localVerifications *prometheus.CounterVec
	reviewCacheHits    prometheus.Counter
	inflight           prometheus.Gauge
	inflightLimit      prometheus.Gauge
	kubeQPSLimit       prometheus.Gauge
	kubeThrottleWait   prometheus.Histogram
	leader             prometheus.Gauge
	rootConfigMaps     *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		csrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshcert_ca_csr_total",
			Help: "CreateCertificate calls by result.",
		}, []string{"result"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshcert_ca_auth_failures_total",
			Help: "Refused workload tokens by reason.",
		}, []string{"reason"}),
		signDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "meshcert_ca_sign_duration_seconds",
			Help:    "Time to serve one successful CreateCertificate call, authentication included.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		rootExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "meshcert_ca_root_expiry_timestamp_seconds",
			Help: "Not-after time of each trusted root, in Unix seconds.",
		}, []string{"fingerprint"}),
		reviews: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshcert_ca_token_reviews_total",
			Help: "TokenReview calls sent to the Kubernetes API by result.",
		}, []string{"result"}),
		localVerifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshcert_ca_local_token_verifications_total",
			Help: "Tokens verified locally (--token-verification=local), without a TokenReview, by result.",
		}, []string{"result"}),
		reviewCacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshcert_ca_token_review_cache_hits_total",
			Help: "Tokens authenticated from the review cache, without a TokenReview.",
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "meshcert_ca_inflight_signings",
			Help: "CreateCertificate calls being served now.",
		}),
		inflightLimit: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "meshcert_ca_max_concurrent_signings",
			Help: "The --max-concurrent-signings limit; calls beyond it get ResourceExhausted.",
		}),
		kubeQPSLimit: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "meshcert_ca_kube_client_qps_limit",
			Help: "The --kube-api-qps limit of the CA's Kubernetes client (0: unlimited).",
		}),
		kubeThrottleWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "meshcert_ca_kube_client_throttle_seconds",
			Help:    "Time Kubernetes API calls waited for the client-side rate limiter.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "meshcert_ca_leader",
			Help: "1 while this replica holds the leader lease.",
		}),
		rootConfigMaps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshcert_ca_root_configmap_writes_total",
			Help: "Writes of the root ConfigMap by operation (create, update).",
		}, []string{"operation"}),
	}
	m.registry = monitoring.NewRegistry(m.csrs, m.authFailures, m.signDuration, m.rootExpiry, m.reviews, m.localVerifications, m.reviewCacheHits,
		m.inflight, m.inflightLimit, m.kubeQPSLimit, m.kubeThrottleWait, m.leader, m.rootConfigMaps)
	return m
}
