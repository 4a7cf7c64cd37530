// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/utils/clock"

	"github.com/meshcert/kubectl-meshcert/core/caclient"
	"github.com/meshcert/kubectl-meshcert/core/monitoring"
	"github.com/meshcert/kubectl-meshcert/core/pki"
)

// servedCert is one key and certificate chain the agent serves. It is
// immutable; a rotation replaces it whole.
type servedCert struct {
	key      crypto.Signer
	keyPEM   []byte
	chain    []*x509.Certificate // leaf first, root last
	chainPEM []byte              // leaf and intermediates, as Envoy wants them
	version  string
	rotateAt time.Time
	// sds caches the encoded SDS resource, shared by every stream.
	sds atomic.Pointer[encodedResource]
}

func (c *servedCert) leaf() *x509.Certificate { return c.chain[0] }

// waker is told that something it serves changed.
type waker interface{ wake() }

// broadcaster wakes subscribers when something they serve changed. Waking
// must not block: a subscriber does its work elsewhere.
type broadcaster struct {
	mu   sync.Mutex
	subs map[waker]struct{}
}

func (b *broadcaster) subscribe(w waker) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.subs == nil {
		b.subs = map[waker]struct{}{}
	}
	b.subs[w] = struct{}{}
}

func (b *broadcaster) unsubscribe(w waker) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.subs, w)
}

func (b *broadcaster) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

func (b *broadcaster) notify() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for w := range b.subs {
		w.wake()
	}
}

// versions numbers every resource version the agent hands out, so that each
// push carries a fresh one.
var versions atomic.Uint64

func nextVersion(now time.Time) string {
	return strconv.FormatUint(versions.Add(1), 10) + "-" + strconv.FormatInt(now.Unix(), 10)
}

// identityEntry holds the certificate of one workload identity and the
// streams that serve it.
type identityEntry struct {
	broadcaster
	id    string
	cache *secretCache

	// issue serialises CSRs for this identity.
	issue sync.Mutex
	cert  atomic.Pointer[servedCert]
	// haveCert is closed when the first certificate arrives.
	haveCert chan struct{}

	tokensMu sync.Mutex
	// verified holds the hashes of tokens the CA has accepted for this
	// identity, with their expiry; a stream whose token is here is served
	// from the cache without another CSR.
	verified map[[sha256.Size]byte]time.Time
	// freshest is the accepted token that expires last; renewals try it
	// after the tokens of the live streams.
	freshest    string
	freshestExp time.Time
	idleSince   time.Time
	// holders are the live node-mode streams served this identity; each
	// presented a token of its own, and renewals try them all.
	holders map[*streamState]struct{}

	// A timer, not a goroutine, waits for the rotation time: an idle
	// identity costs no stack. renewing is set while a renewal runs.
	timerMu   sync.Mutex
	timer     clock.Timer
	renewing  atomic.Bool
	stopped   bool // guarded by cache.mu
	rotateNow chan struct{}
	stop      chan struct{}
}

// tokenReverifyAfter bounds how long a token the CA accepted is trusted
// without asking the CA again.
const tokenReverifyAfter = time.Minute

// secretCache keeps one key and certificate per identity, renews them
// before they expire, and never withdraws a valid one.
type secretCache struct {
	cfg     *Config
	ca      caclient.Client
	roots   *rootBundle
	metrics *metrics
	log     *slog.Logger

	// onInstall, when set, hears of every certificate installed.
	onInstall func(id string)

	mu      sync.Mutex
	entries map[string]*identityEntry
	// creating holds, per identity whose first certificate is being asked
	// for, a channel closed when that attempt ends: streams of the same
	// identity that arrive meanwhile wait for it rather than each making a
	// key and a CSR of its own, only to discard them.
	creating map[string]chan struct{}
	wg       sync.WaitGroup
}

func newSecretCache(cfg *Config, ca caclient.Client, roots *rootBundle, m *metrics, log *slog.Logger) *secretCache {
	return &secretCache{cfg: cfg, ca: ca, roots: roots, metrics: m, log: log, entries: map[string]*identityEntry{},
		creating: map[string]chan struct{}{}}
}

// entry returns the entry for id, creating it and its renewal loop.
func (c *secretCache) entry(id string) *identityEntry {
	e, _ := c.adopt(c.newEntry(id))
	return e
}

