package oidclogin

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/signet-dev/signet/ca/devoidc"
	"github.com/signet-dev/signet/internal/syncbuf"
)

// devIssuer is Signet's dev issuer: a real OIDC provider with both flows.
func devIssuer(t *testing.T) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	hs := httptest.NewServer(r)
	t.Cleanup(hs.Close)
	iss, err := devoidc.New(hs.URL+devoidc.Path, key)
	if err != nil {
		t.Fatal(err)
	}
	iss.Routes(r)
	return iss.URL()
}

// emailOf is the email claim of a token (its signature was checked by
// the code under test).
func emailOf(t *testing.T, tok string) string {
	t.Helper()
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Email string }
	json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c) //nolint:errcheck
	return c.Email
}

// browserAs plays a browser and its user: open the sign-in page, type the
// email, post the form, follow the redirect to the loopback listener.
func browserAs(email string, seen *string) func(string) error {
	return func(authURL string) error {
		*seen = authURL
		resp, err := http.Get(authURL)
		if err != nil {
			return err
		}
		resp.Body.Close()
		u, _ := url.Parse(authURL)
		form := u.Query()
		form.Set("email", email)
		resp, err = http.PostForm(strings.TrimSuffix(authURL, "?"+u.RawQuery), form)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), "Signed in") {
			return fmt.Errorf("the listener answered %d: %s", resp.StatusCode, body)
		}
		return nil
	}
}

func TestBrowser(t *testing.T) {
	issuer := devIssuer(t)
	var out syncbuf.Buffer
	var seen string
	tok, err := Browser(t.Context(), Config{Issuer: issuer, Out: &out, OpenBrowser: browserAs("carol@example.com", &seen)})
	if err != nil {
		t.Fatal(err)
	}
	if got := emailOf(t, tok); got != "carol@example.com" {
		t.Fatalf("token for %q", got)
	}
	u, _ := url.Parse(seen)
	q := u.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("client_id") != DefaultClientID || !strings.HasPrefix(q.Get("redirect_uri"), "http://127.0.0.1:") || q.Get("nonce") == "" {
		t.Fatalf("authorization request %s", seen)
	}
	if !strings.Contains(out.String(), seen) {
		t.Fatalf("the URL was not printed for the user:\n%s", out.String())
	}
}

// The listener takes only this login's state, and the token only with
// this login's nonce: a browser sent back by another page, or a token from
// another login, does not sign anyone in.
func TestBrowserRefusesOtherLogins(t *testing.T) {
	issuer := devIssuer(t)
	var seen string
	signIn := browserAs("carol@example.com", &seen)
	// First a callback with another state (a page that sends the browser
	// to the listener), then the real sign-in.
	withForgedCallback := func(authURL string) error {
		u, _ := url.Parse(authURL)
		resp, err := http.Get(u.Query().Get("redirect_uri") + "?state=forged&code=forged")
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "not the sign-in that was started") {
			return fmt.Errorf("a forged callback: %d %s", resp.StatusCode, body)
		}
		return signIn(authURL)
	}
	tok, err := Browser(t.Context(), Config{Issuer: issuer, OpenBrowser: withForgedCallback})
	if err != nil || emailOf(t, tok) != "carol@example.com" {
		t.Fatalf("after a forged callback: %v", err)
	}
	// The browser is sent with another login's nonce: the token it gets
	// carries that nonce, and is refused.
	otherNonce := func(authURL string) error {
		u, _ := url.Parse(authURL)
		q := u.Query()
		q.Set("nonce", "another-login")
		u.RawQuery = q.Encode()
		return signIn(u.String())
	}
	if _, err := Browser(t.Context(), Config{Issuer: issuer, OpenBrowser: otherNonce}); err == nil || !strings.Contains(err.Error(), "nonce is not this login's") {
		t.Fatalf("a token with another nonce: %v", err)
	}
}

// Login secrets never travel in clear: an http issuer that is not this
// machine is refused before anything is sent.
func TestCleartextIssuerRefused(t *testing.T) {
	for _, f := range []func(context.Context, Config) (string, error){Browser, Device} {
		if _, err := f(t.Context(), Config{Issuer: "http://issuer.example.com/oidc"}); err == nil || !strings.Contains(err.Error(), "is not https") {
			t.Fatalf("an http issuer: %v", err)
		}
	}
}

// Nobody signs in: the login ends with the context, saying what it
// waited for.
func TestBrowserNobodyComes(t *testing.T) {
	issuer := devIssuer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	_, err := Browser(ctx, Config{Issuer: issuer, Out: io.Discard})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "waiting for the sign-in in the browser") {
		t.Fatalf("got %v", err)
	}
}

var userCode = regexp.MustCompile(`confirm the code ([A-Z]{4}-[A-Z]{4})`)

// The device flow with a user who approves (or denies) the printed code on
// the issuer's page.
func TestDevice(t *testing.T) {
	issuer := devIssuer(t)
	for _, tc := range []struct {
		action, want string
	}{{"approve", "dave@example.com"}, {"deny", "access_denied"}} {
		t.Run(tc.action, func(t *testing.T) {
			var out syncbuf.Buffer
			type result struct {
				tok string
				err error
			}
			done := make(chan result, 1)
			go func() {
				tok, err := Device(t.Context(), Config{Issuer: issuer, Out: &out})
				done <- result{tok, err}
			}()
			var code string
			for deadline := time.Now().Add(10 * time.Second); code == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				if m := userCode.FindStringSubmatch(out.String()); m != nil {
					code = m[1]
				}
			}
			if code == "" {
				t.Fatalf("no code printed:\n%s", out.String())
			}
			resp, err := http.PostForm(issuer+"/device", url.Values{"user_code": {code}, "email": {"dave@example.com"}, "action": {tc.action}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			r := <-done
			if tc.action == "approve" {
				if r.err != nil || emailOf(t, r.tok) != tc.want {
					t.Fatalf("%v %q", r.err, r.tok)
				}
			} else if r.err == nil || !strings.Contains(r.err.Error(), tc.want) {
				t.Fatalf("denied: %v", r.err)
			}
		})
	}
}

// A client the provider does not know is refused at the first step.
func TestUnknownClient(t *testing.T) {
	_, err := Device(t.Context(), Config{Issuer: devIssuer(t), ClientID: "someone", Out: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Fatalf("got %v", err)
	}
}
