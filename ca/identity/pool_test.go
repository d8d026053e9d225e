package identity

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/signet-dev/signet/internal/syncbuf"
)

// testIssuer is a real OIDC issuer over HTTP: discovery and JWKS. The
// fields that change its behaviour are set before it serves a request.
type testIssuer struct {
	srv           *httptest.Server
	key           *rsa.PrivateKey
	jwksHits      atomic.Int32
	discoveryHits atomic.Int32
	hugeJWKS      bool
	redirectTo    string
	// discoveryStatus, if set, answers discovery with this status and a
	// body that must never reach a client.
	discoveryStatus int
	// jwksURI, if set, is published instead of the issuer's own /jwks.
	jwksURI string
	// jwksHold, if set, holds each JWKS request until it is closed, after
	// sending on jwksArrived.
	jwksHold    chan struct{}
	jwksArrived chan struct{}
}

// internalDetail is the body of a failing discovery answer: what a
// client must never be told.
const internalDetail = "internal-detail-10.0.0.7"

func newTestIssuer(t *testing.T) *testIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ti := &testIssuer{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		ti.discoveryHits.Add(1)
		if ti.redirectTo != "" {
			http.Redirect(w, r, ti.redirectTo+"/.well-known/openid-configuration", http.StatusFound)
			return
		}
		if ti.discoveryStatus != 0 {
			http.Error(w, internalDetail, ti.discoveryStatus)
			return
		}
		jwksURI := ti.srv.URL + "/jwks"
		if ti.jwksURI != "" {
			jwksURI = ti.jwksURI
		}
		json.NewEncoder(w).Encode(map[string]any{"issuer": ti.srv.URL, "jwks_uri": jwksURI, "id_token_signing_alg_values_supported": []string{"RS256"}}) //nolint:errcheck
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		ti.jwksHits.Add(1)
		if ti.jwksHold != nil {
			ti.jwksArrived <- struct{}{}
			select {
			case <-ti.jwksHold:
			case <-r.Context().Done():
				return
			}
		}
		if ti.hugeJWKS {
			w.Write([]byte(`{"keys":[],"pad":"` + strings.Repeat("x", 2<<20) + `"}`)) //nolint:errcheck
			return
		}
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}}) //nolint:errcheck
	})
	ti.srv = httptest.NewServer(mux)
	t.Cleanup(ti.srv.Close)
	return ti
}

func (ti *testIssuer) sign(t *testing.T, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	return signJWT(t, key, kid, claims)
}

// signJWT signs claims as a compact JWS (RS256) with key, naming kid.
func signJWT(t *testing.T, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := jws.CompactSerialize()
	return tok
}