// newEntry makes an entry for id that the cache does not hold yet: a
// stream's first token is checked with it, and only once the CA has
// accepted that token is it adopted, so that tokens the CA refuses leave
// neither an entry nor a key behind.
func (c *secretCache) newEntry(id string) *identityEntry {
	return &identityEntry{
		id: id, cache: c, haveCert: make(chan struct{}),
		verified: map[[sha256.Size]byte]time.Time{}, holders: map[*streamState]struct{}{}, rotateNow: make(chan struct{}, 1), stop: make(chan struct{}),
		idleSince: c.cfg.Clock.Now(),
	}
}

// adopt adds e to the cache, unless the cache holds an entry for its
// identity already: then it returns that one and false.
func (c *secretCache) adopt(e *identityEntry) (*identityEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if held, ok := c.entries[e.id]; ok {
		return held, false
	}
	c.entries[e.id] = e
	c.metrics.identities.Set(float64(len(c.entries)))
	return e, true
}

// discard stops an entry the cache did not adopt.
func (c *secretCache) discard(e *identityEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.stopRenewals()
}

// full reports whether the cache holds --max-identities identities.
func (c *secretCache) full() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg.MaxIdentities > 0 && len(c.entries) >= c.cfg.MaxIdentities
}

// lookup returns the entry for id without creating it.
func (c *secretCache) lookup(id string) *identityEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries[id]
}

// lookupOrCreate returns the entry for id; or, when there is none and no
// other caller is creating it, nil and done, which the caller must call
// once it has adopted an entry or given up; or, when another caller is
// creating it, waits for that attempt to end and looks again.
func (c *secretCache) lookupOrCreate(ctx context.Context, id string) (*identityEntry, func(), error) {
	for {
		c.mu.Lock()
		if e := c.entries[id]; e != nil {
			c.mu.Unlock()
			return e, nil, nil
		}
		wait, busy := c.creating[id]
		if !busy {
			ch := make(chan struct{})
			c.creating[id] = ch
			c.mu.Unlock()
			return nil, func() {
				c.mu.Lock()
				defer c.mu.Unlock()
				delete(c.creating, id)
				close(ch)
			}, nil
		}
		c.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, nil, status.FromContextError(ctx.Err()).Err()
		}
	}
}

// admit makes sure the CA has accepted token for this identity and that a
// certificate exists. A token seen before costs nothing; a new one costs one
// CSR, signed with the current key when there is one, so that the CA checks
// it without the certificate changing under other streams.
func (e *identityEntry) admit(ctx context.Context, token string, exp time.Time) error {
	sum := sha256.Sum256([]byte(token))
	if e.isVerified(sum) && e.cert.Load() != nil {
		return nil
	}
	e.issue.Lock()
	defer e.issue.Unlock()
	if e.isVerified(sum) && e.cert.Load() != nil {
		return nil
	}
	current := e.cert.Load()
	var key crypto.Signer
	if current != nil {
		key = current.key
	}
	issued, err := e.request(ctx, token, key)
	if err != nil {
		return err
	}
	if current == nil {
		e.install(issued)
	}
	e.remember(sum, token, exp)
	return nil
}

func (e *identityEntry) isVerified(sum [sha256.Size]byte) bool {
	e.tokensMu.Lock()
	defer e.tokensMu.Unlock()
	exp, ok := e.verified[sum]
	return ok && (exp.IsZero() || e.cache.cfg.Clock.Now().Before(exp))
}

func (e *identityEntry) remember(sum [sha256.Size]byte, token string, exp time.Time) {
	e.tokensMu.Lock()
	defer e.tokensMu.Unlock()
	now := e.cache.cfg.Clock.Now()
	for k, v := range e.verified {
		if !v.IsZero() && !now.Before(v) {
			delete(e.verified, k)
		}
	}
	// A token is trusted from the cache for a minute at most, so that a
	// deleted pod's token stops opening new streams soon after the API
	// server stops accepting it.
	until := now.Add(tokenReverifyAfter)
	if !exp.IsZero() && exp.Before(until) {
		until = exp
	}
	e.verified[sum] = until
	if e.freshest == "" || exp.After(e.freshestExp) {
		e.freshest, e.freshestExp = token, exp
	}
}

// hold records st, a live stream served this identity, with its token.
func (e *identityEntry) hold(st *streamState) {
	e.tokensMu.Lock()
	defer e.tokensMu.Unlock()
	e.holders[st] = struct{}{}
}

