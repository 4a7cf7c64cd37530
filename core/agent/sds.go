// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"maps"
	"strings"
	"sync"
	"sync/atomic"

	"io"
	"log/slog"
	"slices"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	secretv3 "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"k8s.io/utils/clock"

	"github.com/meshcert/kubectl-meshcert/core/fleet"
	"github.com/meshcert/kubectl-meshcert/core/monitoring"
)

// Metadata the agent sets on FetchSecrets answers, for inspect.
const (
	HeaderIdentity    = "meshcert-identity"
	HeaderRotationDue = "meshcert-rotation-due"
)

// certSource is where a stream's key and certificate come from: an
// identity's entry in the secret cache, or the mounted files.
type certSource interface {
	subscribe(waker)
	unsubscribe(waker)
	current() *servedCert
	waitReady(ctx context.Context) error
	name() string
}

func (e *identityEntry) current() *servedCert { return e.cert.Load() }
func (e *identityEntry) name() string         { return e.id }
func (e *identityEntry) waitReady(ctx context.Context) error {
	select {
	case <-e.haveCert:
		return nil
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}

// sdsServer serves Envoy's Secret Discovery Service v3.
type sdsServer struct {
	secretv3.UnimplementedSecretDiscoveryServiceServer
	agent *Agent
	log   *slog.Logger
}

func unknownResource(name string) error {
	return status.Errorf(codes.InvalidArgument,
		"unknown SDS resource %q: this agent serves %q (key and certificate chain) and %q (root bundle)", name, ResourceDefault, ResourceRootCA)
}

func validateNames(names []string) error {
	if len(names) == 0 {
		return status.Error(codes.InvalidArgument, "the request names no resource: ask for \"default\" and/or \"ROOTCA\"")
	}
	for _, n := range names {
		if n != ResourceDefault && n != ResourceRootCA {
			return unknownResource(n)
		}
	}
	return nil
}

// streamState is what one stream has asked for and been sent. The stream's
// own goroutine reads requests; a change elsewhere wakes it, and the push
// then runs on a short-lived goroutine, so that an idle stream costs one
// goroutine and a slow peer never holds up the others.
type streamState struct {
	ctx   context.Context
	agent *Agent

	mu     sync.Mutex // guards everything below and serialises sends
	source certSource
	names  []string
	sent   map[string]string // resource name -> version sent
	nonce  string
	node   string
	// send pushes what changed (or everything, when forced).
	send func(force bool) error
	// token is what the stream presented (node mode), and tokenExpiry
	// when it expires. The stream ends then, or when the CA refuses the
	// token, and nothing is pushed to it after.
	token       string
	tokenExpiry time.Time
	// pod is the pod the token is bound to, whose report says what its
	// Envoy made of the pushes.
	pod         podRef
	expiryTimer clock.Timer
	// ended is closed when the stream must end with endErr, which is
	// written before and read after.
	ended   chan struct{}
	endOnce sync.Once
	endErr  error

	pushing, dirty atomic.Bool
}

func newStreamState(ctx context.Context, a *Agent) *streamState {
	return &streamState{ctx: ctx, agent: a, sent: map[string]string{}, ended: make(chan struct{})}
}

// authorise reads the token of a node-mode stream once, refusing a missing
// or untrustworthy one, and arms the stream's end at its expiry.
func (st *streamState) authorise() error {
	if st.agent.cfg.Mode() != ModeNode || !st.tokenExpiry.IsZero() {
		return nil
	}
	raw, claims, err := st.agent.callerToken(st.ctx)
	if err != nil {
		return err
	}
	st.token, st.tokenExpiry = raw, claims.Expiry
	st.pod = podRef{claims.Namespace, claims.Pod}
	clk := st.agent.cfg.Clock
	exp := claims.Expiry
	st.expiryTimer = clk.AfterFunc(exp.Sub(clk.Now()), func() {
		st.end(status.Errorf(codes.Unauthenticated,
			"the stream's token expired at %s: reconnect with the workload's refreshed token (Envoy does so by itself)", exp.UTC().Format(time.RFC3339)),
			st.agent.metrics.expiredStreams)
	})
	return nil
}

// end makes the stream end with err unless it has already ended. It counts
// the ending in endings first, so that a client that sees the error also
// sees the count.
func (st *streamState) end(err error, endings prometheus.Counter) {
	st.endOnce.Do(func() {
		st.endErr = err
		endings.Inc()
		close(st.ended)
	})
}

// tokenValid reports whether the stream may still be pushed to: its token
// has not expired, and the CA has not refused it.
func (st *streamState) tokenValid() bool {
	select {
	case <-st.ended:
		return false
	default:
	}
	return st.tokenExpiry.IsZero() || st.agent.cfg.Clock.Now().Before(st.tokenExpiry)
}

// serve runs the stream's receive loop until it ends, or, for a node-mode
// stream, until its token expires or the CA refuses it: then the stream
// ends with Unauthenticated, so that Envoy reconnects with its refreshed
// token and is authorised again.
func (st *streamState) serve(loop func() error) error {
	if st.agent.cfg.Mode() != ModeNode {
		return loop()
	}
	done := make(chan error, 1)
	go func() { done <- loop() }()
	select {
	case err := <-done:
		return err
	case <-st.ended:
		return st.endErr
	}
}

func (st *streamState) wake() {
	st.dirty.Store(true)
	if !st.pushing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		for {
			st.dirty.Store(false)
			st.mu.Lock()
			if st.names != nil && st.send != nil && st.ctx.Err() == nil {
				if err := st.send(false); err != nil {
					st.agent.log.Debug("push failed", "node", st.node, "error", err)
				}
			}
			st.mu.Unlock()
			st.pushing.Store(false)
			if !st.dirty.Load() || !st.pushing.CompareAndSwap(false, true) {
				return
			}
		}
	}()
}

