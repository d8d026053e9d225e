package identity

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// Limits bound everything the pool reads from issuers and clients.
type Limits struct {
	// MaxTokenBytes bounds an identity token.
	MaxTokenBytes int
	// MaxResponseBytes bounds a discovery document or JWKS.
	MaxResponseBytes int64
	// HTTPTimeout bounds one request to an issuer.
	HTTPTimeout time.Duration
	// JWKSCooldown is the least time between two JWKS fetches of one issuer,
	// so tokens with made-up key IDs cannot make us hammer it.
	JWKSCooldown time.Duration
	// DiscoveryFailureTTL is how long a failed discovery of a concrete issuer
	// is remembered: tokens naming it meanwhile are refused without
	// contacting it again, so a dead tenant of a wildcard cannot be made to
	// cost an outbound request per token.
	DiscoveryFailureTTL time.Duration
	// MaxWildcardIssuers bounds, per wildcard pattern and each on its own,
	// the concrete issuers cached, the failed discoveries remembered and the
	// discoveries in flight.
	MaxWildcardIssuers int
}

// DefaultLimits are documented in docs/configuration.md.
var DefaultLimits = Limits{MaxTokenBytes: 16 << 10, MaxResponseBytes: 1 << 20, HTTPTimeout: 10 * time.Second, JWKSCooldown: 30 * time.Second, DiscoveryFailureTTL: 30 * time.Second, MaxWildcardIssuers: 100}

// withDefaults fills each zero (or negative) limit from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.MaxTokenBytes <= 0 {
		l.MaxTokenBytes = d.MaxTokenBytes
	}
	if l.MaxResponseBytes <= 0 {
		l.MaxResponseBytes = d.MaxResponseBytes
	}
	if l.HTTPTimeout <= 0 {
		l.HTTPTimeout = d.HTTPTimeout
	}
	if l.JWKSCooldown <= 0 {
		l.JWKSCooldown = d.JWKSCooldown
	}
	if l.DiscoveryFailureTTL <= 0 {
		l.DiscoveryFailureTTL = d.DiscoveryFailureTTL
	}
	if l.MaxWildcardIssuers <= 0 {
		l.MaxWildcardIssuers = d.MaxWildcardIssuers
	}
	return l
}

// signingAlgs are the JWS algorithms accepted on tokens ("none" never is).
var signingAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512, jose.ES256, jose.ES384, jose.ES512, jose.EdDSA}

// Pool is the set of trusted issuers.
type Pool struct {
	issuers   []*issuer
	providers map[string]CIProvider
	limits    Limits
	now       func() time.Time
	logger    *slog.Logger

	// verified remembers tokens that passed verification, by SHA-256 of the
	// token, until they expire: a CI job that asks for several certificates
	// with one token pays for its signature check once.
	mu       sync.Mutex
	verified map[[32]byte]verifiedToken
}

type verifiedToken struct {
	principal *Principal
	expiry    time.Time
}

// maxVerifiedTokens bounds the verified-token cache.
const maxVerifiedTokens = 10000

type issuer struct {
	cfg     IssuerConfig
	pattern *regexp.Regexp
	client  *http.Client

	// mu guards the maps and the counter below and is never held across
	// network I/O: a token for an issuer already discovered never waits for
	// the discovery of another (or of the same) issuer.
	mu sync.Mutex
	// verifiers are the issuers discovered, by concrete issuer URL.
	verifiers map[string]*cachedVerifier
	// failures says, by concrete issuer URL, until when a failed discovery
	// stands: tokens naming that issuer are refused without contacting it.
	failures map[string]time.Time
	// discovering holds the discovery in flight per concrete issuer URL, so
	// that concurrent tokens naming one issuer share one discovery.
	discovering map[string]*flight[*oidc.IDTokenVerifier]
	// uses stamps cachedVerifier.lastUse: it counts cache hits and fills.
	uses uint64
}

