// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package monitoring serves a component's /metrics, /healthz and /readyz.
package monitoring

import (
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promcollectors "github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewServer returns an HTTP server for reg's metrics, a liveness check that
// answers while the process runs, and a readiness check that follows ready.
func NewServer(reg *prometheus.Registry, ready func() bool) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
}

// NewRegistry returns a registry holding collectors and the Go runtime's
// and the process's own metrics, which every component exports.
func NewRegistry(collectors ...prometheus.Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors...)
	reg.MustRegister(promcollectors.NewGoCollector(), promcollectors.NewProcessCollector(promcollectors.ProcessCollectorOpts{}))
	return reg
}

// MaxField bounds what a component repeats of a client's own strings in its
// logs and answers.
const MaxField = 128

// BoundedField is a client-supplied string cut to MaxField bytes, so that a
// client cannot fill the logs through a field of its request.
func BoundedField(s string) string {
	if len(s) <= MaxField {
		return s
	}
	return strings.ToValidUTF8(s[:MaxField], "") + "…"
}
