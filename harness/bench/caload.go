// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	pb "istio.io/api/security/v1alpha1"
)

// CATarget is a CA server to load: its gRPC address, and the root and name
// its serving certificate is checked with.
type CATarget struct {
	Addr       string
	RootPEM    []byte
	ServerName string
}

// Request is one CreateCertificate call: the workload's token and its CSR.
type Request struct {
	Token string
	CSR   string
}

// Meter reads a cumulative quantity, such as a process's CPU seconds or a
// counter of the API server, before and after a measured interval.
type Meter func(context.Context) (float64, error)

// Load is a CreateCertificate load: Concurrency callers, each sending the
// next of Requests as soon as the last is answered, over Connections
// connections, for Warmup and then Duration. The calls answered within
// Duration are counted, with their whole latency, and the Meters are read at
// its start and its end.
type Load struct {
	Target      CATarget
	Requests    []Request
	Concurrency int
	Connections int
	Warmup      time.Duration
	Duration    time.Duration
	Meters      map[string]Meter
}

// LoadResult is what a Load measured.
type LoadResult struct {
	Calls    int
	Failed   map[codes.Code]int
	Elapsed  time.Duration
	P50, P99 time.Duration
	// Metered is each meter's growth over the measured interval.
	Metered map[string]float64
}

// PerSecond is the answered calls per second.
func (r LoadResult) PerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Calls) / r.Elapsed.Seconds()
}

// Per is a meter's growth per answered call.
func (r LoadResult) Per(meter string) float64 { return r.Metered[meter] / float64(max(r.Calls, 1)) }

// dialCA opens a gRPC connection to target over TLS.
func dialCA(target CATarget) (*grpc.ClientConn, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(target.RootPEM) {
		return nil, fmt.Errorf("no certificate in the root given for %s", target.Addr)
	}
	creds := credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: target.ServerName, MinVersion: tls.VersionTLS12})
	return grpc.NewClient("passthrough:///"+target.Addr, grpc.WithTransportCredentials(creds))
}

// createCertificate sends one request as Istio's CA client does.
func createCertificate(ctx context.Context, client pb.IstioCertificateServiceClient, req Request) error {
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+req.Token)
	resp, err := client.CreateCertificate(ctx, &pb.IstioCertificateRequest{Csr: req.CSR, ValidityDuration: 24 * 3600})
	if err == nil && len(resp.GetCertChain()) == 0 {
		return errors.New("the CA answered without a certificate chain")
	}
	return err
}

// Run applies the load. A call that fails is counted by its code; the run
// fails only when no call succeeds.
func (l Load) Run(ctx context.Context) (LoadResult, error) {
	if len(l.Requests) == 0 || l.Concurrency < 1 {
		return LoadResult{}, errors.New("a load needs requests and at least one caller")
	}
	clients := make([]pb.IstioCertificateServiceClient, max(l.Connections, 1))
	for i := range clients {
		conn, err := dialCA(l.Target)
		if err != nil {
			return LoadResult{}, err
		}
		defer conn.Close()
		clients[i] = pb.NewIstioCertificateServiceClient(conn)
	}
	// A first call from every connection, so that TLS handshakes are not measured.
	for _, c := range clients {
		if err := createCertificate(ctx, c, l.Requests[0]); err != nil {
			return LoadResult{}, fmt.Errorf("the first call to %s failed: %w", l.Target.Addr, err)
		}
	}
	start := time.Now()
	measureFrom, measureTo := start.Add(l.Warmup), start.Add(l.Warmup+l.Duration)
	type callerResult struct {
		latencies []time.Duration
		failed    map[codes.Code]int
	}
	results := make([]callerResult, l.Concurrency)
	var before map[string]float64
	var meterErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		time.Sleep(time.Until(measureFrom))
		before, meterErr = readMeters(ctx, l.Meters)
	})
	for i := range l.Concurrency {
		wg.Go(func() {
			r := callerResult{failed: map[codes.Code]int{}}
			client := clients[i%len(clients)]
			for n := i; ctx.Err() == nil; n++ {
				began := time.Now()
				if began.After(measureTo) {
					break
				}
				err := createCertificate(ctx, client, l.Requests[n%len(l.Requests)])
				ended := time.Now()
				if ended.Before(measureFrom) || ended.After(measureTo) {
					continue
				}
				if err != nil {
					r.failed[status.Code(err)]++
					continue
				}
				r.latencies = append(r.latencies, ended.Sub(began))
			}
			results[i] = r
		})
	}
	wg.Wait()
	if meterErr != nil {
		return LoadResult{}, meterErr
	}
	after, err := readMeters(ctx, l.Meters)
	if err != nil {
		return LoadResult{}, err
	}
	res := LoadResult{Failed: map[codes.Code]int{}, Elapsed: l.Duration, Metered: map[string]float64{}}
	var latencies []time.Duration
	for _, r := range results {
		latencies = append(latencies, r.latencies...)
		for code, n := range r.failed {
			res.Failed[code] += n
		}
	}
	for name := range l.Meters {
		res.Metered[name] = after[name] - before[name]
	}
	if len(latencies) == 0 {
		return res, fmt.Errorf("no call to %s succeeded in %s (failures by code: %v)", l.Target.Addr, l.Duration, res.Failed)
	}
	slices.Sort(latencies)
	res.Calls = len(latencies)
	res.P50, res.P99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
	return res, nil
}

func readMeters(ctx context.Context, meters map[string]Meter) (map[string]float64, error) {
	values := map[string]float64{}
	for name, read := range meters {
		v, err := read(ctx)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		values[name] = v
	}
	return values, nil
}

// percentile is the q-quantile of sorted, by the nearest rank.
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