type cachedVerifier struct {
	v       *oidc.IDTokenVerifier
	lastUse uint64 // issuer.uses when last used; the least recently used is evicted first
}

// flight is one fetch whose result every caller that wants it shares. val
// and err are written once, before done is closed, and read only after it
// is. The fetch runs detached from the callers' contexts: a caller that
// leaves stops only its own wait.
type flight[T any] struct {
	done chan struct{}
	val  T
	err  error
	// waiters counts the callers that joined (tests read it to know that
	// concurrent callers share the flight); guarded by the lock of the map
	// that holds the flight.
	waiters int
}

func newFlight[T any]() *flight[T] { return &flight[T]{done: make(chan struct{})} }

// Options adjust a pool; zero values take defaults.
type Options struct {
	Limits Limits
	// Now is the clock tokens are checked against.
	Now func() time.Time
	// LocalKeySets verifies the named exact issuers with these keys instead
	// of discovery (the dev issuer served by this same process).
	LocalKeySets map[string]oidc.KeySet
	// Logger receives the causes of failed discoveries and JWKS fetches,
	// which clients are never told (a 401 must not be an oracle on the
	// server's network); default slog.Default().
	Logger *slog.Logger
}

// NewPool validates the configuration. Issuers are contacted lazily, on the
// first token each one presents, so an issuer that is down does not stop
// start-up.
func NewPool(cfgs []IssuerConfig, custom map[string]CIProvider, opts Options) (*Pool, error) {
	limits := opts.Limits.withDefaults()
	providers := Presets()
	for k, v := range custom {
		providers[k] = v
	}
	p := &Pool{providers: providers, limits: limits, now: opts.Now, logger: opts.Logger, verified: map[[32]byte]verifiedToken{}}
	if p.now == nil {
		p.now = time.Now
	}
	if p.logger == nil {
		p.logger = slog.Default()
	}
	seen := map[string]bool{}
	for _, c := range cfgs {
		c := c
		if err := c.validate(providers); err != nil {
			return nil, err
		}
		key := c.URL + "|" + c.WildcardURL
		if seen[key] {
			return nil, fmt.Errorf("issuer %s%s is configured twice", c.URL, c.WildcardURL)
		}
		seen[key] = true
		is := &issuer{cfg: c, verifiers: map[string]*cachedVerifier{}, failures: map[string]time.Time{}, discovering: map[string]*flight[*oidc.IDTokenVerifier]{}}
		if c.WildcardURL != "" {
			re, err := wildcardPattern(c.WildcardURL)
			if err != nil {
				return nil, fmt.Errorf("issuer %s: %w", c.WildcardURL, err)
			}
			is.pattern = re
		}
		if ks, ok := opts.LocalKeySets[c.URL]; ok && c.URL != "" {
			// Nothing to discover: the verifier is cached from the start
			// and, the issuer being exact, never evicted.
			is.verifiers[c.URL] = &cachedVerifier{v: oidc.NewVerifier(c.URL, ks, &oidc.Config{ClientID: c.ClientID, Now: p.now})}
		}
		client, err := issuerClient(c, limits)
		if err != nil {
			return nil, err
		}
		is.client = client
		p.issuers = append(p.issuers, is)
	}
	return p, nil
}

// Issuers returns the configured issuers (for /api/v2/configuration).
func (p *Pool) Issuers() []IssuerConfig {
	out := make([]IssuerConfig, len(p.issuers))
	for i, is := range p.issuers {
		out[i] = is.cfg
	}
	return out
}

