// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	secretv3 "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

var secretTypeURL = "type.googleapis.com/" + string(proto.MessageName(&tlsv3.Secret{}))

// SDSTarget is a node agent's SDS socket and the token its streams carry
// (meshcert's agent reads it; Istio's, which serves one identity, ignores
// it).
type SDSTarget struct {
	Socket string
	Token  string
}

// sdsStream is one Envoy-style stream on its own connection, asking for
// the "default" certificate and ACKing every response.
type sdsStream struct {
	conn   *grpc.ClientConn
	cancel context.CancelFunc
	opened time.Duration
	pushes chan time.Time
	done   chan error
}

// Streams is a set of open SDS streams.
type Streams struct{ streams []*sdsStream }

// OpenStreams opens n streams, parallel at a time, and returns once each
// has received its first certificate.
func OpenStreams(ctx context.Context, target SDSTarget, n, parallel int) (*Streams, error) {
	s := &Streams{streams: make([]*sdsStream, n)}
	errs := make([]error, n)
	sem := make(chan struct{}, max(parallel, 1))
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			s.streams[i], errs[i] = openStream(ctx, target, fmt.Sprintf("bench-%d", i))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func openStream(ctx context.Context, target SDSTarget, node string) (*sdsStream, error) {
	began := time.Now()
	conn, err := grpc.NewClient("unix://"+target.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	streamCtx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+target.Token))
	s := &sdsStream{conn: conn, cancel: cancel, pushes: make(chan time.Time, 16), done: make(chan error, 1)}
	stream, err := secretv3.NewSecretDiscoveryServiceClient(conn).StreamSecrets(streamCtx)
	if err != nil {
		s.close()
		return nil, err
	}
	request := &discovery.DiscoveryRequest{Node: &corev3.Node{Id: node}, ResourceNames: []string{"default"}, TypeUrl: secretTypeURL}
	if err := stream.Send(request); err != nil {
		s.close()
		return nil, err
	}
	first := make(chan error, 1)
	go func() {
		received := 0
		for {
			resp, err := stream.Recv()
			at := time.Now()
			if err != nil {
				if received == 0 {
					first <- err
				}
				s.done <- err
				return
			}
			ack := &discovery.DiscoveryRequest{Node: request.Node, ResourceNames: request.ResourceNames, TypeUrl: secretTypeURL,
				VersionInfo: resp.VersionInfo, ResponseNonce: resp.Nonce}
			if err := stream.Send(ack); err != nil {
				s.done <- err
				return
			}
			if received++; received == 1 {
				s.opened = at.Sub(began)
				first <- nil
				continue
			}
			select {
			case s.pushes <- at:
			default:
			}
		}
	}()
	select {
	case err := <-first:
		if err != nil {
			s.close()
			return nil, fmt.Errorf("the stream got no certificate: %w", err)
		}
		return s, nil
	case <-ctx.Done():
		s.close()
		return nil, ctx.Err()
	}
}

func (s *sdsStream) close() {
	s.cancel()
	_ = s.conn.Close()
}

// OpenLatencies are the times from dialling to the first certificate,
// sorted.
func (s *Streams) OpenLatencies() []time.Duration {
	var out []time.Duration
	for _, st := range s.streams {
		out = append(out, st.opened)
	}
	slices.Sort(out)
	return out
}

// AwaitPush waits until every stream has received one more certificate
// (a rotation pushed to all) and returns the span from the first stream's
// arrival to the last's.
func (s *Streams) AwaitPush(ctx context.Context) (time.Duration, error) {
	var first, last time.Time
	for i, st := range s.streams {
		select {
		case at := <-st.pushes:
			if first.IsZero() || at.Before(first) {
				first = at
			}
			if at.After(last) {
				last = at
			}
		case err := <-st.done:
			return 0, fmt.Errorf("stream %d ended before the push: %w", i, err)
		case <-ctx.Done():
			return 0, fmt.Errorf("stream %d received no push: %w", i, ctx.Err())
		}
	}
	return last.Sub(first), nil
}

// Close closes every stream.
func (s *Streams) Close() {
	for _, st := range s.streams {
		if st != nil {
			st.close()
		}
	}
}