// release forgets st, once it has ended.
func (e *identityEntry) release(st *streamState) {
	e.tokensMu.Lock()
	defer e.tokensMu.Unlock()
	delete(e.holders, st)
}

// renewalTokens are the tokens a renewal may present, in the order to try
// them: the token file's current content in sidecar mode; else each live
// stream's unexpired token, the longest-lived first, then the freshest
// token any stream brought.
func (e *identityEntry) renewalTokens() ([]string, error) {
	now := e.cache.cfg.Clock.Now()
	if e.cache.cfg.TokenFile != "" {
		tok, _, err := readTokenFile(e.cache.cfg.TokenFile, now)
		return []string{tok}, err
	}
	e.tokensMu.Lock()
	defer e.tokensMu.Unlock()
	expiry := map[string]time.Time{}
	for st := range e.holders {
		if now.Before(st.tokenExpiry) {
			expiry[st.token] = st.tokenExpiry
		}
	}
	if e.freshest != "" && now.Before(e.freshestExp) {
		expiry[e.freshest] = e.freshestExp
	}
	if len(expiry) == 0 {
		if e.freshest == "" {
			return nil, errors.New("no workload has presented a token yet")
		}
		return nil, fmt.Errorf("every token presented for %s has expired (the freshest at %s): the certificate renews when a workload reconnects with a fresh token", e.id, e.freshestExp.Format(time.RFC3339))
	}
	tokens := slices.Collect(maps.Keys(expiry))
	slices.SortFunc(tokens, func(a, b string) int { return expiry[b].Compare(expiry[a]) })
	return tokens, nil
}

// refused forgets token, which the CA refused with err, and ends every
// stream that presented it, so that no key is pushed to them and Envoy
// reconnects with its refreshed token.
func (e *identityEntry) refused(token string, err error) {
	sum := sha256.Sum256([]byte(token))
	e.tokensMu.Lock()
	delete(e.verified, sum)
	if e.freshest == token {
		e.freshest, e.freshestExp = "", time.Time{}
	}
	var ending []*streamState
	for st := range e.holders {
		if st.token == token {
			ending = append(ending, st)
		}
	}
	e.tokensMu.Unlock()
	reason := status.Errorf(codes.Unauthenticated,
		"the CA refused the stream's token when renewing %s (%s): reconnect with the workload's refreshed token (Envoy does so by itself)",
		e.id, monitoring.BoundedField(status.Convert(err).Message()))
	for _, st := range ending {
		st.end(reason, e.cache.metrics.refusedStreams)
	}
}

// refusesToken reports whether a CA answer refuses the token presented,
// rather than failing for a reason another try could get past.
func refusesToken(code codes.Code) bool {
	return code == codes.Unauthenticated || code == codes.PermissionDenied
}

// request sends one CSR, with key or with a new key when key is nil, and
// retries what is worth retrying until ctx ends.
func (e *identityEntry) request(ctx context.Context, token string, key crypto.Signer) (*servedCert, error) {
	cfg := e.cache.cfg
	if key == nil {
		var err error
		if key, err = pki.GenerateKey(cfg.KeyAlgorithm); err != nil {
			return nil, err
		}
	}
	csr, err := pki.NewCSR(key, spiffeURL(e.id))
	if err != nil {
		return nil, err
	}
	delay := cfg.RetryBase
	for attempt := 1; ; attempt++ {
		requested := cfg.Clock.Now()
		chain, err := e.cache.ca.CreateCertificate(ctx, token, csr, cfg.WorkloadCertTTL)
		if err == nil {
			return e.cache.newServedCert(e.id, key, chain, requested)
		}
		code := status.Code(err)
		e.cache.metrics.caErrors.WithLabelValues(code.String()).Inc()
		if !retriable(code) || ctx.Err() != nil {
			return nil, err
		}
		wait := delay
		asked, askedOK := retryDelay(err)
		if askedOK {
			wait = min(asked, e.longestWait())
		}
		e.cache.log.Warn("CA request failed; retrying", "identity", e.id, "attempt", attempt, "retryIn", wait, "error", status.Convert(err).Message())
		select {
		case <-ctx.Done():
			return nil, err
		case <-e.cache.cfg.Clock.After(jittered(wait)):
		}
		if !askedOK {
			delay = e.nextDelay(delay)
		}
	}
}

