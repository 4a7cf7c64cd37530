// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package workload

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/meshcert/kubectl-meshcert/core/lifecycle"
	"github.com/meshcert/kubectl-meshcert/core/pki"
)

// Workload serves mTLS and calls its peers over mTLS.
type Workload struct {
	Name   string
	source Source
	// allowed lists the SPIFFE IDs the workload accepts as peers; empty
	// accepts any identity that chains to its roots.
	allowed []string

	listener net.Listener
	ok       atomic.Int64
	failed   atomic.Int64
	mu       sync.Mutex
	peers    map[string]bool
	lastCall string
	traffic  context.CancelFunc
	trafficW sync.WaitGroup

	controlAddr string
	// Background is set by Start and StartOn: Stop, Done and Err.
	*lifecycle.Background
}

// Status is what the workload reports. Field names are stable JSON.
type Status struct {
	Name         string    `json:"name"`
	Path         string    `json:"path,omitempty"`
	Identity     string    `json:"identity,omitempty"`
	Serial       string    `json:"serial,omitempty"`
	NotAfter     time.Time `json:"notAfter,omitzero"`
	Certificates int       `json:"certificates"`
	LastError    string    `json:"lastError,omitempty"`
	CallsOK      int64     `json:"callsOK"`
	CallsFailed  int64     `json:"callsFailed"`
	LastCallErr  string    `json:"lastCallError,omitempty"`
	PeersSeen    []string  `json:"peersSeen,omitempty"`
	Address      string    `json:"address"`
}

// Option changes how New sets a workload up.
type Option func(*Workload)

// WithControl serves the control endpoint (GET /status, POST /call, POST
// and DELETE /traffic) on addr while the workload runs.
func WithControl(addr string) Option { return func(w *Workload) { w.controlAddr = addr } }

// New listens for mTLS on listen. Nothing is served until Run.
func New(listen, name string, source Source, allowed []string, opts ...Option) (*Workload, error) {
	w := &Workload{Name: name, source: source, allowed: allowed, peers: map[string]bool{}}
	for _, opt := range opts {
		opt(w)
	}
	ln, err := tls.Listen("tcp", listen, &tls.Config{
		MinVersion:            tls.VersionTLS12,
		GetCertificate:        func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return w.certificate() },
		ClientAuth:            tls.RequireAnyClientCert,
		VerifyPeerCertificate: w.verifyPeer,
	})
	if err != nil {
		return nil, err
	}
	w.listener = ln
	return w, nil
}

// Run runs the certificate source, serves mTLS and, with WithControl, the
// control endpoint, until ctx ends or one of them fails; it returns the
// reason of the failure, nil when ctx ended it. Traffic stops with it.
func (w *Workload) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { w.source.Run(ctx); return nil })
	g.Go(func() error { w.serve(); return nil })
	var control *http.Server
	if w.controlAddr != "" {
		control = &http.Server{Addr: w.controlAddr, Handler: w.Handler(), ReadHeaderTimeout: 5 * time.Second}
		g.Go(func() error {
			if err := control.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("control endpoint on %s: %w", w.controlAddr, err)
			}
			return nil
		})
	}
	g.Go(func() error {
		<-ctx.Done()
		w.StopTraffic()
		_ = w.listener.Close()
		if control != nil {
			_ = control.Close()
		}
		return nil
	})
	return g.Wait()
}

// Start serves mTLS on a free loopback port until ctx ends.
func Start(ctx context.Context, name string, source Source, allowed []string) (*Workload, error) {
	return StartOn(ctx, "127.0.0.1:0", name, source, allowed)
}

// StartOn is New, then Run in the background until ctx ends.
func StartOn(ctx context.Context, listen, name string, source Source, allowed []string) (*Workload, error) {
	w, err := New(listen, name, source, allowed)
	if err != nil {
		return nil, err
	}
	w.Background = lifecycle.Go(ctx, w.Run)
	return w, nil
}

// Addr is where the workload serves.
func (w *Workload) Addr() string { return w.listener.Addr().String() }

func (w *Workload) certificate() (*tls.Certificate, error) {
	m := w.source.Current()
	if m == nil {
		return nil, fmt.Errorf("%s has no certificate yet: %s", w.Name, w.source.LastError())
	}
	return &m.Cert, nil
}