// issuerClient makes the HTTP client used for one issuer: bounded in time
// and size, its own CA bundle if configured, never following a redirect to
// another host.
func issuerClient(c IssuerConfig, limits Limits) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if c.CACert != "" {
		pemBytes, err := os.ReadFile(c.CACert)
		if err != nil {
			return nil, fmt.Errorf("issuer %s%s: reading ca_cert: %w", c.URL, c.WildcardURL, err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("issuer %s%s: ca_cert %s holds no PEM certificate", c.URL, c.WildcardURL, c.CACert)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{
		Timeout:   limits.HTTPTimeout,
		Transport: &boundedTransport{next: tr, limit: limits.MaxResponseBytes},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("too many redirects")
			}
			if req.URL.Host != via[0].URL.Host || req.URL.Scheme != via[0].URL.Scheme {
				return fmt.Errorf("refusing redirect from %s to another host %s", via[0].URL.Host, req.URL.Host)
			}
			return nil
		},
	}, nil
}

type boundedTransport struct {
	next  http.RoundTripper
	limit int64
}

func (t *boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > t.limit {
		resp.Body.Close()
		return nil, fmt.Errorf("response from %s is %d bytes, more than the %d allowed", req.URL.Host, resp.ContentLength, t.limit)
	}
	resp.Body = &limitedBody{rc: resp.Body, left: t.limit, host: req.URL.Host}
	return resp, nil
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
	host string
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		if n, _ := b.rc.Read(one[:]); n > 0 {
			return 0, fmt.Errorf("response from %s is larger than allowed", b.host)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// unverifiedIssuer reads iss from a token without trusting it, only to pick
// the issuer that will verify it.
func (p *Pool) unverifiedIssuer(token string) (string, error) {
	if len(token) > p.limits.MaxTokenBytes {
		return "", authErr("identity token is %d bytes, more than %d", len(token), p.limits.MaxTokenBytes)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", authErr("identity token is not a JWT (want header.payload.signature)")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", authErr("identity token payload is not base64url")
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if err := json.Unmarshal(payload, &c); err != nil || c.Iss == "" {
		return "", authErr("identity token has no iss claim")
	}
	return c.Iss, nil
}

// Authenticate verifies a token against the issuer it names and returns
// its principal. Errors are *AuthError with a message fit for the client.
func (p *Pool) Authenticate(ctx context.Context, token string) (*Principal, error) {
	key := sha256.Sum256([]byte(token))
	p.mu.Lock()
	v, ok := p.verified[key]
	p.mu.Unlock()
	if ok && p.now().Before(v.expiry) {
		return v.principal, nil
	}
	principal, expiry, err := p.authenticate(ctx, token)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if len(p.verified) >= maxVerifiedTokens {
		now := p.now()
		for k, v := range p.verified {
			if !now.Before(v.expiry) || len(p.verified) >= maxVerifiedTokens {
				delete(p.verified, k)
			}
		}
	}
	p.verified[key] = verifiedToken{principal: principal, expiry: expiry}
	p.mu.Unlock()
	return principal, nil
}

func (p *Pool) authenticate(ctx context.Context, token string) (*Principal, time.Time, error) {
	fail := func(err error) (*Principal, time.Time, error) { return nil, time.Time{}, err }
	iss, err := p.unverifiedIssuer(token)
	if err != nil {
		return fail(err)
	}
	is := p.match(iss)
	if is == nil {
		return fail(authErr("issuer %q is not configured on this CA", iss))
	}
	v, err := is.verifier(ctx, iss, p)
	if err != nil {
		return fail(err)
	}
	idt, err := v.Verify(ctx, token)
	if err != nil {
		if ctx.Err() != nil {
			// go-oidc flattens the key set's error to text: say here that
			// the client left or the deadline passed, not that the token is bad.
			return fail(fmt.Errorf("verifying a token from %s: %w", iss, ctx.Err()))
		}
		return fail(explain(err, iss, is.cfg.ClientID))
	}
	var raw json.RawMessage
	if err := idt.Claims(&raw); err != nil {
		return fail(authErr("reading token claims: %v", err))
	}
	c, err := decodeClaims(raw)
	if err != nil {
		return fail(err)
	}
	var prov *CIProvider
	if is.cfg.Type == TypeCIProvider {
		pr := p.providers[is.cfg.CIProvider]
		prov = &pr
	}
	principal, err := principalFor(&is.cfg, prov, c)
	if err != nil {
		return fail(err)
	}
	return principal, idt.Expiry, nil
}

func (p *Pool) match(iss string) *issuer {
	for _, is := range p.issuers {
		if is.cfg.URL != "" && is.cfg.URL == iss {
			return is
		}
	}
	for _, is := range p.issuers {
		if is.pattern != nil && is.pattern.MatchString(iss) {
			return is
		}
	}
	return nil
}

// explain turns go-oidc's errors into messages that say what was wrong.
// Outbound failures are named by issuer only: their causes are in the log.
func explain(err error, iss, clientID string) error {
	var expired *oidc.TokenExpiredError
	msg := err.Error()
	switch {
	case errors.As(err, &expired):
		return authErr("token expired at %s", expired.Expiry.UTC().Format(time.RFC3339))
	case strings.Contains(msg, "expected audience"):
		_, got, _ := strings.Cut(msg, " got ")
		return authErr("token audience %s not accepted: this CA requires %q", got, clientID)
	case strings.Contains(msg, "before the nbf"):
		return authErr("token is not valid yet (nbf is in the future)")
	case strings.Contains(msg, "issued by a different provider"):
		return authErr("token issuer does not match the issuer's discovery document")
	case strings.Contains(msg, errKeysUnavailable.Error()):
		return authErr("identity provider %s is unreachable or did not publish a valid JWKS at its jwks_uri", iss)
	case strings.Contains(msg, "failed to verify signature"), strings.Contains(msg, "malformed jwt"), strings.Contains(msg, "unexpected signature algorithm"):
		return authErr("token signature does not verify with the issuer's published keys")
	default:
		return authErr("token rejected: %s", strings.TrimPrefix(msg, "oidc: "))
	}
}

// verifier returns the verifier for a concrete issuer URL, discovering the
// issuer on first use. Only the wait honours ctx: the discovery itself is
// shared with the other tokens naming iss and bounded by HTTPTimeout.
func (is *issuer) verifier(ctx context.Context, iss string, p *Pool) (*oidc.IDTokenVerifier, error) {
	now := p.now()
	is.mu.Lock()
	if c, ok := is.verifiers[iss]; ok {
		is.uses++
		c.lastUse = is.uses
		is.mu.Unlock()
		return c.v, nil
	}
	if until, ok := is.failures[iss]; ok {
		if now.Before(until) {
			is.mu.Unlock()
			return nil, discoveryFailed(iss, p.limits)
		}
		delete(is.failures, iss)
	}
	f, ok := is.discovering[iss]
	if !ok {
		if is.pattern != nil && len(is.discovering) >= p.limits.MaxWildcardIssuers {
			is.mu.Unlock()
			return nil, &BusyError{Msg: fmt.Sprintf("too many identity providers matching %s are being discovered at once; retry shortly", is.cfg.WildcardURL)}
		}
		f = newFlight[*oidc.IDTokenVerifier]()
		is.discovering[iss] = f
		go is.discover(context.WithoutCancel(ctx), iss, p, f)
	}
	f.waiters++
	is.mu.Unlock()
	select {
	case <-f.done:
		return f.val, f.err
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the discovery of identity provider %s: %w", iss, ctx.Err())
	}
}

// discoveryFailed is what a client is told when iss could not be
// discovered: which issuer, never why (the cause is in the server log).
func discoveryFailed(iss string, limits Limits) error {
	return authErr("identity provider %s is unreachable or did not publish a valid OIDC discovery document; it is tried again at most every %s", iss, limits.DiscoveryFailureTTL)
}

// discover runs the one discovery of iss that f stands for, then caches its
// result and hands it to f's waiters. ctx carries no cancellation (the
// waiters may leave; the others still want the result); HTTPTimeout bounds it.
func (is *issuer) discover(ctx context.Context, iss string, p *Pool, f *flight[*oidc.IDTokenVerifier]) {
	dctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, is.client), p.limits.HTTPTimeout)
	defer cancel()
	v, err := is.newVerifier(dctx, iss, p)
	var until time.Time
	if err != nil {
		// Logged before the waiters are answered (and outside is.mu, which
		// cache hits take): by the time a client has its 401, the cause is
		// in the log.
		until = p.now().Add(p.limits.DiscoveryFailureTTL)
		p.logger.WarnContext(ctx, "OIDC discovery failed; tokens naming this issuer are refused until retry_after",
			"issuer", iss, "err", err, "retry_after", until)
	}
	is.mu.Lock()
	defer is.mu.Unlock()
	delete(is.discovering, iss)
	if err != nil {
		is.rememberFailure(iss, until, p.limits.MaxWildcardIssuers)
		f.err = discoveryFailed(iss, p.limits)
	} else {
		is.remember(iss, v, p.limits.MaxWildcardIssuers)
		f.val = v
	}
	close(f.done)
}

// newVerifier fetches iss's discovery document and builds its verifier.
func (is *issuer) newVerifier(ctx context.Context, iss string, p *Pool) (*oidc.IDTokenVerifier, error) {
	provider, err := oidc.NewProvider(ctx, iss)
	if err != nil {
		return nil, fmt.Errorf("fetching the discovery document: %w", err)
	}
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := provider.Claims(&meta); err != nil {
		return nil, fmt.Errorf("reading the discovery document: %w", err)
	}
	if meta.JWKSURI == "" {
		return nil, errors.New("the discovery document has no jwks_uri")
	}
	keySet := &cooldownKeySet{issuer: iss, url: meta.JWKSURI, client: is.client, cooldown: p.limits.JWKSCooldown, now: time.Now, logger: p.logger}
	return oidc.NewVerifier(iss, keySet, &oidc.Config{ClientID: is.cfg.ClientID, Now: p.now}), nil
}

// remember caches v for iss; is.mu is held. A wildcard keeps at most limit
// issuers, evicting the least recently used. Failures are kept apart (see
// rememberFailure), so tokens naming made-up tenants, whose discovery
// fails, never push out a tenant that works: evicting one takes a discovery
// that succeeds, that is a real tenant of the pattern, and then the one
// evicted is the one used least recently. Exact issuers are never evicted.
func (is *issuer) remember(iss string, v *oidc.IDTokenVerifier, limit int) {
	if is.pattern != nil && len(is.verifiers) >= limit {
		oldest := ""
		for k, c := range is.verifiers {
			if oldest == "" || c.lastUse < is.verifiers[oldest].lastUse {
				oldest = k
			}
		}
		delete(is.verifiers, oldest)
	}
	is.uses++
	is.verifiers[iss] = &cachedVerifier{v: v, lastUse: is.uses}
}

// rememberFailure records that iss is not to be discovered again before
// until; is.mu is held. A wildcard keeps at most limit failures, forgetting
// the one that ends soonest: forgetting a failure early costs at most one
// more discovery, never a working issuer's cache entry.
func (is *issuer) rememberFailure(iss string, until time.Time, limit int) {
	if is.pattern != nil && len(is.failures) >= limit {
		soonest := ""
		for k, u := range is.failures {
			if soonest == "" || u.Before(is.failures[soonest]) {
				soonest = k
			}
		}
		delete(is.failures, soonest)
	}
	is.failures[iss] = until
}

// errKeysUnavailable is what a failed JWKS fetch returns through go-oidc,
// which flattens it to text; explain recognises it by that text. The cause
// is logged, never returned.
var errKeysUnavailable = errors.New("oidc: fetching keys failed")

// cooldownKeySet verifies JWS signatures with an issuer's JWKS, refetching
// it when a token names an unknown key, but at most once per cooldown.
// Tokens signed by a known key never wait for a refetch.
type cooldownKeySet struct {
	issuer   string // for the log
	url      string
	client   *http.Client // its Timeout bounds a fetch
	cooldown time.Duration
	now      func() time.Time
	logger   *slog.Logger

	keys atomic.Pointer[[]jose.JSONWebKey] // the last JWKS fetched

	mu       sync.Mutex // guards fetched and fetching; never held across I/O
	fetched  time.Time  // when the last fetch started
	fetching *flight[[]jose.JSONWebKey]
}

func (k *cooldownKeySet) VerifySignature(ctx context.Context, token string) ([]byte, error) {
	jws, err := jose.ParseSigned(token, signingAlgs)
	if err != nil {
		return nil, fmt.Errorf("oidc: malformed jwt: %v", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("oidc: malformed jwt: want exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	if payload, ok := k.tryKeys(jws, kid, k.cached()); ok {
		return payload, nil
	}
	keys, err := k.refresh(ctx)
	if err != nil {
		return nil, err
	}
	if payload, ok := k.tryKeys(jws, kid, keys); ok {
		return payload, nil
	}
	return nil, errors.New("oidc: failed to verify signature: no published key verifies it")
}

func (k *cooldownKeySet) cached() []jose.JSONWebKey {
	if keys := k.keys.Load(); keys != nil {
		return *keys
	}
	return nil
}

func (k *cooldownKeySet) tryKeys(jws *jose.JSONWebSignature, kid string, keys []jose.JSONWebKey) ([]byte, bool) {
	for _, key := range keys {
		if kid != "" && key.KeyID != kid {
			continue
		}
		if payload, err := jws.Verify(&key); err == nil {
			return payload, true
		}
	}
	return nil, false
}

// refresh returns the issuer's keys, fetched again unless a fetch started
// less than the cooldown ago. Concurrent callers share one fetch, which goes
// on when they leave: ctx ends only the caller's wait.
func (k *cooldownKeySet) refresh(ctx context.Context) ([]jose.JSONWebKey, error) {
	k.mu.Lock()
	f := k.fetching
	if f == nil {
		if !k.fetched.IsZero() && k.now().Sub(k.fetched) < k.cooldown {
			k.mu.Unlock()
			return k.cached(), nil
		}
		// A failed fetch counts too: an issuer that errors is not retried per token.
		k.fetched = k.now()
		f = newFlight[[]jose.JSONWebKey]()
		k.fetching = f
		go k.fetch(context.WithoutCancel(ctx), f)
	}
	k.mu.Unlock()
	select {
	case <-f.done:
		return f.val, f.err
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the JWKS of %s: %w", k.issuer, ctx.Err())
	}
}

// fetch runs the one fetch that f stands for.
func (k *cooldownKeySet) fetch(ctx context.Context, f *flight[[]jose.JSONWebKey]) {
	keys, err := k.get(ctx)
	if err != nil {
		k.logger.WarnContext(ctx, "fetching an OIDC issuer's JWKS failed; tokens needing a key not yet known are refused until the cooldown ends",
			"issuer", k.issuer, "jwks_uri", k.url, "err", err, "cooldown", k.cooldown)
		f.err = errKeysUnavailable
	} else {
		k.keys.Store(&keys)
		f.val = keys
	}
	k.mu.Lock()
	k.fetching = nil
	k.mu.Unlock()
	close(f.done)
}

func (k *cooldownKeySet) get(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks_uri %q: %w", k.url, err)
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the JWKS: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("JWKS answered HTTP %d", resp.StatusCode)
	}
	return decodeJWKS(body)
}

// decodeJWKS parses a JWKS document (untrusted bytes from the issuer).
func decodeJWKS(body []byte) ([]jose.JSONWebKey, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("decoding the JWKS: %w", err)
	}
	return set.Keys, nil
}