// retryDelay is how long the CA asked the caller to wait before trying
// again (google.rpc.RetryInfo), when it did: meshcert's CA does when it
// refuses a call for want of capacity, spacing a mass start's retries at
// the rate it serves them.
func retryDelay(err error) (time.Duration, bool) {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.RetryInfo); ok && info.GetRetryDelay().IsValid() {
			return max(info.GetRetryDelay().AsDuration(), 0), true
		}
	}
	return 0, false
}

// nextDelay doubles a retry delay up to --ca-retry-max. While a certificate
// is served, it also retries at least ten times within what is left of that
// certificate's lifetime, so that a CA that returns before expiry is met
// before expiry.
func (e *identityEntry) nextDelay(delay time.Duration) time.Duration {
	return max(min(delay*2, e.longestWait()), e.cache.cfg.RetryBase)
}

// longestWait is the longest the entry waits between two CA requests:
// --ca-retry-max, and a tenth of what is left of the served certificate.
func (e *identityEntry) longestWait() time.Duration {
	cfg := e.cache.cfg
	if served := e.cert.Load(); served != nil {
		return min(cfg.RetryMax, served.leaf().NotAfter.Sub(cfg.Clock.Now())/10)
	}
	return cfg.RetryMax
}

func retriable(code codes.Code) bool {
	switch code {
	case codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded, codes.Aborted, codes.Internal, codes.Unknown:
		return true
	}
	return false
}