// want switches the stream to names, resolving the workload's certificate
// when "default" is among them for the first time. Callers hold st.mu.
func (st *streamState) want(names []string) error {
	if err := validateNames(names); err != nil {
		return err
	}
	if err := st.authorise(); err != nil {
		return err
	}
	if st.source == nil && slices.Contains(names, ResourceDefault) {
		src, err := onFreshStack(func() (certSource, error) { return st.agent.resolve(st.ctx) })
		if err != nil {
			return err
		}
		if err := src.waitReady(st.ctx); err != nil {
			return err
		}
		st.source = src
		src.subscribe(st)
		if e, ok := src.(*identityEntry); ok && st.token != "" {
			e.hold(st)
		}
	}
	if st.source == nil {
		if err := st.agent.checkCaller(st.ctx); err != nil {
			return err
		}
	}
	if slices.Contains(names, ResourceRootCA) {
		if err := st.agent.waitRoots(st.ctx); err != nil {
			return err
		}
	}
	st.names = slices.Clone(names)
	return nil
}

// onFreshStack runs f on a goroutine of its own and waits for it. A
// stream's goroutine lives as long as the stream; the CA call that resolves
// its certificate goes deep (TLS, gRPC), and would leave that goroutine with
// a large stack for good.
func onFreshStack[T any](f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f()
		done <- result{v, err}
	}()
	r := <-done
	return r.v, r.err
}

func (st *streamState) close() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.source != nil {
		st.source.unsubscribe(st)
		if e, ok := st.source.(*identityEntry); ok {
			e.release(st)
		}
	}
	st.agent.roots.unsubscribe(st)
	st.names = nil
	if st.expiryTimer != nil {
		st.expiryTimer.Stop()
	}
}

// resources returns the requested resources, with changed reporting whether
// any differs from what was sent.
func (st *streamState) resources(names []string) (out []*encodedResource, changed bool, err error) {
	for _, n := range names {
		var r *encodedResource
		switch n {
		case ResourceDefault:
			r, err = st.source.current().resource()
		case ResourceRootCA:
			r, err = st.agent.roots.current.Load().resource()
		}
		if err != nil {
			return nil, false, err
		}
		if st.sent[n] != r.version {
			changed = true
		}
		out = append(out, r)
	}
	return out, changed, nil
}