func (ti *testIssuer) claims(extra map[string]any) map[string]any {
	now := time.Now()
	c := map[string]any{"iss": ti.srv.URL, "aud": "sigstore", "sub": "subject-1", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

func (ti *testIssuer) token(t *testing.T, extra map[string]any) string {
	return ti.sign(t, ti.key, "k1", ti.claims(extra))
}

func pool(t *testing.T, cfgs ...IssuerConfig) *Pool {
	t.Helper()
	p, err := NewPool(cfgs, map[string]CIProvider{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestIssuerTypes(t *testing.T) {
	ti := newTestIssuer(t)
	ctx := context.Background()
	tests := []struct {
		name    string
		cfg     IssuerConfig
		claims  map[string]any
		check   func(t *testing.T, p *Principal)
		wantErr string
	}{
		{"email", IssuerConfig{Type: TypeEmail}, map[string]any{"email": "Alice@example.com", "email_verified": true}, func(t *testing.T, p *Principal) {
			if p.Email != "Alice@example.com" || p.Challenges[0] != "Alice@example.com" || p.Extensions.Issuer != ti.srv.URL || p.Extensions.Subject != "subject-1" {
				t.Fatalf("%+v", p)
			}
		}, ""},
		{"email verified as string", IssuerConfig{Type: TypeEmail}, map[string]any{"email": "a@example.com", "email_verified": "true"}, nil, ""},
		{"email not verified", IssuerConfig{Type: TypeEmail}, map[string]any{"email": "a@example.com", "email_verified": false}, nil, "email a@example.com is not verified"},
		{"email verification skipped", IssuerConfig{Type: TypeEmail, SkipEmailVerification: true}, map[string]any{"email": "a@example.com"}, nil, ""},
		{"email missing", IssuerConfig{Type: TypeEmail}, nil, nil, "has no email claim"},
		{"email issuer claim", IssuerConfig{Type: TypeEmail, IssuerClaim: "$.federated_claims.connector_id"}, map[string]any{"email": "a@example.com", "email_verified": true, "federated_claims": map[string]any{"connector_id": "https://github.com/login/oauth"}}, func(t *testing.T, p *Principal) {
			if p.Extensions.Issuer != "https://github.com/login/oauth" {
				t.Fatalf("issuer extension %q", p.Extensions.Issuer)
			}
		}, ""},
		{"uri", IssuerConfig{Type: TypeURI, SubjectDomain: "https://build.example.com"}, map[string]any{"sub": "https://build.example.com/jobs/7"}, func(t *testing.T, p *Principal) {
			if p.URI.String() != "https://build.example.com/jobs/7" || p.Challenges[0] != "https://build.example.com/jobs/7" {
				t.Fatalf("%+v", p)
			}
		}, ""},
		{"uri outside domain", IssuerConfig{Type: TypeURI, SubjectDomain: "https://build.example.com"}, map[string]any{"sub": "https://evil.example.com/x"}, nil, "outside the subject domain"},
		{"username", IssuerConfig{Type: TypeUsername, SubjectDomain: "example.com"}, map[string]any{"sub": "alice"}, func(t *testing.T, p *Principal) {
			if p.OtherName != "alice!example.com" {
				t.Fatalf("%+v", p)
			}
		}, ""},
		{"username with bang", IssuerConfig{Type: TypeUsername, SubjectDomain: "example.com"}, map[string]any{"sub": "a!b"}, nil, "not a username"},
		{"kubernetes", IssuerConfig{Type: TypeKubernetes}, map[string]any{"kubernetes.io": map[string]any{"namespace": "prod", "serviceaccount": map[string]any{"name": "builder"}}}, func(t *testing.T, p *Principal) {
			if p.URI.String() != "https://kubernetes.io/namespaces/prod/serviceaccounts/builder" {
				t.Fatalf("%v", p.URI)
			}
		}, ""},
		{"spiffe", IssuerConfig{Type: TypeSPIFFE, SPIFFETrustDomain: "example.org"}, map[string]any{"sub": "spiffe://example.org/ns/prod/sa/builder"}, nil, ""},
		{"spiffe other domain", IssuerConfig{Type: TypeSPIFFE, SPIFFETrustDomain: "example.org"}, map[string]any{"sub": "spiffe://evil.org/x"}, nil, "not in trust domain"},
		{"github actions", IssuerConfig{Type: TypeCIProvider, CIProvider: "github-actions"}, githubClaims(), func(t *testing.T, p *Principal) {
			want := map[string]string{
				"build-signer-uri":             "https://github.com/octo/app/.github/workflows/release.yml@refs/tags/v1",
				"source-repository-uri":        "https://github.com/octo/app",
				"run-invocation-uri":           "https://github.com/octo/app/actions/runs/42/attempts/1",
				"github-workflow-trigger":      "push",
				"source-repository-identifier": "123",
				"deployment-environment":       "",
			}
			for k, v := range want {
				if p.Extensions.CI[k] != v {
					t.Errorf("%s = %q, want %q", k, p.Extensions.CI[k], v)
				}
			}
			if p.URI.String() != want["build-signer-uri"] || p.Challenges[0] != "repo:octo/app:ref:refs/tags/v1" {
				t.Fatalf("SAN %v challenges %v", p.URI, p.Challenges)
			}
		}, ""},
		{"github actions missing claim", IssuerConfig{Type: TypeCIProvider, CIProvider: "github-actions"}, map[string]any{"job_workflow_ref": "x"}, nil, "lacks claim"},
		{"gitlab ci", IssuerConfig{Type: TypeCIProvider, CIProvider: "gitlab-ci"}, gitlabClaims(), func(t *testing.T, p *Principal) {
			if p.Extensions.CI["source-repository-ref"] != "refs/heads/main" || p.URI.String() != "https://gitlab.com/grp/proj//.gitlab-ci.yml@refs/heads/main" {
				t.Fatalf("%v %v", p.Extensions.CI["source-repository-ref"], p.URI)
			}
		}, ""},
		{"email-or-uri without email", IssuerConfig{Type: TypeEmailOrURI}, map[string]any{"sub": "bot 1"}, func(t *testing.T, p *Principal) {
			if p.URI.String() != ti.srv.URL+"/bot%201" {
				t.Fatalf("%v", p.URI)
			}
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.URL = ti.srv.URL
			p, err := pool(t, cfg).Authenticate(ctx, ti.token(t, tt.claims))
			if tt.wantErr != "" {
				var ae *AuthError
				if !errors.As(err, &ae) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want AuthError containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, p)
			}
			exts, err := p.Extensions.Render()
			if err != nil || len(exts) < 3 {
				t.Fatalf("rendering extensions: %d, %v", len(exts), err)
			}
		})
	}
}

func githubClaims() map[string]any {
	return map[string]any{
		"sub": "repo:octo/app:ref:refs/tags/v1", "job_workflow_ref": "octo/app/.github/workflows/release.yml@refs/tags/v1",
		"job_workflow_sha": "abc", "sha": "abc", "event_name": "push", "repository": "octo/app", "workflow": "release",
		"ref": "refs/tags/v1", "runner_environment": "github-hosted", "repository_id": "123", "repository_owner": "octo",
		"repository_owner_id": "9", "repository_visibility": "public", "workflow_ref": "octo/app/.github/workflows/release.yml@refs/tags/v1",
		"workflow_sha": "abc", "run_id": "42", "run_attempt": "1",
	}
}

func gitlabClaims() map[string]any {
	return map[string]any{
		"sub": "project_path:grp/proj:ref_type:branch:ref:main", "ci_config_ref_uri": "gitlab.com/grp/proj//.gitlab-ci.yml@refs/heads/main",
		"ci_config_sha": "def", "runner_environment": "gitlab-hosted", "project_path": "grp/proj", "sha": "def", "ref_type": "branch",
		"ref": "main", "project_id": 77, "namespace_path": "grp", "namespace_id": 5, "pipeline_source": "push", "job_id": 1001,
		"project_visibility": "private",
	}
}

func TestTokenAttacks(t *testing.T) {
	ti := newTestIssuer(t)
	ctx := context.Background()
	p := pool(t, IssuerConfig{URL: ti.srv.URL, Type: TypeEmail})
	email := map[string]any{"email": "a@example.com", "email_verified": true}
	with := func(extra map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range email {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	payload, _ := json.Marshal(ti.claims(email))
	algNone := header + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
	tests := []struct {
		name, token, want string
	}{
		{"wrong audience", ti.token(t, with(map[string]any{"aud": "other"})), `audience ["other"] not accepted: this CA requires "sigstore"`},
		{"expired", ti.token(t, with(map[string]any{"exp": time.Now().Add(-time.Minute).Unix()})), "token expired at"},
		{"not yet valid", ti.token(t, with(map[string]any{"nbf": time.Now().Add(time.Hour).Unix()})), "not valid yet"},
		{"unknown issuer", ti.token(t, with(map[string]any{"iss": "https://evil.example.com"})), `issuer "https://evil.example.com" is not configured`},
		{"alg none", algNone, "signature does not verify"},
		{"unknown key", ti.sign(t, otherKey, "k1", ti.claims(email)), "signature does not verify"},
		{"unknown key id", ti.sign(t, otherKey, "k-other", ti.claims(email)), "signature does not verify"},
		{"oversized token", strings.Repeat("a", 20<<10), "more than"},
		{"four parts", "a.b.c.d", "not a JWT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p.Authenticate(ctx, tt.token)
			var ae *AuthError
			if !errors.As(err, &ae) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want AuthError containing %q", err, tt.want)
			}
		})
	}
	// Made-up key IDs do not make us refetch the JWKS for every token.
	if hits := ti.jwksHits.Load(); hits > 2 {
		t.Fatalf("JWKS fetched %d times during the attacks; the cooldown should hold it to 2", hits)
	}
}

func TestWildcardIssuers(t *testing.T) {
	p := pool(t,
		IssuerConfig{WildcardURL: "https://oidc.eks.*.amazonaws.com/id/*", Type: TypeKubernetes},
		IssuerConfig{URL: "https://token.actions.githubusercontent.com", Type: TypeCIProvider, CIProvider: "github-actions"},
	)
	for iss, want := range map[string]bool{
		"https://oidc.eks.us-west-2.amazonaws.com/id/ABC123":           true,
		"https://oidc.eks.evil.com/x.amazonaws.com/id/ABC":             false,
		"https://oidc.eks.us-west-2.amazonaws.com/id/ABC/../../evil":   false,
		"https://oidc.eks.a.b.amazonaws.com/id/ABC":                    false,
		"https://oidc.eks.us-west-2.amazonaws.com/id/ABC?x=https://e":  false,
		"https://oidc.eks.us-west-2.amazonaws.com.evil.com/id/ABC":     false,
		"xhttps://oidc.eks.us-west-2.amazonaws.com/id/ABC":             false,
		"https://token.actions.githubusercontent.com":                  true,
		"https://token.actions.githubusercontent.com.evil.example.com": false,
	} {
		if got := p.match(iss) != nil; got != want {
			t.Errorf("match(%q) = %v, want %v", iss, got, want)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tt := range []struct {
		cfg  IssuerConfig
		want string
	}{
		{IssuerConfig{Type: TypeEmail}, "exactly one of url and wildcard_url"},
		{IssuerConfig{URL: "ftp://x", Type: TypeEmail}, "not an http(s) URL"},
		{IssuerConfig{URL: "https://x"}, "type is required"},
		{IssuerConfig{URL: "https://x", Type: "github"}, `unknown type "github"`},
		{IssuerConfig{URL: "https://x", Type: TypeURI}, "subject_domain"},
		{IssuerConfig{URL: "https://x", Type: TypeSPIFFE}, "spiffe_trust_domain"},
		{IssuerConfig{URL: "https://x", Type: TypeCIProvider, CIProvider: "jenkins"}, `ci_provider "jenkins"`},
		{IssuerConfig{URL: "https://x", Type: TypeKubernetes, IssuerClaim: "$.a"}, "issuer_claim"},
	} {
		_, err := NewPool([]IssuerConfig{tt.cfg}, nil, Options{})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: error %v, want %q", tt.cfg, err, tt.want)
		}
	}
	_, err := NewPool([]IssuerConfig{{URL: "https://x", Type: TypeCIProvider, CIProvider: "mine"}}, map[string]CIProvider{
		"mine": {SubjectAlternativeNameTemplate: "{{ .url }", ExtensionTemplates: map[string]string{}},
	}, Options{})
	if err == nil || !strings.Contains(err.Error(), "subject_alternative_name_template") {
		t.Fatalf("bad template accepted: %v", err)
	}
}

// A verified token is remembered, but never past its expiry.
func TestVerifiedTokenCacheHonoursExpiry(t *testing.T) {
	ti := newTestIssuer(t)
	now := time.Now()
	p, err := NewPool([]IssuerConfig{{URL: ti.srv.URL, Type: TypeEmail}}, nil, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	tok := ti.token(t, map[string]any{"email": "a@example.com", "email_verified": true, "exp": now.Add(time.Minute).Unix()})
	first, err := p.Authenticate(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	again, err := p.Authenticate(context.Background(), tok)
	if err != nil || again != first {
		t.Fatalf("second use not served from the cache: %v", err)
	}
	now = now.Add(2 * time.Minute)
	if _, err := p.Authenticate(context.Background(), tok); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired cached token: %v", err)
	}
}

// hang bounds a wait that only a bug makes long (a cache hit queued behind
// a discovery, a wait that ignores its context), so that such a test fails
// with a message instead of hanging. It never measures speed.
const hang = 30 * time.Second

// noTimeout is an HTTPTimeout longer than hang, for tests that hold
// requests to an issuer: a timeout must not end what the test holds.
const noTimeout = time.Hour

// within returns the next value from ch, failing the test if none comes
// before hang.
func within[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(hang):
		t.Fatalf("still waiting for %s after %s", what, hang)
		panic("unreachable")
	}
}

// eventually waits until cond holds, failing the test if it does not
// before hang. It only synchronises with goroutines; it asserts nothing.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hang)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s after %s", what, hang)
		}
		time.Sleep(time.Millisecond)
	}
}

// tenants is a real OIDC provider over HTTP with many tenants, each an
// issuer at <srv.URL>/t/<name>, for a wildcard issuer <srv.URL>/t/*. A
// tenant's discovery can be held until released (a slow tenant) or answer
// 404 (a dead one); discovery requests are counted per tenant.
type tenants struct {
	srv *httptest.Server
	key *rsa.PrivateKey
	// arrived gets the name of a held tenant each time its discovery
	// request is in the handler.
	arrived chan string

	mu    sync.Mutex
	hits  map[string]int
	holds map[string]chan struct{}
	dead  map[string]bool
}

func newTenants(t *testing.T) *tenants {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ts := &tenants{key: key, arrived: make(chan string, 64), hits: map[string]int{}, holds: map[string]chan struct{}{}, dead: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /t/{name}/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		ts.mu.Lock()
		ts.hits[name]++
		hold, dead := ts.holds[name], ts.dead[name]
		ts.mu.Unlock()
		if hold != nil {
			ts.arrived <- name
			select {
			case <-hold:
			case <-r.Context().Done():
				return
			}
		}
		if dead {
			http.NotFound(w, r)
			return
		}
		iss := ts.iss(name)
		json.NewEncoder(w).Encode(map[string]any{"issuer": iss, "jwks_uri": iss + "/jwks", "id_token_signing_alg_values_supported": []string{"RS256"}}) //nolint:errcheck
	})
	mux.HandleFunc("GET /t/{name}/jwks", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}}) //nolint:errcheck
	})
	ts.srv = httptest.NewServer(mux)
	t.Cleanup(ts.srv.Close)
	t.Cleanup(ts.releaseAll) // runs first: Close waits for held handlers
	return ts
}