// verifyPeer checks the peer's chain against the workload's current roots
// and its SPIFFE ID against the allow-list.
func (w *Workload) verifyPeer(raw [][]byte, _ [][]*x509.Certificate) error {
	m := w.source.Current()
	if m == nil {
		return errors.New("no roots yet")
	}
	var chain []*x509.Certificate
	for _, r := range raw {
		c, err := x509.ParseCertificate(r)
		if err != nil {
			return err
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return errors.New("the peer sent no certificate")
	}
	if _, err := pki.Verify(chain, m.Roots, time.Now()); err != nil {
		return fmt.Errorf("peer certificate: %w", err)
	}
	if len(chain[0].URIs) != 1 {
		return errors.New("the peer certificate has no single SPIFFE ID")
	}
	id := chain[0].URIs[0].String()
	if len(w.allowed) > 0 && !slices.Contains(w.allowed, id) {
		return fmt.Errorf("peer %s is not allowed (allowed: %v)", id, w.allowed)
	}
	w.mu.Lock()
	w.peers[id] = true
	w.mu.Unlock()
	return nil
}

func (w *Workload) serve() {
	for {
		conn, err := w.listener.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			line, err := bufio.NewReader(conn).ReadString('\n')
			if err != nil {
				return
			}
			m := w.source.Current()
			_, _ = fmt.Fprintf(conn, "hello %s from %s\n", line[:len(line)-1], m.Identity())
		}()
	}
}

// Call opens an mTLS connection to addr, checks the peer, and exchanges a
// line. It returns the peer's SPIFFE ID.
func (w *Workload) Call(ctx context.Context, addr string) (string, error) {
	peer, err := w.call(ctx, addr)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil && ctx.Err() != nil {
		// Abandoned by the caller (traffic stopping): neither success nor
		// failure of the mesh.
		return "", err
	}
	if err != nil {
		w.failed.Add(1)
		w.lastCall = err.Error()
		return "", err
	}
	w.ok.Add(1)
	return peer, nil
}

func (w *Workload) call(ctx context.Context, addr string) (string, error) {
	var peer string
	dialer := &tls.Dialer{Config: &tls.Config{
		MinVersion:           tls.VersionTLS12,
		InsecureSkipVerify:   true, // verified below, against SPIFFE rules rather than host names
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return w.certificate() },
		VerifyPeerCertificate: func(raw [][]byte, chains [][]*x509.Certificate) error {
			if err := w.verifyPeer(raw, chains); err != nil {
				return err
			}
			c, _ := x509.ParseCertificate(raw[0])
			peer = c.URIs[0].String()
			return nil
		},
	}}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(conn, "%s\n", w.Name); err != nil {
		return "", err
	}
	if _, err := bufio.NewReader(conn).ReadString('\n'); err != nil {
		return "", fmt.Errorf("the peer closed the connection: %w", err)
	}
	return peer, nil
}

// StartTraffic calls addr every interval until StopTraffic. It replaces
// traffic that is already running.
func (w *Workload) StartTraffic(addr string, interval time.Duration) {
	w.StopTraffic()
	ctx, cancel := context.WithCancel(context.Background())
	w.mu.Lock()
	w.traffic = cancel
	w.mu.Unlock()
	w.trafficW.Add(1)
	go func() {
		defer w.trafficW.Done()
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
				_, _ = w.Call(ctx, addr)
			}
		}
	}()
}

// StopTraffic stops the calls StartTraffic began.
func (w *Workload) StopTraffic() {
	w.mu.Lock()
	cancel := w.traffic
	w.traffic = nil
	w.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	w.trafficW.Wait()
}

// Status reports the workload's state.
func (w *Workload) Status() Status {
	s := Status{Name: w.Name, LastError: w.source.LastError(), CallsOK: w.ok.Load(), CallsFailed: w.failed.Load(), Address: w.Addr()}
	if counter, ok := w.source.(interface{ Certificates() int }); ok {
		s.Certificates = counter.Certificates()
	}
	if m := w.source.Current(); m != nil {
		s.Identity, s.Serial, s.NotAfter, s.Path = m.Identity(), pki.Serial(m.Leaf), m.Leaf.NotAfter, m.Path
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	s.LastCallErr = w.lastCall
	for p := range w.peers {
		s.PeersSeen = append(s.PeersSeen, p)
	}
	slices.Sort(s.PeersSeen)
	return s
}
