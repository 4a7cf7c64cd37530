// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package filemount

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	refreshes *prometheus.CounterVec
	writes    *prometheus.CounterVec
	notAfter  *prometheus.GaugeVec
	foreign   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshcert_filemount_refreshes_total",
			Help: "Key/cert Secrets written, by reason (created, expiring, root-changed, corrupt, requested).",
		}, []string{"reason"}),
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshcert_filemount_api_writes_total",
			Help: "Secret writes sent to the Kubernetes API, by verb.",
		}, []string{"verb"}),
		notAfter: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "meshcert_filemount_secret_not_after_timestamp_seconds",
			Help: "Not-after time of the certificate in each key/cert Secret, in Unix seconds.",
		}, []string{"namespace", "secret"}),
		foreign: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshcert_filemount_foreign_secrets_total",
			Help: "Times a Secret of a managed name was found that meshcert does not own, and left alone.",
		}),
	}
	for _, c := range []prometheus.Collector{m.refreshes, m.writes, m.notAfter, m.foreign} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