func (ts *tenants) iss(name string) string { return ts.srv.URL + "/t/" + name }

// pool trusts every tenant, as wildcard <srv.URL>/t/*. Unless opts say
// otherwise, requests to issuers have no practical timeout: held
// discoveries end when the test releases them, not when a timer fires.
func (ts *tenants) pool(t *testing.T, opts Options) *Pool {
	t.Helper()
	if opts.Limits.HTTPTimeout == 0 {
		opts.Limits.HTTPTimeout = noTimeout
	}
	p, err := NewPool([]IssuerConfig{{WildcardURL: ts.srv.URL + "/t/*", Type: TypeEmail}}, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// token is a token from tenant name; sub makes tokens differ, so that the
// verified-token cache does not answer for the pool.
func (ts *tenants) token(t *testing.T, name, sub string) string {
	now := time.Now()
	return signJWT(t, ts.key, "k1", map[string]any{"iss": ts.iss(name), "aud": "sigstore", "sub": sub, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "email": "a@example.com", "email_verified": true})
}

// hold makes the tenant's discovery requests wait until release.
func (ts *tenants) hold(name string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.holds[name] = make(chan struct{})
}

func (ts *tenants) release(name string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ch, ok := ts.holds[name]; ok {
		close(ch)
		delete(ts.holds, name)
	}
}

func (ts *tenants) releaseAll() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for name, ch := range ts.holds {
		close(ch)
		delete(ts.holds, name)
	}
}

func (ts *tenants) kill(name string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.dead[name] = true
}

// discoveries is how many discovery requests the tenant has had.
func (ts *tenants) discoveries(name string) int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.hits[name]
}

