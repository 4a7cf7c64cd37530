// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"

	"google.golang.org/grpc/status"

	"github.com/meshcert/kubectl-meshcert/core/mesh"
	"github.com/meshcert/kubectl-meshcert/core/pki"
)

// fileSource serves the key and certificate of a mounted Secret. The kubelet
// updates such a mount by swapping a ..data symlink, so the files are
// polled by content rather than watched by inode: a swap is seen however
// it is made. A pair that is half-written, mismatched or does not verify
// is refused, and the last good one stays served.
type fileSource struct {
	broadcaster
	cfg     *Config
	roots   *rootBundle
	metrics *metrics
	log     *slog.Logger

	cert     atomic.Pointer[servedCert]
	haveCert chan struct{}
	// loaded and refused hash the last file contents served and refused.
	loaded, refused [sha256.Size]byte
	id              atomic.Value // string
}

func newFileSource(cfg *Config, roots *rootBundle, m *metrics, log *slog.Logger) *fileSource {
	f := &fileSource{cfg: cfg, roots: roots, metrics: m, log: log, haveCert: make(chan struct{})}
	f.id.Store("")
	return f
}

func (f *fileSource) current() *servedCert { return f.cert.Load() }
func (f *fileSource) name() string         { return f.id.Load().(string) }
func (f *fileSource) waitReady(ctx context.Context) error {
	select {
	case <-f.haveCert:
		return nil
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}

// load reads the files and serves them if they changed and hold together.
func (f *fileSource) load() error {
	var raw [3][]byte
	for i, name := range []string{mesh.FilePrivateKey, mesh.FileCertChain, mesh.FileRootCert} {
		data, err := os.ReadFile(filepath.Join(f.cfg.CertDir, name))
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		raw[i] = data
	}
	sum := sha256.Sum256(bytes.Join(raw[:], []byte{0}))
	if sum == f.loaded {
		return nil
	}
	cert, roots, err := f.parse(raw)
	if err != nil {
		if sum != f.refused {
			f.refused = sum
			f.metrics.fileLoads.WithLabelValues("refused").Inc()
		}
		return err
	}
	f.loaded = sum
	f.roots.setFileRoots(roots)
	if len(cert.leaf().URIs) > 0 {
		f.id.Store(cert.leaf().URIs[0].String())
	}
	if f.cert.Swap(cert) == nil {
		close(f.haveCert)
	}
	f.metrics.fileLoads.WithLabelValues("loaded").Inc()
	f.metrics.certExpiry.WithLabelValues(f.name()).Set(float64(cert.leaf().NotAfter.Unix()))
	f.notify()
	f.log.Info("serving mounted certificate", "dir", f.cfg.CertDir, "identity", f.name(), "serial", pki.Serial(cert.leaf()), "notAfter", cert.leaf().NotAfter)
	return nil
}

func (f *fileSource) parse(raw [3][]byte) (*servedCert, []*x509.Certificate, error) {
	key, err := pki.DecodePrivateKey(raw[0])
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", mesh.FilePrivateKey, err)
	}
	chain, err := pki.DecodeCertificates(raw[1])
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", mesh.FileCertChain, err)
	}
	roots, err := pki.DecodeCertificates(raw[2])
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", mesh.FileRootCert, err)
	}
	if !pki.KeyMatches(key, chain[0].PublicKey) {
		return nil, nil, fmt.Errorf("%s does not belong to the certificate in %s (a write in progress, or a mismatched Secret)", mesh.FilePrivateKey, mesh.FileCertChain)
	}
	root, err := pki.Verify(chain, roots, f.cfg.Clock.Now())
	if err != nil {
		return nil, nil, fmt.Errorf("%s does not verify against %s: %w", mesh.FileCertChain, mesh.FileRootCert, err)
	}
	var withoutRoot []*x509.Certificate
	for _, c := range chain {
		if !c.Equal(root) {
			withoutRoot = append(withoutRoot, c)
		}
	}
	leaf := chain[0]
	return &servedCert{
		key: key, keyPEM: raw[0],
		chain:    append(withoutRoot, root),
		chainPEM: pki.EncodeCertificates(withoutRoot...),
		version:  nextVersion(f.cfg.Clock.Now()),
		rotateAt: f.cfg.Rotation.Time(leaf.NotBefore, leaf.NotAfter),
	}, roots, nil
}

// watch polls the files until ctx ends.
func (f *fileSource) watch(ctx context.Context) {
	var lastErr string
	every(ctx, f.cfg.Clock, f.cfg.FilePollInterval, func() {
		err := f.load()
		if err != nil && err.Error() != lastErr {
			f.log.Warn("the mounted certificate files are not usable; the last good pair stays served", "dir", f.cfg.CertDir, "error", err)
		}
		lastErr = ""
		if err != nil {
			lastErr = err.Error()
		}
	})
}
