package devoidc

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// testIssuer serves an Issuer whose clock the test moves.
func testIssuer(t *testing.T) (*Issuer, *httptest.Server, *time.Time) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	hs := httptest.NewServer(r)
	t.Cleanup(hs.Close)
	iss, err := New(hs.URL+Path, key)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	iss.now = func() time.Time { return now }
	iss.Routes(r)
	return iss, hs, &now
}

// noRedirects stops at the issuer's redirect, as the test plays both the
// browser and the loopback listener.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// claims are the payload of a token the issuer signed (its signature
// checked with the issuer's key).
func claims(t *testing.T, iss *Issuer, tok string) map[string]any {
	t.Helper()
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := jws.Verify(&iss.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func oauthConfig(iss *Issuer, redirect string) *oauth2.Config {
	// One auth style: x/oauth2's auto-detection would retry a refused
	// exchange the other way, and the retry would meet a used code.
	return &oauth2.Config{ClientID: Audience, RedirectURL: redirect, Scopes: []string{"openid", "email"},
		Endpoint: oauth2.Endpoint{AuthURL: iss.url + "/authorize", TokenURL: iss.url + "/token", DeviceAuthURL: iss.url + "/device/code",
			AuthStyle: oauth2.AuthStyleInParams}}
}

// postForm posts the sign-in form as the browser would and returns the
// response without following its redirect.
func postForm(t *testing.T, target string, form url.Values) *http.Response {
	t.Helper()
	resp, err := noRedirects.PostForm(target, form)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// The authorization code flow as x/oauth2 drives it: the form is shown,
// posting it redirects to the loopback URI with a code and the state, the
// code and the PKCE verifier give an ID token for the email typed with
// the login's nonce, and the code works once.
func TestAuthorizationCodeFlow(t *testing.T) {
	iss, _, now := testIssuer(t)
	conf := oauthConfig(iss, "http://127.0.0.1:4711/auth/callback")
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("the-state", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", "the-nonce"),
		oauth2.SetAuthURLParam("login_hint", "hint@example.com"))
	resp, err := http.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `value="hint@example.com"`) || !strings.Contains(string(body), `name="code_challenge"`) {
		t.Fatalf("sign-in form: %d\n%s", resp.StatusCode, body)
	}
	u, _ := url.Parse(authURL)
	form := u.Query()
	form.Set("email", "alice@example.com")
	resp = postForm(t, iss.url+"/authorize", form)
	back, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || err != nil || back.Host != "127.0.0.1:4711" || back.Path != "/auth/callback" || back.Query().Get("state") != "the-state" {
		t.Fatalf("redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	code := back.Query().Get("code")

	if _, err := conf.Exchange(t.Context(), code, oauth2.VerifierOption(oauth2.GenerateVerifier())); err == nil || !strings.Contains(err.Error(), "code_verifier does not match") {
		t.Fatalf("a wrong verifier: %v", err)
	}
	// The failed try used the code up: a stolen code is worth one guess.
	if _, err := conf.Exchange(t.Context(), code, oauth2.VerifierOption(verifier)); err == nil || !strings.Contains(err.Error(), "used already") {
		t.Fatalf("the code after a failed exchange: %v", err)
	}

	// Again, right this time.
	resp = postForm(t, iss.url+"/authorize", form)
	back, _ = url.Parse(resp.Header.Get("Location"))
	tok, err := conf.Exchange(t.Context(), back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	idt, _ := tok.Extra("id_token").(string)
	c := claims(t, iss, idt)
	if c["email"] != "alice@example.com" || c["email_verified"] != true || c["nonce"] != "the-nonce" || c["aud"] != Audience || c["iss"] != iss.url {
		t.Fatalf("claims: %v", c)
	}
	if _, err := conf.Exchange(t.Context(), back.Query().Get("code"), oauth2.VerifierOption(verifier)); err == nil {
		t.Fatal("a code was exchanged twice")
	}

	// A code is bound to its redirect URI and lives GrantLifetime.
	codeFor := func() string {
		resp := postForm(t, iss.url+"/authorize", form)
		back, _ := url.Parse(resp.Header.Get("Location"))
		return back.Query().Get("code")
	}
	other := oauthConfig(iss, "http://127.0.0.1:4712/auth/callback")
	if _, err := other.Exchange(t.Context(), codeFor(), oauth2.VerifierOption(verifier)); err == nil || !strings.Contains(err.Error(), "redirect_uri differs") {
		t.Fatalf("another redirect_uri at the token endpoint: %v", err)
	}
	code = codeFor()
	*now = now.Add(GrantLifetime + time.Second)
	if _, err := conf.Exchange(t.Context(), code, oauth2.VerifierOption(verifier)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("a code older than %v: %v", GrantLifetime, err)
	}

	// Deny goes back to the client as access_denied, with no code.
	deny := u.Query()
	deny.Set("action", "deny")
	resp = postForm(t, iss.url+"/authorize", deny)
	back, _ = url.Parse(resp.Header.Get("Location"))
	if q := back.Query(); resp.StatusCode != http.StatusSeeOther || q.Get("error") != "access_denied" || q.Get("code") != "" || q.Get("state") != "the-state" {
		t.Fatalf("deny: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// The out-of-band redirect (cosign's fallback when it cannot open a
// browser): the page shows the code, which is exchanged with the same
// redirect_uri.
func TestOutOfBandCode(t *testing.T) {
	iss, _, _ := testIssuer(t)
	conf := oauthConfig(iss, oobRedirect)
	verifier := oauth2.GenerateVerifier()
	u, _ := url.Parse(conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
	form := u.Query()
	form.Set("email", "oob@example.com")
	resp := postForm(t, iss.url+"/authorize", form)
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`<code id="code">([^<]+)</code>`).FindSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("out-of-band page: %d\n%s", resp.StatusCode, body)
	}
	tok, err := conf.Exchange(t.Context(), string(m[1]), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if c := claims(t, iss, tok.Extra("id_token").(string)); c["email"] != "oob@example.com" {
		t.Fatalf("claims %v", c)
	}
}

// Bad authorization requests: those whose redirect URI or client cannot be
// trusted are an error page, the others go back to the client as an OAuth
// error, and a bad email shows the form again. Nothing gives a code.
func TestAuthorizationRefusals(t *testing.T) {
	iss, _, _ := testIssuer(t)
	good := func() url.Values {
		return url.Values{"client_id": {Audience}, "response_type": {"code"}, "scope": {"openid email"}, "state": {"s"},
			"redirect_uri": {"http://localhost:9/cb"}, "code_challenge_method": {"S256"}, "code_challenge": {strings.Repeat("a", 43)}}
	}
	for name, tc := range map[string]struct {
		change   func(url.Values)
		status   int
		contains string // in the page, or in the redirect's error_description
	}{
		"remote redirect": {func(v url.Values) { v.Set("redirect_uri", "http://evil.example.com/cb") }, 400, "loopback"},
		"https redirect":  {func(v url.Values) { v.Set("redirect_uri", "https://127.0.0.1/cb") }, 400, "loopback"},
		"other client":    {func(v url.Values) { v.Set("client_id", "someone") }, 400, "not this issuer&#39;s client"},
		"no PKCE":         {func(v url.Values) { v.Del("code_challenge") }, 303, "PKCE is required"},
		"plain PKCE":      {func(v url.Values) { v.Set("code_challenge_method", "plain") }, 303, "PKCE is required"},
		"no openid":       {func(v url.Values) { v.Set("scope", "email") }, 303, "scope must include openid"},
		"implicit flow":   {func(v url.Values) { v.Set("response_type", "id_token") }, 303, "only the authorization code flow"},
		"IPv6 loopback":   {func(v url.Values) { v.Set("redirect_uri", "http://[::1]:9/cb") }, 200, "Sign in"},
		"userinfo":        {func(v url.Values) { v.Set("redirect_uri", "http://evil.example.com@127.0.0.1:9/cb") }, 400, "loopback"},
		"port range":      {func(v url.Values) { v.Set("redirect_uri", "http://127.0.0.1:99999/cb") }, 400, "loopback"},
	} {
		t.Run(name, func(t *testing.T) {
			v := good()
			tc.change(v)
			resp, err := noRedirects.Get(iss.url + "/authorize?" + v.Encode())
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d\n%s", resp.StatusCode, tc.status, body)
			}
			if tc.status == 303 {
				back, _ := url.Parse(resp.Header.Get("Location"))
				if q := back.Query(); q.Get("code") != "" || q.Get("error") == "" || !strings.Contains(q.Get("error_description"), tc.contains) || q.Get("state") != "s" {
					t.Fatalf("redirect %q, want an error containing %q", resp.Header.Get("Location"), tc.contains)
				}
			} else if !strings.Contains(string(body), tc.contains) {
				t.Fatalf("page does not say %q:\n%s", tc.contains, body)
			}
		})
	}
	// A form over the bound is refused as too large.
	big := good()
	big.Set("email", strings.Repeat("a", maxFormBytes))
	if resp := postForm(t, iss.url+"/authorize", big); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("a form over %d bytes: %d", maxFormBytes, resp.StatusCode)
	}
	v := good()
	v.Set("email", "not an email")
	resp := postForm(t, iss.url+"/authorize", v)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.Contains(string(body), "is not an email address") {
		t.Fatalf("a bad email: %d %s", resp.StatusCode, body)
	}
}

// The device flow: pending until the code is approved (typed in any case,
// with or without its dash), then one token with the device's nonce; a
// denied or expired code ends with its RFC 8628 error.
func TestDeviceFlow(t *testing.T) {
	iss, _, now := testIssuer(t)
	conf := oauthConfig(iss, "")
	start := func() (*oauth2.DeviceAuthResponse, string) {
		t.Helper()
		verifier := oauth2.GenerateVerifier()
		da, err := conf.DeviceAuth(t.Context(), oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", "device-nonce"))
		if err != nil {
			t.Fatal(err)
		}
		if len(da.UserCode) != 9 || da.VerificationURI != iss.url+"/device" || !strings.HasSuffix(da.VerificationURIComplete, "user_code="+da.UserCode) || da.Interval != 1 {
			t.Fatalf("device authorization: %+v", da)
		}
		return da, verifier
	}
	poll := func(da *oauth2.DeviceAuthResponse, verifier string) map[string]any {
		t.Helper()
		resp, err := http.PostForm(iss.url+"/token", url.Values{"client_id": {Audience}, "grant_type": {deviceGrantType},
			"device_code": {da.DeviceCode}, "code_verifier": {verifier}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out) //nolint:errcheck
		return out
	}
	answer := func(userCode, email, action string) (int, string) {
		t.Helper()
		resp := postForm(t, iss.url+"/device", url.Values{"user_code": {userCode}, "email": {email}, "action": {action}})
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}

	da, verifier := start()
	if got := poll(da, verifier)["error"]; got != "authorization_pending" {
		t.Fatalf("before approval: %v", got)
	}
	if got := poll(da, verifier)["error"]; got != "slow_down" {
		t.Fatalf("polling at once again: %v", got)
	}
	if status, body := answer("BCDF-GHJK", "bob@example.com", "approve"); status != 400 || !strings.Contains(body, "no device sign-in waits") {
		t.Fatalf("a wrong code: %d %s", status, body)
	}
	typed := strings.ToLower(strings.ReplaceAll(da.UserCode, "-", ""))
	if status, body := answer(typed, "bob@example.com", "approve"); status != 200 || !strings.Contains(body, "Signed in as bob@example.com") {
		t.Fatalf("approval: %d %s", status, body)
	}
	if status, _ := answer(da.UserCode, "mallory@example.com", "approve"); status != 400 {
		t.Fatal("an approved code was approved again")
	}
	*now = now.Add(time.Second)
	if got := poll(da, "wrong verifier")["error"]; got != "invalid_grant" {
		t.Fatalf("a wrong verifier: %v", got)
	}
	da, verifier = start()
	answer(da.UserCode, "bob@example.com", "approve")
	out := poll(da, verifier)
	c := claims(t, iss, out["id_token"].(string))
	if c["email"] != "bob@example.com" || c["nonce"] != "device-nonce" || out["token_type"] != "Bearer" {
		t.Fatalf("token: %v, claims %v", out, c)
	}
	if got := poll(da, verifier)["error"]; got != "invalid_grant" {
		t.Fatalf("the device code used twice: %v", got)
	}

	da, verifier = start()
	if status, body := answer(da.UserCode, "", "deny"); status != 200 || !strings.Contains(body, "denied") {
		t.Fatalf("denial: %d %s", status, body)
	}
	if got := poll(da, verifier)["error"]; got != "access_denied" {
		t.Fatalf("after denial: %v", got)
	}

	da, verifier = start()
	*now = now.Add(GrantLifetime + time.Second)
	if got := poll(da, verifier)["error"]; got != "expired_token" {
		t.Fatalf("after %v: %v", GrantLifetime, got)
	}
}

// Logins under way are bounded: past MaxPendingGrants a new one is refused
// until old ones expire.
func TestPendingGrantsBounded(t *testing.T) {
	iss, _, now := testIssuer(t)
	form := url.Values{"client_id": {Audience}, "scope": {"openid"}}
	status := func() int {
		resp, err := http.PostForm(iss.url+"/device/code", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for range MaxPendingGrants {
		if s := status(); s != http.StatusOK {
			t.Fatalf("under the bound: %d", s)
		}
	}
	if s := status(); s != http.StatusServiceUnavailable {
		t.Fatalf("past the bound: %d", s)
	}
	*now = now.Add(GrantLifetime + time.Second)
	if s := status(); s != http.StatusOK {
		t.Fatalf("after the others expired: %d", s)
	}
}

// Whatever an authorization request holds, parsing it does not panic,
// and one accepted sends codes only to a loopback http address.
func FuzzParseAuthRequest(f *testing.F) {
	f.Add("client_id=sigstore&response_type=code&scope=openid&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&code_challenge_method=S256&code_challenge=" + strings.Repeat("a", 43))
	f.Add("client_id=sigstore&redirect_uri=http%3A%2F%2Flocalhost.evil.com%2Fcb")
	f.Add("client_id=sigstore&redirect_uri=http%3A%2F%2F%5B%3A%3A1%5D%3A9%2F")
	f.Add("client_id=sigstore&redirect_uri=http%3A%2F%2Fuser%40127.0.0.1%40evil.com%2F")
	f.Fuzz(func(t *testing.T, query string) {
		v, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		ar, err := parseAuthRequest(v)
		if err != nil || ar.redirectURI == oobRedirect {
			return
		}
		// Where the browser is sent, as the browser reads the Location.
		w := httptest.NewRecorder()
		ar.answer(w, httptest.NewRequest(http.MethodPost, "http://issuer.test/authorize", nil), map[string]string{"code": "c"})
		loc, err := url.Parse(w.Header().Get("Location"))
		if err != nil || loc.Scheme != "http" || loc.User != nil {
			t.Fatalf("redirect_uri %q sends the browser to %q", ar.redirectURI, w.Header().Get("Location"))
		}
		if h := loc.Hostname(); h != "localhost" && !net.ParseIP(h).IsLoopback() {
			t.Fatalf("redirect_uri %q sends the code to host %q", ar.redirectURI, h)
		}
	})
}