// discoveryWaiters is how many callers share the discovery of iss in
// flight (0 if there is none).
func discoveryWaiters(p *Pool, iss string) int {
	is := p.match(iss)
	is.mu.Lock()
	defer is.mu.Unlock()
	if f, ok := is.discovering[iss]; ok {
		return f.waiters
	}
	return 0
}

// testClock is a clock that tests move by hand; safe for the pool's
// discovery goroutines to read.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// A token from a tenant already discovered is verified while discoveries of
// slow tenants of the same wildcard are in flight (once, one mutex held
// across discovery queued it behind all of them), and those discoveries run
// at once rather than one after another.
func TestKnownIssuerIsNotQueuedBehindSlowDiscoveries(t *testing.T) {
	ts := newTenants(t)
	p := ts.pool(t, Options{})
	ctx := context.Background()
	if _, err := p.Authenticate(ctx, ts.token(t, "known", "first")); err != nil {
		t.Fatal(err)
	}
	const slow = 4
	results := make(chan error, slow)
	for i := range slow {
		name := fmt.Sprintf("slow-%d", i)
		ts.hold(name)
		tok := ts.token(t, name, "s")
		go func() {
			_, err := p.Authenticate(ctx, tok)
			results <- err
		}()
	}
	within(t, ts.arrived, "a slow tenant's discovery to reach its issuer")

	known := make(chan error, 1)
	tok := ts.token(t, "known", "second")
	go func() {
		_, err := p.Authenticate(ctx, tok)
		known <- err
	}()
	if err := within(t, known, "the known tenant's token while slow discoveries are held"); err != nil {
		t.Fatalf("known tenant: %v", err)
	}
	if n := ts.discoveries("known"); n != 1 {
		t.Fatalf("known tenant discovered %d times, want 1 (its second token is a cache hit)", n)
	}

	for range slow - 1 {
		within(t, ts.arrived, "the other slow tenants' discoveries to be in flight together")
	}
	ts.releaseAll()
	for range slow {
		if err := within(t, results, "the slow tenants' tokens once released"); err != nil {
			t.Fatalf("slow tenant: %v", err)
		}
	}
	for i := range slow {
		if n := ts.discoveries(fmt.Sprintf("slow-%d", i)); n != 1 {
			t.Errorf("slow-%d discovered %d times, want 1", i, n)
		}
	}
}