func newNonce() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// receive hands every request of a stream to handle until the stream ends;
// the client closing it is not an error.
func receive[Req any](recv func() (Req, error), handle func(Req) error) error {
	for {
		req, err := recv()
		if errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled {
			return nil
		}
		if err != nil {
			return err
		}
		if err := handle(req); err != nil {
			return err
		}
	}
}

// pushed records a push: the versions sent, by resource name, and the nonce
// the client's answer must carry.
func (st *streamState) pushed(nonce string, versions map[string]string) {
	maps.Copy(st.sent, versions)
	st.nonce = nonce
	st.agent.metrics.pushes.Inc()
	st.agent.report.envoySaid(st.pod, fleet.EnvoyWarming, "")
}

const firstRequestNeedsNode = "the first request of a stream must carry the node, as Envoy's does"

// StreamSecrets serves the state-of-the-world protocol Envoy uses.
func (s *sdsServer) StreamSecrets(stream grpc.BidiStreamingServer[discovery.DiscoveryRequest, discovery.DiscoveryResponse]) error {
	s.agent.metrics.streams.Inc()
	defer s.agent.metrics.streams.Dec()
	st := newStreamState(stream.Context(), s.agent)
	defer st.close()
	st.send = func(force bool) error {
		if !st.tokenValid() {
			return nil // the stream is ending: no key for a token no longer valid
		}
		res, changed, err := st.resources(st.names)
		if err != nil || (!changed && !force) {
			return err
		}
		resp := &discovery.DiscoveryResponse{
			VersionInfo: nextVersion(s.agent.cfg.Clock.Now()), TypeUrl: SecretTypeURL, Nonce: newNonce(),
		}
		for _, r := range res {
			resp.Resources = append(resp.Resources, r.any)
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
		sent := make(map[string]string, len(res))
		for _, r := range res {
			sent[r.name] = r.version
		}
		st.pushed(resp.Nonce, sent)
		return nil
	}
	return st.serve(func() error {
		return receive(stream.Recv, func(req *discovery.DiscoveryRequest) error { return s.onRequest(st, req) })
	})
}

func (s *sdsServer) onRequest(st *streamState, req *discovery.DiscoveryRequest) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	switch {
	case st.node == "":
		if req.GetNode() == nil {
			return status.Error(codes.InvalidArgument, firstRequestNeedsNode)
		}
		st.node = monitoring.BoundedField(req.GetNode().GetId())
		if err := st.want(req.GetResourceNames()); err != nil {
			return err
		}
		st.agent.roots.subscribe(st)
		return st.send(true)
	case req.GetErrorDetail() != nil:
		s.agent.metrics.nacks.Inc()
		if req.GetResponseNonce() == st.nonce {
			s.agent.report.envoySaid(st.pod, fleet.EnvoyNacked, req.GetErrorDetail().GetMessage())
		}
		s.log.Warn("Envoy rejected a secret (NACK); keeping the stream", "node", st.node,
			"resources", monitoring.BoundedField(strings.Join(req.GetResourceNames(), ",")), "version", monitoring.BoundedField(req.GetVersionInfo()),
			"nonce", monitoring.BoundedField(req.GetResponseNonce()), "detail", monitoring.BoundedField(req.GetErrorDetail().GetMessage()))
	case req.GetResponseNonce() != st.nonce:
		// An answer to an older push; the newer one is on its way.
	default:
		s.agent.metrics.acks.Inc()
		s.agent.report.envoySaid(st.pod, fleet.EnvoyActive, "")
		if !slices.Equal(req.GetResourceNames(), st.names) {
			if err := st.want(req.GetResourceNames()); err != nil {
				return err
			}
			return st.send(true)
		}
	}
	return nil
}

