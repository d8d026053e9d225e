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
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
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
	// MaxWildcardIssuers bounds the issuers cached per wildcard pattern.
	MaxWildcardIssuers int
}

// DefaultLimits are documented in docs/configuration.md.
var DefaultLimits = Limits{MaxTokenBytes: 16 << 10, MaxResponseBytes: 1 << 20, HTTPTimeout: 10 * time.Second, JWKSCooldown: 30 * time.Second, MaxWildcardIssuers: 100}

// signingAlgs are the JWS algorithms accepted on tokens ("none" never is).
var signingAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512, jose.ES256, jose.ES384, jose.ES512, jose.EdDSA}

// Pool is the set of trusted issuers.
type Pool struct {
	issuers   []*issuer
	providers map[string]CIProvider
	limits    Limits
	now       func() time.Time

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
	local   oidc.KeySet // set for issuers served by this process (dev mode)

	mu        sync.Mutex
	verifiers map[string]*oidc.IDTokenVerifier // by concrete issuer URL
}

// Options adjust a pool; zero values take defaults.
type Options struct {
	Limits Limits
	// Now is the clock tokens are checked against.
	Now func() time.Time
	// LocalKeySets verifies the named exact issuers with these keys instead
	// of discovery (the dev issuer served by this same process).
	LocalKeySets map[string]oidc.KeySet
}

// NewPool validates the configuration. Issuers are contacted lazily, on the
// first token each one presents, so an issuer that is down does not stop
// start-up.
func NewPool(cfgs []IssuerConfig, custom map[string]CIProvider, opts Options) (*Pool, error) {
	limits := opts.Limits
	if limits.MaxTokenBytes == 0 {
		limits = DefaultLimits
	}
	providers := Presets()
	for k, v := range custom {
		providers[k] = v
	}
	p := &Pool{providers: providers, limits: limits, now: opts.Now, verified: map[[32]byte]verifiedToken{}}
	if p.now == nil {
		p.now = time.Now
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
		is := &issuer{cfg: c, verifiers: map[string]*oidc.IDTokenVerifier{}}
		if c.WildcardURL != "" {
			re, err := wildcardPattern(c.WildcardURL)
			if err != nil {
				return nil, fmt.Errorf("issuer %s: %w", c.WildcardURL, err)
			}
			is.pattern = re
		}
		if ks, ok := opts.LocalKeySets[c.URL]; ok && c.URL != "" {
			is.local = ks
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
		return fail(explain(err, is.cfg.ClientID))
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
func explain(err error, clientID string) error {
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
	case strings.Contains(msg, "fetching keys"):
		_, cause, _ := strings.Cut(msg, "fetching keys: ")
		return authErr("fetching the issuer's signing keys failed: %s", cause)
	case strings.Contains(msg, "failed to verify signature"), strings.Contains(msg, "malformed jwt"), strings.Contains(msg, "unexpected signature algorithm"):
		return authErr("token signature does not verify with the issuer's published keys")
	default:
		return authErr("token rejected: %s", strings.TrimPrefix(msg, "oidc: "))
	}
}

// verifier returns (building on first use) the verifier for a concrete issuer URL.
func (is *issuer) verifier(ctx context.Context, iss string, p *Pool) (*oidc.IDTokenVerifier, error) {
	is.mu.Lock()
	defer is.mu.Unlock()
	if v, ok := is.verifiers[iss]; ok {
		return v, nil
	}
	cfg := &oidc.Config{ClientID: is.cfg.ClientID, Now: p.now}
	var keySet oidc.KeySet = is.local
	if keySet == nil {
		dctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, is.client), p.limits.HTTPTimeout)
		defer cancel()
		provider, err := oidc.NewProvider(dctx, iss)
		if err != nil {
			return nil, authErr("discovering issuer %s failed: %v", iss, err)
		}
		var meta struct {
			JWKSURI string `json:"jwks_uri"`
		}
		if err := provider.Claims(&meta); err != nil || meta.JWKSURI == "" {
			return nil, authErr("issuer %s publishes no jwks_uri", iss)
		}
		keySet = &cooldownKeySet{url: meta.JWKSURI, client: is.client, cooldown: p.limits.JWKSCooldown, now: time.Now}
	}
	v := oidc.NewVerifier(iss, keySet, cfg)
	if is.pattern != nil && len(is.verifiers) >= p.limits.MaxWildcardIssuers {
		for k := range is.verifiers {
			delete(is.verifiers, k) // evict one arbitrary issuer
			break
		}
	}
	is.verifiers[iss] = v
	return v, nil
}

// cooldownKeySet verifies JWS signatures with an issuer's JWKS, refetching
// it when a token names an unknown key, but at most once per cooldown.
type cooldownKeySet struct {
	url      string
	client   *http.Client
	cooldown time.Duration
	now      func() time.Time

	mu      sync.Mutex
	keys    []jose.JSONWebKey
	fetched time.Time
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
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keys
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

func (k *cooldownKeySet) refresh(ctx context.Context) ([]jose.JSONWebKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.fetched.IsZero() && k.now().Sub(k.fetched) < k.cooldown {
		return k.keys, nil
	}
	// A failed fetch counts too: an issuer that errors is not retried per token.
	k.fetched = k.now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("oidc: fetching keys: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("oidc: fetching keys: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("oidc: fetching keys: HTTP %d", resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("oidc: fetching keys: %v", err)
	}
	k.keys = set.Keys
	return k.keys, nil
}