// Concurrent tokens naming one new issuer wait for one discovery.
func TestConcurrentTokensShareOneDiscovery(t *testing.T) {
	ts := newTenants(t)
	p := ts.pool(t, Options{})
	ts.hold("new")
	const tokens = 3
	results := make(chan error, tokens)
	for i := range tokens {
		tok := ts.token(t, "new", fmt.Sprint(i))
		go func() {
			_, err := p.Authenticate(context.Background(), tok)
			results <- err
		}()
	}
	within(t, ts.arrived, "the discovery to reach the issuer")
	// Release only once every token waits: on a shared discovery, or on a
	// discovery of its own (which the count below then catches).
	eventually(t, "every token to wait on a discovery", func() bool {
		return discoveryWaiters(p, ts.iss("new")) == tokens || ts.discoveries("new") > 1
	})
	ts.release("new")
	for range tokens {
		if err := within(t, results, "the tokens once the discovery is released"); err != nil {
			t.Fatal(err)
		}
	}
	if n := ts.discoveries("new"); n != 1 {
		t.Fatalf("%d concurrent tokens caused %d discovery requests, want 1", tokens, n)
	}
}

// A failed discovery is remembered for DiscoveryFailureTTL: tokens naming
// the issuer meanwhile make no request; the first one after does.
func TestFailedDiscoveryIsRemembered(t *testing.T) {
	ts := newTenants(t)
	clock := &testClock{now: time.Now()}
	p := ts.pool(t, Options{Now: clock.Now, Limits: Limits{DiscoveryFailureTTL: 30 * time.Second}})
	ts.kill("gone")
	want := "identity provider " + ts.iss("gone") + " is unreachable or did not publish a valid OIDC discovery document"
	for i, step := range []struct {
		advance time.Duration
		wantHit int
	}{
		{0, 1},
		{0, 1},
		{29 * time.Second, 1},
		{2 * time.Second, 2}, // 31 s after the first failure
		{time.Second, 2},
	} {
		clock.Advance(step.advance)
		_, err := p.Authenticate(context.Background(), ts.token(t, "gone", fmt.Sprint(i)))
		var ae *AuthError
		if !errors.As(err, &ae) || !strings.Contains(err.Error(), want) {
			t.Fatalf("token %d: error %v, want AuthError containing %q", i, err, want)
		}
		if n := ts.discoveries("gone"); n != step.wantHit {
			t.Fatalf("token %d: %d discovery requests so far, want %d", i, n, step.wantHit)
		}
	}
}

