// Package oidclogin gets an ID token from an OIDC provider with the user
// in the loop: the browser flow (authorization code with PKCE, the code
// coming back to a listener on the loopback interface, RFC 8252) or, where
// no browser runs, the device authorization flow (RFC 8628). Either
// returns the raw ID token after checking it was signed by the issuer for
// this client and this login (nonce). The token is held in memory only.
package oidclogin

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/signet-dev/signet/internal/loopback"
)

// DefaultClientID is the client public Sigstore instances and cosign use.
const DefaultClientID = "sigstore"

// Config names the provider and how to talk to the user.
type Config struct {
	Issuer   string
	ClientID string // DefaultClientID when empty
	// HTTP talks to the provider; http.DefaultClient when nil.
	HTTP *http.Client
	// Out gets the instructions for the user (the URL to open, the code to
	// type).
	Out io.Writer
	// OpenBrowser opens a URL in the user's browser; when nil or failing,
	// the user opens the printed URL.
	OpenBrowser func(url string) error
}

// provider is the discovered provider and its OAuth configuration.
type provider struct {
	*oidc.Provider
	oauth *oauth2.Config
	ctx   context.Context // carries the HTTP client for x/oauth2 and go-oidc
}

func (c *Config) discover(ctx context.Context) (*provider, error) {
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.HTTP != nil {
		ctx = oidc.ClientContext(ctx, c.HTTP)
	}
	// Codes, verifiers and tokens cross these: https, or this machine.
	if err := loopback.RequireTLS("the OIDC provider", c.Issuer); err != nil {
		return nil, err
	}
	p, err := oidc.NewProvider(ctx, c.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discovering the OIDC provider %s: %w", c.Issuer, err)
	}
	ep := p.Endpoint()
	for what, u := range map[string]string{"authorization endpoint": ep.AuthURL, "token endpoint": ep.TokenURL, "device authorization endpoint": ep.DeviceAuthURL} {
		if u == "" {
			continue
		}
		if err := loopback.RequireTLS("the provider's "+what, u); err != nil {
			return nil, err
		}
	}
	// A public client names itself in the form (RFC 6749 §2.3.1, RFC 8628
	// §3.4). x/oauth2's auto-detection would first try HTTP Basic and, on
	// any refusal, ask again the other way: one request per step instead.
	ep.AuthStyle = oauth2.AuthStyleInParams
	return &provider{Provider: p, ctx: ctx, oauth: &oauth2.Config{
		ClientID: c.ClientID, Endpoint: ep, Scopes: []string{oidc.ScopeOpenID, "email"},
	}}, nil
}

// idToken takes the ID token out of a token response and checks it: the
// issuer's signature, this client as audience, not expired, and, when the
// login sent one (the browser flow), the nonce of this login, so a token
// from another login cannot be slipped in.
func (p *provider) idToken(tok *oauth2.Token, nonce string) (string, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return "", errors.New("the provider's token response has no id_token")
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: p.oauth.ClientID}).Verify(p.ctx, raw)
	if err != nil {
		return "", fmt.Errorf("checking the ID token: %w", err)
	}
	if nonce != "" && idt.Nonce != nonce {
		return "", errors.New("the ID token's nonce is not this login's: refusing it")
	}
	return raw, nil
}

