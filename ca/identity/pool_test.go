package identity

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// testIssuer is a real OIDC issuer over HTTP: discovery and JWKS.
type testIssuer struct {
	srv        *httptest.Server
	key        *rsa.PrivateKey
	jwksHits   atomic.Int32
	hugeJWKS   bool
	redirectTo string
}

func newTestIssuer(t *testing.T) *testIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ti := &testIssuer{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		if ti.redirectTo != "" {
			http.Redirect(w, r, ti.redirectTo+"/.well-known/openid-configuration", http.StatusFound)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"issuer": ti.srv.URL, "jwks_uri": ti.srv.URL + "/jwks", "id_token_signing_alg_values_supported": []string{"RS256"}}) //nolint:errcheck
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		ti.jwksHits.Add(1)
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

func TestDiscoveryRefusesCrossHostRedirectAndHugeJWKS(t *testing.T) {
	ctx := context.Background()
	t.Run("redirect", func(t *testing.T) {
		ti := newTestIssuer(t)
		other := newTestIssuer(t)
		ti.redirectTo = other.srv.URL
		_, err := pool(t, IssuerConfig{URL: ti.srv.URL, Type: TypeEmail}).Authenticate(ctx, ti.token(t, map[string]any{"email": "a@example.com", "email_verified": true}))
		if err == nil || !strings.Contains(err.Error(), "refusing redirect") {
			t.Fatalf("error %v, want the redirect refused", err)
		}
	})
	t.Run("oversized JWKS", func(t *testing.T) {
		ti := newTestIssuer(t)
		ti.hugeJWKS = true
		_, err := pool(t, IssuerConfig{URL: ti.srv.URL, Type: TypeEmail}).Authenticate(ctx, ti.token(t, map[string]any{"email": "a@example.com", "email_verified": true}))
		if err == nil || !strings.Contains(err.Error(), "larger than allowed") {
			t.Fatalf("error %v, want the JWKS refused for size", err)
		}
	})
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