// A wildcard's caches stay bounded by MaxWildcardIssuers: failures apart
// from successes, so made-up tenants never evict a working one; the
// working tenant evicted is the least recently used; discoveries in flight
// are bounded too.
func TestWildcardCachesAreBounded(t *testing.T) {
	ts := newTenants(t)
	p := ts.pool(t, Options{Limits: Limits{MaxWildcardIssuers: 2}})
	ctx := context.Background()
	auth := func(name, sub string) error {
		_, err := p.Authenticate(ctx, ts.token(t, name, sub))
		return err
	}
	for _, name := range []string{"a", "b"} {
		if err := auth(name, "1"); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		name := fmt.Sprintf("made-up-%d", i)
		ts.kill(name)
		if err := auth(name, "1"); err == nil {
			t.Fatalf("%s accepted", name)
		}
	}
	is := p.match(ts.iss("a"))
	is.mu.Lock()
	nv, nf := len(is.verifiers), len(is.failures)
	is.mu.Unlock()
	if nv != 2 || nf != 2 {
		t.Fatalf("wildcard caches %d issuers and %d failures, want 2 and 2", nv, nf)
	}
	// a and b are still cached: made-up tenants evicted neither.
	if err := auth("a", "2"); err != nil {
		t.Fatal(err)
	}
	if err := auth("b", "2"); err != nil {
		t.Fatal(err)
	}
	if err := auth("a", "3"); err != nil { // a is now used more recently than b
		t.Fatal(err)
	}
	if err := auth("c", "1"); err != nil { // evicts b
		t.Fatal(err)
	}
	if err := auth("a", "4"); err != nil {
		t.Fatal(err)
	}
	if err := auth("b", "3"); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{"a": 1, "b": 2, "c": 1} {
		if n := ts.discoveries(name); n != want {
			t.Errorf("%s discovered %d times, want %d", name, n, want)
		}
	}

	// At most MaxWildcardIssuers discoveries in flight.
	results := make(chan error, 2)
	for _, name := range []string{"slow-1", "slow-2"} {
		ts.hold(name)
		tok := ts.token(t, name, "1")
		go func() {
			_, err := p.Authenticate(ctx, tok)
			results <- err
		}()
	}
	within(t, ts.arrived, "the first slow discovery")
	within(t, ts.arrived, "the second slow discovery")
	err := auth("slow-3", "1")
	var busy *BusyError
	if !errors.As(err, &busy) || !strings.Contains(err.Error(), "too many identity providers matching") {
		t.Fatalf("third discovery in flight: %v, want refused", err)
	}
	if n := ts.discoveries("slow-3"); n != 0 {
		t.Fatalf("slow-3 discovered %d times, want 0", n)
	}
	ts.releaseAll()
	for range 2 {
		if err := within(t, results, "the slow tokens once released"); err != nil {
			t.Fatal(err)
		}
	}
}

