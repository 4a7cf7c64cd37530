// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package workload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Paths of a workload's control endpoint, which lets a harness read a
// workload in a container and drive its calls.
const (
	PathStatus  = "/status"
	PathCall    = "/call"
	PathTraffic = "/traffic"
)

// CallResult is what POST /call answers.
type CallResult struct {
	Peer  string `json:"peer,omitempty"`
	Error string `json:"error,omitempty"`
}

// Handler serves the control endpoint: GET /status, POST /call?to=ADDR,
// POST /traffic?to=ADDR&interval=D to start steady calls, and DELETE
// /traffic to stop them and read the counts.
func (w *Workload) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathStatus, func(rw http.ResponseWriter, _ *http.Request) {
		writeJSON(rw, w.Status())
	})
	mux.HandleFunc("POST "+PathCall, func(rw http.ResponseWriter, r *http.Request) {
		to := r.URL.Query().Get("to")
		if to == "" {
			http.Error(rw, "give the peer as ?to=HOST:PORT", http.StatusBadRequest)
			return
		}
		peer, err := w.Call(r.Context(), to)
		result := CallResult{Peer: peer}
		if err != nil {
			result.Error = err.Error()
		}
		writeJSON(rw, result)
	})
	mux.HandleFunc("POST "+PathTraffic, func(rw http.ResponseWriter, r *http.Request) {
		to := r.URL.Query().Get("to")
		interval, err := time.ParseDuration(r.URL.Query().Get("interval"))
		if to == "" || err != nil || interval <= 0 {
			http.Error(rw, "give ?to=HOST:PORT&interval=DURATION (a positive Go duration such as 50ms)", http.StatusBadRequest)
			return
		}
		w.StartTraffic(to, interval)
		writeJSON(rw, w.Status())
	})
	mux.HandleFunc("DELETE "+PathTraffic, func(rw http.ResponseWriter, _ *http.Request) {
		w.StopTraffic()
		writeJSON(rw, w.Status())
	})
	return mux
}

func writeJSON(rw http.ResponseWriter, v any) {
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(v)
}

// Remote drives a workload through its control endpoint.
type Remote struct {
	// Base is the endpoint's URL, such as http://127.0.0.1:8080.
	Base   string
	Client *http.Client
}

func (r *Remote) do(ctx context.Context, method, path string, query url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, r.Base+path+"?"+query.Encode(), nil)
	if err != nil {
		return err
	}
	client := r.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, body)
	}
	return json.Unmarshal(body, out)
}

// Status reads the workload's status.
func (r *Remote) Status(ctx context.Context) (Status, error) {
	var st Status
	err := r.do(ctx, http.MethodGet, PathStatus, nil, &st)
	return st, err
}

// Call has the workload call addr once and returns the peer's identity.
func (r *Remote) Call(ctx context.Context, addr string) (string, error) {
	var result CallResult
	if err := r.do(ctx, http.MethodPost, PathCall, url.Values{"to": {addr}}, &result); err != nil {
		return "", err
	}
	if result.Error != "" {
		return result.Peer, errors.New(result.Error)
	}
	return result.Peer, nil
}

// StartTraffic has the workload call addr every interval.
func (r *Remote) StartTraffic(ctx context.Context, addr string, interval time.Duration) error {
	var st Status
	return r.do(ctx, http.MethodPost, PathTraffic, url.Values{"to": {addr}, "interval": {interval.String()}}, &st)
}

// StopTraffic stops the calls and returns the workload's counts.
func (r *Remote) StopTraffic(ctx context.Context) (Status, error) {
	var st Status
	err := r.do(ctx, http.MethodDelete, PathTraffic, nil, &st)
	return st, err
}