// Browser runs the authorization code flow with PKCE: a listener on
// 127.0.0.1 receives the code, the browser is opened (or the URL printed),
// and the code is exchanged for the ID token. ctx bounds the whole login.
func Browser(ctx context.Context, c Config) (string, error) {
	p, err := c.discover(ctx)
	if err != nil {
		return "", err
	}
	if p.oauth.Endpoint.AuthURL == "" {
		return "", fmt.Errorf("the OIDC provider %s offers no authorization endpoint: use the device flow", c.Issuer)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("listening for the login's redirect: %w", err)
	}
	defer ln.Close()
	p.oauth.RedirectURL = "http://" + ln.Addr().String() + "/auth/callback"
	verifier, state, nonce := oauth2.GenerateVerifier(), rand.Text(), rand.Text()

	type result struct {
		code string
		err  error
	}
	got := make(chan result, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/auth/callback" {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		// Another page may send the browser here: only this login's state counts.
		if q.Get("state") != state {
			http.Error(w, "this is not the sign-in that was started", http.StatusBadRequest)
			return
		}
		res := result{code: q.Get("code")}
		if e := q.Get("error"); e != "" {
			res.err = fmt.Errorf("the OIDC provider refused the login: %s: %s", e, q.Get("error_description"))
		} else if res.code == "" {
			res.err = errors.New("the OIDC provider sent the browser back without a code")
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if res.err != nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, "<!doctype html><title>Sign-in failed</title><p>Sign-in failed: %s</p>", html.EscapeString(res.err.Error()))
		} else {
			fmt.Fprint(w, "<!doctype html><title>Signed in</title><p>Signed in. You can close this tab and return to your terminal.</p>")
		}
		select {
		case got <- res:
		default: // answered already
		}
	})}
	go srv.Serve(ln) //nolint:errcheck // ends with Shutdown
	defer func() {
		// Shutdown, not Close: the page answering the browser is sent
		// whole before the listener goes.
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx) //nolint:errcheck
	}()

	authURL := p.oauth.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))
	fmt.Fprintf(c.Out, "Sign in with %s in your browser. If it does not open, visit:\n\n  %s\n\n", c.Issuer, authURL)
	if c.OpenBrowser != nil {
		if err := c.OpenBrowser(authURL); err != nil {
			fmt.Fprintf(c.Out, "(could not open a browser: %v)\n", err)
		}
	}
	var res result
	select {
	case res = <-got:
	case <-ctx.Done():
		return "", fmt.Errorf("waiting for the sign-in in the browser: %w", ctx.Err())
	}
	if res.err != nil {
		return "", res.err
	}
	tok, err := p.oauth.Exchange(p.ctx, res.code, oauth2.VerifierOption(verifier))
	if err != nil {
		return "", fmt.Errorf("exchanging the login's code for a token: %w", err)
	}
	return p.idToken(tok, nonce)
}

// Device runs the device authorization flow: the user opens the printed
// URL anywhere (another machine, a phone) and types the code; meanwhile
// the token endpoint is polled at the interval the provider asks for.
// PKCE is used as well, as Sigstore's clients do. RFC 8628 has no nonce,
// and providers (Dex, Google) put none in device tokens: the device code,
// known only to this program, is what ties the token to this login. ctx
// bounds the login.
func Device(ctx context.Context, c Config) (string, error) {
	p, err := c.discover(ctx)
	if err != nil {
		return "", err
	}
	if p.oauth.Endpoint.DeviceAuthURL == "" {
		return "", fmt.Errorf("the OIDC provider %s offers no device authorization endpoint (device_authorization_endpoint): use the browser flow, or pass a token", c.Issuer)
	}
	verifier := oauth2.GenerateVerifier()
	da, err := p.oauth.DeviceAuth(p.ctx, oauth2.S256ChallengeOption(verifier))
	if err != nil {
		return "", fmt.Errorf("starting the device sign-in: %w", err)
	}
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(c.Out, "To sign in, visit\n\n  %s\n\nand confirm the code %s (or visit %s and type it).\n", da.VerificationURIComplete, da.UserCode, da.VerificationURI)
	} else {
		fmt.Fprintf(c.Out, "To sign in, visit\n\n  %s\n\nand type the code %s\n", da.VerificationURI, da.UserCode)
	}
	tok, err := p.oauth.DeviceAccessToken(p.ctx, da, oauth2.VerifierOption(verifier))
	switch {
	case err == nil:
		return p.idToken(tok, "")
	case ctx.Err() != nil:
		return "", fmt.Errorf("waiting for the device sign-in: %w", ctx.Err())
	case errors.Is(err, context.DeadlineExceeded):
		// x/oauth2 stops polling when the code's expires_in runs out.
		return "", fmt.Errorf("the code %s expired before the sign-in was confirmed: start again", da.UserCode)
	}
	return "", fmt.Errorf("waiting for the device sign-in: %w", err)
}