// A request whose context ends stops waiting for a discovery at once; the
// discovery goes on and serves the next token naming that issuer.
func TestCancelledRequestStopsWaitingNotTheDiscovery(t *testing.T) {
	ts := newTenants(t)
	p := ts.pool(t, Options{})
	ts.hold("slow")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	tok := ts.token(t, "slow", "1")
	go func() {
		_, err := p.Authenticate(ctx, tok)
		done <- err
	}()
	within(t, ts.arrived, "the discovery to reach the issuer")
	cancel()
	err := within(t, done, "the cancelled request to return while discovery is held")
	var ae *AuthError
	if !errors.Is(err, context.Canceled) || errors.As(err, &ae) {
		t.Fatalf("error %v, want context.Canceled and no AuthError (the token is not at fault)", err)
	}
	if !strings.Contains(err.Error(), ts.iss("slow")) {
		t.Fatalf("error %q does not say which issuer it waited for", err)
	}
	ts.release("slow")
	if _, err := p.Authenticate(context.Background(), ts.token(t, "slow", "2")); err != nil {
		t.Fatal(err)
	}
	if n := ts.discoveries("slow"); n != 1 {
		t.Fatalf("%d discovery requests, want 1: the first waiter leaving must not abandon the discovery", n)
	}
}

// A token signed by a key already known is verified while a refetch of the
// JWKS (for a token naming an unknown key) is in flight.
func TestKnownKeyIsNotQueuedBehindJWKSRefetch(t *testing.T) {
	ti := newTestIssuer(t)
	p, err := NewPool([]IssuerConfig{{URL: ti.srv.URL, Type: TypeEmail}}, nil, Options{Limits: Limits{JWKSCooldown: time.Nanosecond, HTTPTimeout: noTimeout}})
	if err != nil {
		t.Fatal(err)
	}
	email := map[string]any{"email": "a@example.com", "email_verified": true}
	if _, err := p.Authenticate(context.Background(), ti.token(t, email)); err != nil {
		t.Fatal(err)
	}
	hold := make(chan struct{})
	ti.jwksArrived = make(chan struct{}, 1)
	ti.jwksHold = hold
	t.Cleanup(func() { close(hold) })
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	unknown := ti.sign(t, otherKey, "k-unknown", ti.claims(email))
	go p.Authenticate(context.Background(), unknown) //nolint:errcheck // held until cleanup
	within(t, ti.jwksArrived, "the JWKS refetch to reach the issuer")

	known := make(chan error, 1)
	tok := ti.token(t, map[string]any{"email": "a@example.com", "email_verified": true, "sub": "subject-2"})
	go func() {
		_, err := p.Authenticate(context.Background(), tok)
		known <- err
	}()
	if err := within(t, known, "a token signed by a known key while the JWKS refetch is held"); err != nil {
		t.Fatal(err)
	}
}