// jittered spreads retries by ±20 % so that agents do not retry in step.
func jittered(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// newServedCert wraps a fresh chain. Its rotation time counts the lifetime
// from when it was requested: the CA backdates not-before to absorb clock
// skew, and counting from there would renew short-lived certificates at once.
func (c *secretCache) newServedCert(id string, key crypto.Signer, chain []*x509.Certificate, requested time.Time) (*servedCert, error) {
	keyPEM, err := pki.EncodePrivateKey(key)
	if err != nil {
		return nil, err
	}
	now := c.cfg.Clock.Now()
	if err := checkAnswer(chain, id, key, c.roots.fileRoots(), now); err != nil {
		return nil, err
	}
	leaf := chain[0]
	return &servedCert{
		key: key, keyPEM: keyPEM, chain: chain,
		chainPEM: pki.EncodeCertificates(chain[:len(chain)-1]...),
		version:  nextVersion(now),
		rotateAt: c.cfg.Rotation.Time(later(leaf.NotBefore, requested), leaf.NotAfter),
	}, nil
}

// checkAnswer accepts a CA's answer only when it is for what was asked: a
// leaf whose one URI SAN is id and whose key is key, chaining to a root of
// the bundle file. Anything else is refused and the request retried.
func checkAnswer(chain []*x509.Certificate, id string, key crypto.Signer, roots []*x509.Certificate, now time.Time) error {
	leaf := chain[0]
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != id {
		return fmt.Errorf("the CA answered with a certificate for %v, not for %s: refusing it", leaf.URIs, id)
	}
	if !pki.KeyMatches(key, leaf.PublicKey) {
		return fmt.Errorf("the CA answered with a certificate for another key than the one the agent made for %s: refusing it", id)
	}
	if _, err := pki.Verify(chain[:len(chain)-1], roots, now); err != nil {
		return fmt.Errorf("the CA's answer for %s does not chain to the root bundle file (--ca-root-file): %w", id, err)
	}
	return nil
}

// install makes cert the one served, and wakes every stream of the identity.
func (e *identityEntry) install(cert *servedCert) {
	first := e.cert.Swap(cert) == nil
	if first {
		close(e.haveCert)
	}
	m := e.cache.metrics
	m.certExpiry.WithLabelValues(e.id).Set(float64(cert.leaf().NotAfter.Unix()))
	m.rotationDue.WithLabelValues(e.id).Set(float64(cert.rotateAt.Unix()))
	e.schedule()
	e.notify()
	if e.cache.onInstall != nil {
		e.cache.onInstall(e.id)
	}
	e.cache.log.Info("serving certificate", "identity", e.id, "serial", pki.Serial(cert.leaf()),
		"notAfter", cert.leaf().NotAfter, "rotateAt", cert.rotateAt, "first", first)
}

// schedule arms the renewal of the certificate now served.
func (e *identityEntry) schedule() {
	cert := e.cert.Load()
	e.timerMu.Lock()
	defer e.timerMu.Unlock()
	if e.timer != nil {
		e.timer.Stop()
	}
	e.timer = e.cache.cfg.Clock.AfterFunc(cert.rotateAt.Sub(e.cache.cfg.Clock.Now()), e.startRenewal)
}

// startRenewal runs one renewal in the background unless one is running.
func (e *identityEntry) startRenewal() {
	c := e.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.stopped || !e.renewing.CompareAndSwap(false, true) {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer e.renewing.Store(false)
		e.renew()
	}()
}

func (e *identityEntry) stopRenewals() {
	e.stopped = true
	close(e.stop)
	e.timerMu.Lock()
	if e.timer != nil {
		e.timer.Stop()
	}
	e.timerMu.Unlock()
}

// renew replaces the certificate, retrying until it succeeds or the agent
// stops. The old certificate stays served all the while.
func (e *identityEntry) renew() {
	cfg := e.cache.cfg
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-e.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	select {
	case <-e.rotateNow: // a request this renewal already answers
	default:
	}
	delay := cfg.RetryBase
	for ctx.Err() == nil {
		tokens, err := e.renewalTokens()
		if err == nil {
			err = e.renewWith(ctx, tokens)
			if err == nil {
				return
			}
		}
		e.cache.metrics.renewalFails.Inc()
		e.cache.log.Warn("renewal failed; the current certificate stays served", "identity", e.id,
			"notAfter", e.cert.Load().leaf().NotAfter, "retryIn", delay, "error", status.Convert(err).Message())
		select {
		case <-ctx.Done():
		case <-e.rotateNow:
			delay = cfg.RetryBase
		case <-e.cache.cfg.Clock.After(jittered(delay)):
		}
		delay = e.nextDelay(delay)
	}
}

// renewWith renews the certificate with a new key, presenting each of
// tokens in turn until the CA accepts one. Streams whose token the CA
// refuses end.
func (e *identityEntry) renewWith(ctx context.Context, tokens []string) error {
	key, err := pki.GenerateKey(e.cache.cfg.KeyAlgorithm)
	if err != nil {
		return err
	}
	e.issue.Lock()
	defer e.issue.Unlock()
	for _, token := range tokens {
		issued, err := e.request(ctx, token, key)
		if err == nil {
			// Counted before install pushes the certificate, as its
			// expiry gauges are, so that whoever sees the push sees the count.
			e.cache.metrics.rotations.Inc()
			e.install(issued)
			return nil
		}
		if !refusesToken(status.Code(err)) {
			return err
		}
		e.refused(token, err)
	}
	return fmt.Errorf("the CA refused all %d tokens the workloads of %s presented: the certificate renews when a workload reconnects with a fresh token", len(tokens), e.id)
}

// requestRotation asks the entry to renew now, as `kubectl meshcert rotate
// pod` does. A renewal already waiting to retry retries at once.
func (e *identityEntry) requestRotation() {
	if e.cert.Load() == nil {
		return
	}
	select {
	case e.rotateNow <- struct{}{}:
	default:
	}
	e.startRenewal()
}

// evictIdle drops identities that no stream has used for idleAfter and whose
// certificate has expired: nothing valid is ever withdrawn.
func (c *secretCache) evictIdle(idleAfter time.Duration) int {
	now := c.cfg.Clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	evicted := 0
	for id, e := range c.entries {
		if e.count() > 0 {
			e.tokensMu.Lock()
			e.idleSince = now
			e.tokensMu.Unlock()
			continue
		}
		e.tokensMu.Lock()
		idle := now.Sub(e.idleSince)
		e.tokensMu.Unlock()
		cert := e.cert.Load()
		expired := cert == nil || !now.Before(cert.leaf().NotAfter)
		if idle >= idleAfter && expired {
			e.stopRenewals()
			delete(c.entries, id)
			c.metrics.certExpiry.DeleteLabelValues(id)
			c.metrics.rotationDue.DeleteLabelValues(id)
			evicted++
		}
	}
	c.metrics.identities.Set(float64(len(c.entries)))
	return evicted
}

func (c *secretCache) close() {
	c.mu.Lock()
	for id, e := range c.entries {
		e.stopRenewals()
		delete(c.entries, id)
	}
	c.mu.Unlock()
	c.wg.Wait()
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