// DeltaSecrets serves the incremental protocol.
func (s *sdsServer) DeltaSecrets(stream grpc.BidiStreamingServer[discovery.DeltaDiscoveryRequest, discovery.DeltaDiscoveryResponse]) error {
	s.agent.metrics.streams.Inc()
	defer s.agent.metrics.streams.Dec()
	st := newStreamState(stream.Context(), s.agent)
	defer st.close()
	st.send = func(bool) error {
		if !st.tokenValid() {
			return nil // the stream is ending: no key for a token no longer valid
		}
		res, changed, err := st.resources(st.names)
		if err != nil || !changed {
			return err
		}
		resp := &discovery.DeltaDiscoveryResponse{SystemVersionInfo: nextVersion(s.agent.cfg.Clock.Now()), TypeUrl: SecretTypeURL, Nonce: newNonce()}
		for _, r := range res {
			if st.sent[r.name] != r.version {
				resp.Resources = append(resp.Resources, &discovery.Resource{Name: r.name, Version: r.version, Resource: r.any})
			}
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
		sent := make(map[string]string, len(resp.Resources))
		for _, r := range resp.Resources {
			sent[r.Name] = r.Version
		}
		st.pushed(resp.Nonce, sent)
		return nil
	}
	return st.serve(func() error {
		return receive(stream.Recv, func(req *discovery.DeltaDiscoveryRequest) error { return s.onDeltaRequest(st, req) })
	})
}

func (s *sdsServer) onDeltaRequest(st *streamState, req *discovery.DeltaDiscoveryRequest) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.node == "" {
		if req.GetNode() == nil {
			return status.Error(codes.InvalidArgument, firstRequestNeedsNode)
		}
		st.node = monitoring.BoundedField(req.GetNode().GetId())
		st.agent.roots.subscribe(st)
	}
	if req.GetErrorDetail() != nil {
		s.agent.metrics.nacks.Inc()
		if req.GetResponseNonce() == st.nonce {
			s.agent.report.envoySaid(st.pod, fleet.EnvoyNacked, req.GetErrorDetail().GetMessage())
		}
		s.log.Warn("Envoy rejected a secret (NACK); keeping the stream", "node", st.node,
			"nonce", monitoring.BoundedField(req.GetResponseNonce()), "detail", monitoring.BoundedField(req.GetErrorDetail().GetMessage()))
		return nil
	}
	if req.GetResponseNonce() != "" && req.GetResponseNonce() == st.nonce {
		s.agent.metrics.acks.Inc()
		s.agent.report.envoySaid(st.pod, fleet.EnvoyActive, "")
	}
	names := slices.Clone(st.names)
	for _, n := range req.GetResourceNamesSubscribe() {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	names = slices.DeleteFunc(names, func(n string) bool { return slices.Contains(req.GetResourceNamesUnsubscribe(), n) })
	for _, n := range req.GetResourceNamesUnsubscribe() {
		delete(st.sent, n)
	}
	if len(names) == 0 {
		st.names = nil
		return nil
	}
	if slices.Equal(names, st.names) {
		return nil
	}
	if err := st.want(names); err != nil {
		return err
	}
	return st.send(false)
}

// FetchSecrets answers one request. Its header metadata names the identity
// and the rotation due time, for inspect.
func (s *sdsServer) FetchSecrets(ctx context.Context, req *discovery.DiscoveryRequest) (*discovery.DiscoveryResponse, error) {
	st := newStreamState(ctx, s.agent)
	defer st.close()
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := st.want(req.GetResourceNames()); err != nil {
		return nil, err
	}
	res, _, err := st.resources(st.names)
	if err != nil {
		return nil, err
	}
	resp := &discovery.DiscoveryResponse{VersionInfo: nextVersion(s.agent.cfg.Clock.Now()), TypeUrl: SecretTypeURL, Nonce: newNonce()}
	for _, r := range res {
		resp.Resources = append(resp.Resources, r.any)
	}
	if st.source != nil {
		cert := st.source.current()
		_ = grpc.SetHeader(ctx, metadata.Pairs(HeaderIdentity, st.source.name(), HeaderRotationDue, cert.rotateAt.UTC().Format(time.RFC3339Nano)))
	}
	return resp, nil
}