// Outbound failures are answered with the issuer's name and what failed,
// never the network error (a 401 must not be an oracle on the server's
// network); the cause is in the log.
func TestOutboundFailuresAreNotEchoed(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	_, closedPort, _ := net.SplitHostPort(closedAddr)

	email := map[string]any{"email": "a@example.com", "email_verified": true}
	for _, tt := range []struct {
		name string
		// setup returns the issuer URL to configure and a token naming it.
		setup func(t *testing.T) (iss, token string, check func(t *testing.T))
		want  string
		// hidden must appear in the log and not in the client's message.
		hidden []string
	}{
		{"discovery: connection refused", func(t *testing.T) (string, string, func(*testing.T)) {
			ti := newTestIssuer(t)
			iss := "http://" + closedAddr
			return iss, ti.sign(t, ti.key, "k1", ti.claims(map[string]any{"iss": iss, "email": "a@example.com", "email_verified": true})), nil
		}, "is unreachable or did not publish a valid OIDC discovery document", []string{"connection refused"}},
		{"discovery: error status with a body", func(t *testing.T) (string, string, func(*testing.T)) {
			ti := newTestIssuer(t)
			ti.discoveryStatus = http.StatusInternalServerError
			return ti.srv.URL, ti.token(t, email), nil
		}, "is unreachable or did not publish a valid OIDC discovery document", []string{internalDetail}},
		{"discovery: redirect to another host", func(t *testing.T) (string, string, func(*testing.T)) {
			ti, other := newTestIssuer(t), newTestIssuer(t)
			ti.redirectTo = other.srv.URL
			return ti.srv.URL, ti.token(t, email), func(t *testing.T) {
				if n := other.discoveryHits.Load(); n != 0 {
					t.Errorf("the redirect target was asked %d times", n)
				}
			}
		}, "is unreachable or did not publish a valid OIDC discovery document", []string{"refusing redirect"}},
		{"JWKS: connection refused", func(t *testing.T) (string, string, func(*testing.T)) {
			ti := newTestIssuer(t)
			ti.jwksURI = "http://" + closedAddr + "/jwks"
			return ti.srv.URL, ti.token(t, email), nil
		}, "is unreachable or did not publish a valid JWKS", []string{"connection refused", closedPort}},
		{"JWKS: oversized", func(t *testing.T) (string, string, func(*testing.T)) {
			ti := newTestIssuer(t)
			ti.hugeJWKS = true
			return ti.srv.URL, ti.token(t, email), nil
		}, "is unreachable or did not publish a valid JWKS", []string{"larger than allowed"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			iss, token, check := tt.setup(t)
			logs := &syncbuf.Buffer{}
			p, err := NewPool([]IssuerConfig{{URL: iss, Type: TypeEmail}}, nil, Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.Authenticate(context.Background(), token)
			var ae *AuthError
			if !errors.As(err, &ae) {
				t.Fatalf("error %v, want an AuthError", err)
			}
			if want := "identity provider " + iss + " " + tt.want; !strings.Contains(ae.Msg, want) {
				t.Fatalf("message %q, want it to contain %q", ae.Msg, want)
			}
			for _, h := range tt.hidden {
				if strings.Contains(ae.Msg, h) {
					t.Errorf("message %q tells the client %q", ae.Msg, h)
				}
				if !strings.Contains(logs.String(), h) {
					t.Errorf("log lacks the cause %q:\n%s", h, logs.String())
				}
			}
			if check != nil {
				check(t)
			}
		})
	}
}

// FuzzDecodeJWKS: any JWKS bytes and any token either verify with a key
// of the set, giving the token's own payload, or do not; nothing panics.
func FuzzDecodeJWKS(f *testing.F) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	jws, _ := s.Sign([]byte(`{"iss":"x"}`))
	tok, _ := jws.CompactSerialize()
	f.Add(set, tok)
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"AAAA"}]}`), tok)
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"","y":""}]}`), "a.b.c")
	f.Add([]byte(`{"keys":null}`), "")
	f.Fuzz(func(t *testing.T, body []byte, token string) {
		keys, err := decodeJWKS(body)
		if err != nil {
			return
		}
		jws, err := jose.ParseSigned(token, signingAlgs)
		if err != nil || len(jws.Signatures) != 1 {
			return
		}
		k := &cooldownKeySet{}
		if payload, ok := k.tryKeys(jws, jws.Signatures[0].Header.KeyID, keys); ok && !bytes.Equal(payload, jws.UnsafePayloadWithoutVerification()) {
			t.Fatalf("verified payload %q differs from the token's %q", payload, jws.UnsafePayloadWithoutVerification())
		}
	})
}
