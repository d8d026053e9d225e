package devoidc

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"math/big"
	"net/http"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/signet-dev/signet/internal/loopback"
)

// The two interactive logins. Both end at the token endpoint with an ID
// token for the email typed into a form: the dev issuer approves whoever
// asks, so what is checked here is the protocol (PKCE, redirect, single
// use, expiry), which is what a client tested against it must get right.

const (
	deviceGrantType = "urn:ietf:params:oauth:grant-type:device_code"

	// GrantLifetime bounds how long a login may wait between its steps
	// (form to code exchange, device code to approval).
	GrantLifetime = 5 * time.Minute
	// MaxPendingGrants bounds the logins under way at once; more are
	// refused with 503 until some finish or expire.
	MaxPendingGrants = 1000
	// DevicePollInterval is the interval the device flow asks clients to
	// poll at: short, as a dev login is approved in seconds.
	DevicePollInterval = 1 * time.Second
	// maxFormBytes bounds a login request's form.
	maxFormBytes = 16 << 10
	// userCodeAlphabet has no vowels (no words) and no look-alikes, as RFC
	// 8628 §6.1 suggests; codes are 8 of them, shown as XXXX-XXXX.
	userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"
)

// grants are the logins under way, each used at most once.
type grants struct {
	mu        sync.Mutex
	codes     map[string]*codeGrant   // authorization code → grant
	devices   map[string]*deviceGrant // device code → grant
	userCodes map[string]string       // user code → device code
}

func newGrants() grants {
	return grants{codes: map[string]*codeGrant{}, devices: map[string]*deviceGrant{}, userCodes: map[string]string{}}
}

// codeGrant is an approved authorization request waiting for its code to
// be exchanged.
type codeGrant struct {
	redirectURI, challenge, nonce, email string
	expires                              time.Time
}

// deviceGrant is a device login: pending until its user code is approved
// (email set) or denied.
type deviceGrant struct {
	userCode, challenge, nonce, email string
	denied                            bool
	expires, nextPoll                 time.Time
}

// room sweeps expired grants and says whether one more fits. g.mu is held.
func (g *grants) room(now time.Time) bool {
	for k, c := range g.codes {
		if now.After(c.expires) {
			delete(g.codes, k)
		}
	}
	for k, d := range g.devices {
		if now.After(d.expires) {
			delete(g.devices, k)
			delete(g.userCodes, d.userCode)
		}
	}
	return len(g.codes)+len(g.devices) < MaxPendingGrants
}

var errTooManyGrants = fmt.Errorf("%d logins are under way already; finish one or wait %v for them to expire", MaxPendingGrants, GrantLifetime)

// authRequest is an authorization request's parameters, as the client
// sent them to GET /authorize and as the form posts them back.
type authRequest struct {
	redirectURI, state, nonce, challenge, loginHint string
}

// authRequestError is a bad authorization request whose redirect URI is
// sound: the error goes back to the client there (RFC 6749 §4.1.2.1), so
// the program waiting for it stops and says why.
type authRequestError struct{ code, description string }

func (e *authRequestError) Error() string { return e.code + ": " + e.description }

// parseAuthRequest checks an authorization request. Errors that make the
// redirect URI or the client untrustworthy are plain errors, shown to the
// user; the others are *authRequestError.
func parseAuthRequest(v url.Values) (authRequest, error) {
	if id := v.Get("client_id"); id != Audience {
		return authRequest{}, fmt.Errorf("client_id %q is not this issuer's client: use %q", id, Audience)
	}
	ar := authRequest{redirectURI: v.Get("redirect_uri"), state: v.Get("state"), nonce: v.Get("nonce"),
		challenge: v.Get("code_challenge"), loginHint: v.Get("login_hint")}
	if err := checkRedirect(ar.redirectURI); err != nil {
		return authRequest{}, err
	}
	switch {
	case v.Get("response_type") != "code":
		return ar, &authRequestError{"unsupported_response_type", fmt.Sprintf("response_type %q: only the authorization code flow (code) is offered", v.Get("response_type"))}
	case !slices.Contains(strings.Fields(v.Get("scope")), "openid"):
		return ar, &authRequestError{"invalid_scope", "scope must include openid"}
	case v.Get("code_challenge_method") != "S256" || len(ar.challenge) != 43:
		return ar, &authRequestError{"invalid_request", "PKCE is required: send code_challenge (43 characters) with code_challenge_method=S256"}
	}
	return ar, nil
}

// oobRedirect is the "out of band" redirect URI: no redirect, the page
// shows the code for the user to paste. cosign falls back to it when it
// cannot open a browser.
const oobRedirect = "urn:ietf:wg:oauth:2.0:oob"

// checkRedirect accepts only loopback http redirects (RFC 8252 §7.3) and
// the out-of-band one: the dev issuer hands codes to programs on the
// user's own machine.
func checkRedirect(raw string) error {
	if raw == oobRedirect {
		return nil
	}
	bad := fmt.Errorf("redirect_uri %q must be an http loopback URL (http://127.0.0.1:PORT/..., http://localhost:PORT/...) or %s", raw, oobRedirect)
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.User != nil || u.Fragment != "" || !loopback.IsHost(u.Hostname()) {
		return bad
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return bad
		}
	}
	return nil
}

// hidden is what the sign-in form posts back: the authorization request.
func (ar authRequest) hidden() map[string]string {
	return map[string]string{"client_id": Audience, "response_type": "code", "scope": "openid email",
		"redirect_uri": ar.redirectURI, "state": ar.state, "nonce": ar.nonce,
		"code_challenge": ar.challenge, "code_challenge_method": "S256"}
}

// answer sends the browser back to the client with params added, or, for
// the out-of-band redirect, shows the code (or the error) to paste.
func (ar authRequest) answer(w http.ResponseWriter, r *http.Request, params map[string]string) {
	if ar.redirectURI == oobRedirect {
		if code := params["code"]; code != "" {
			page(w, http.StatusOK, pageData{Title: "Signed in", Message: "Paste this code where the program asks for it:", Code: code})
		} else {
			page(w, http.StatusBadRequest, pageData{Title: "Sign-in refused", Message: params["error"] + ": " + params["error_description"]})
		}
		return
	}
	u, _ := url.Parse(ar.redirectURI) // checked by parseAuthRequest
	q := u.Query()
	for k, v := range params {
		q.Set(k, v)
	}
	if ar.state != "" {
		q.Set("state", ar.state)
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

// authorizeForm is GET /authorize: the sign-in page.
func (i *Issuer) authorizeForm(w http.ResponseWriter, r *http.Request) {
	ar, err := parseAuthRequest(r.URL.Query())
	var are *authRequestError
	if errors.As(err, &are) {
		ar.answer(w, r, map[string]string{"error": are.code, "error_description": are.description})
		return
	}
	if err != nil {
		page(w, http.StatusBadRequest, pageData{Title: "Bad sign-in request", Message: err.Error()})
		return
	}
	page(w, http.StatusOK, pageData{Title: "Sign in to the Signet dev issuer", Action: i.url + "/authorize",
		Hidden: ar.hidden(), Email: ar.loginHint})
}

// authorize is POST /authorize: the form sent, the browser goes back to
// the client with a code for the email typed.
func (i *Issuer) authorize(w http.ResponseWriter, r *http.Request) {
	if status, err := parseForm(w, r); err != nil {
		page(w, status, pageData{Title: "Bad sign-in form", Message: err.Error()})
		return
	}
	ar, err := parseAuthRequest(r.PostForm)
	if err != nil {
		page(w, http.StatusBadRequest, pageData{Title: "Bad sign-in form", Message: err.Error()})
		return
	}
	if r.PostForm.Get("action") == "deny" {
		ar.answer(w, r, map[string]string{"error": "access_denied", "error_description": "the user denied the sign-in"})
		return
	}
	email := strings.TrimSpace(r.PostForm.Get("email"))
	if err := checkEmail(email); err != nil {
		page(w, http.StatusBadRequest, pageData{Title: "Sign in to the Signet dev issuer", Action: i.url + "/authorize",
			Hidden: ar.hidden(), Email: email, Message: err.Error()})
		return
	}
	code := randomToken()
	now := i.now()
	i.grants.mu.Lock()
	ok := i.grants.room(now)
	if ok {
		i.grants.codes[code] = &codeGrant{redirectURI: ar.redirectURI, challenge: ar.challenge, nonce: ar.nonce, email: email, expires: now.Add(GrantLifetime)}
	}
	i.grants.mu.Unlock()
	if !ok {
		page(w, http.StatusServiceUnavailable, pageData{Title: "Busy", Message: errTooManyGrants.Error()})
		return
	}
	ar.answer(w, r, map[string]string{"code": code})
}

// deviceCode is POST /device/code, the device authorization request
// (RFC 8628 §3.1).
func (i *Issuer) deviceCode(w http.ResponseWriter, r *http.Request) {
	if status, err := parseForm(w, r); err != nil {
		oauthError(w, status, "invalid_request", err.Error())
		return
	}
	if id := clientID(r); id != Audience {
		oauthError(w, http.StatusUnauthorized, "invalid_client", fmt.Sprintf("client_id %q is not this issuer's client: use %q", id, Audience))
		return
	}
	challenge := r.PostForm.Get("code_challenge")
	if challenge != "" && (r.PostForm.Get("code_challenge_method") != "S256" || len(challenge) != 43) {
		oauthError(w, http.StatusBadRequest, "invalid_request", "code_challenge must be 43 characters with code_challenge_method=S256")
		return
	}
	deviceCode, userCode := randomToken(), randomUserCode()
	now := i.now()
	i.grants.mu.Lock()
	ok := i.grants.room(now)
	if ok {
		i.grants.devices[deviceCode] = &deviceGrant{userCode: userCode, challenge: challenge, nonce: r.PostForm.Get("nonce"), expires: now.Add(GrantLifetime)}
		i.grants.userCodes[userCode] = deviceCode
	}
	i.grants.mu.Unlock()
	if !ok {
		oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", errTooManyGrants.Error())
		return
	}
	shown := userCode[:4] + "-" + userCode[4:]
	writeJSON(w, http.StatusOK, map[string]any{
		"device_code": deviceCode, "user_code": shown,
		"verification_uri":          i.url + "/device",
		"verification_uri_complete": i.url + "/device?user_code=" + shown,
		"expires_in":                int(GrantLifetime.Seconds()),
		"interval":                  int(DevicePollInterval.Seconds()),
	})
}

// deviceForm is GET /device: where the user approves a device login.
func (i *Issuer) deviceForm(w http.ResponseWriter, r *http.Request) {
	page(w, http.StatusOK, pageData{Title: "Approve a device sign-in", Action: i.url + "/device", Device: true,
		UserCode: r.URL.Query().Get("user_code")})
}

// deviceApprove is POST /device: the user's answer for a user code.
func (i *Issuer) deviceApprove(w http.ResponseWriter, r *http.Request) {
	if status, err := parseForm(w, r); err != nil {
		page(w, status, pageData{Title: "Bad form", Message: err.Error()})
		return
	}
	typed := r.PostForm.Get("user_code")
	userCode := strings.Map(func(c rune) rune {
		if c == '-' || c == ' ' {
			return -1
		}
		return c
	}, strings.ToUpper(typed))
	email := strings.TrimSpace(r.PostForm.Get("email"))
	deny := r.PostForm.Get("action") == "deny"
	retry := pageData{Title: "Approve a device sign-in", Action: i.url + "/device", Device: true, UserCode: typed, Email: email}
	if !deny {
		if err := checkEmail(email); err != nil {
			retry.Message = err.Error()
			page(w, http.StatusBadRequest, retry)
			return
		}
	}
	now := i.now()
	i.grants.mu.Lock()
	d := i.grants.devices[i.grants.userCodes[userCode]]
	found := d != nil && !now.After(d.expires) && d.email == "" && !d.denied
	if found {
		d.denied = deny
		if !deny {
			d.email = email
		}
	}
	i.grants.mu.Unlock()
	switch {
	case !found:
		retry.Message = fmt.Sprintf("no device sign-in waits for the code %q: it was mistyped, already answered, or older than %v", typed, GrantLifetime)
		page(w, http.StatusBadRequest, retry)
	case deny:
		page(w, http.StatusOK, pageData{Title: "Sign-in denied", Message: "The device was refused a token."})
	default:
		page(w, http.StatusOK, pageData{Title: "Signed in", Message: "Signed in as " + email + ". Return to your terminal."})
	}
}

// exchange is POST /token: a code or an approved device code for an ID
// token. Each grant is used at most once, whatever the outcome, so a code
// seen by someone else is useless after the first try.
func (i *Issuer) exchange(w http.ResponseWriter, r *http.Request) {
	if status, err := parseForm(w, r); err != nil {
		oauthError(w, status, "invalid_request", err.Error())
		return
	}
	if id := clientID(r); id != Audience {
		oauthError(w, http.StatusUnauthorized, "invalid_client", fmt.Sprintf("client_id %q is not this issuer's client: use %q", id, Audience))
		return
	}
	f := r.PostForm
	now := i.now()
	var email, nonce, challenge string
	switch gt := f.Get("grant_type"); gt {
	case "authorization_code":
		i.grants.mu.Lock()
		c := i.grants.codes[f.Get("code")]
		delete(i.grants.codes, f.Get("code"))
		i.grants.mu.Unlock()
		switch {
		case c == nil || now.After(c.expires):
			oauthError(w, http.StatusBadRequest, "invalid_grant", "the code is unknown, used already, or expired")
			return
		case f.Get("redirect_uri") != c.redirectURI:
			oauthError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri differs from the authorization request's")
			return
		}
		email, nonce, challenge = c.email, c.nonce, c.challenge
	case deviceGrantType:
		code := f.Get("device_code")
		i.grants.mu.Lock()
		d := i.grants.devices[code]
		var status string
		switch {
		case d == nil:
			status = "invalid_grant"
		case now.After(d.expires):
			status = "expired_token"
		case d.denied:
			status = "access_denied"
		case d.email == "" && now.Before(d.nextPoll):
			status = "slow_down"
		case d.email == "":
			status = "authorization_pending"
			// Half the interval: clients keep to it, give or take a timer.
			d.nextPoll = now.Add(DevicePollInterval / 2)
		}
		// A token is given once; a denied or expired code keeps its answer
		// (for clients that ask twice) until the sweep takes it.
		if status == "" {
			delete(i.grants.devices, code)
			delete(i.grants.userCodes, d.userCode)
		}
		if status == "" {
			email, nonce, challenge = d.email, d.nonce, d.challenge
		}
		i.grants.mu.Unlock()
		if status != "" {
			oauthError(w, http.StatusBadRequest, status, map[string]string{
				"invalid_grant":         "the device code is unknown or used already",
				"expired_token":         "the device code expired before it was approved: start again",
				"access_denied":         "the sign-in was denied",
				"slow_down":             "polled faster than the interval",
				"authorization_pending": "waiting for the user to approve the code",
			}[status])
			return
		}
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", fmt.Sprintf("grant_type %q: use authorization_code or %s", gt, deviceGrantType))
		return
	}
	if challenge != "" {
		sum := sha256.Sum256([]byte(f.Get("code_verifier")))
		if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge)) != 1 {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "code_verifier does not match the code_challenge")
			return
		}
	}
	tok, err := i.token(email, "", nonce)
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	// The access token is the ID token: nothing here takes access tokens,
	// and clients that only look at access_token still get an identity.
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "id_token": tok, "token_type": "Bearer",
		"expires_in": int(TokenLifetime.Seconds()), "scope": "openid email"})
}

// clientID is the client a token request names, in its form or as HTTP
// Basic user (x/oauth2 sends either, depending on its auth style).
func clientID(r *http.Request) string {
	if id, _, ok := r.BasicAuth(); ok {
		return id
	}
	return r.PostForm.Get("client_id")
}

func checkEmail(email string) error {
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email {
		return fmt.Errorf("%q is not an email address: type one such as alice@example.com", email)
	}
	return nil
}

// oauthError answers as RFC 6749 §5.2 says.
func oauthError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}

// parseForm reads a login request's form, at most maxFormBytes. The
// status says whose fault a failure is: 413 for a form too large, else 400.
func parseForm(w http.ResponseWriter, r *http.Request) (int, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	err := r.ParseForm()
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge, fmt.Errorf("the form is larger than %d bytes", maxFormBytes)
	case err != nil:
		return http.StatusBadRequest, err
	}
	return 0, nil
}

// randomToken is a code or device code: 130 random bits.
func randomToken() string { return rand.Text() }

func randomUserCode() string {
	b := make([]byte, 8)
	for k := range b {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(userCodeAlphabet))))
		if err != nil {
			panic(err) // crypto/rand does not fail
		}
		b[k] = userCodeAlphabet[n.Int64()]
	}
	return string(b)
}

type pageData struct {
	Title, Message, Action, Email, UserCode, Code string
	Hidden                                        map[string]string
	Device                                        bool
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: sans-serif; max-width: 36em; margin: 3em auto">
<h1>{{.Title}}</h1>
{{if .Message}}<p id="message">{{.Message}}</p>{{end}}
{{if .Code}}<p><code id="code">{{.Code}}</code></p>{{end}}
{{if .Action}}<p>This is the development issuer of <code>signet-server dev</code>: it signs in
whoever you say you are. Never trust its tokens outside development.</p>
<form method="post" action="{{.Action}}">
{{range $k, $v := .Hidden}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}{{if .Device}}<p><label>Code shown by the device <input name="user_code" id="user_code" value="{{.UserCode}}" required></label></p>
{{end}}<p><label>Email <input type="email" name="email" id="email" value="{{.Email}}" autofocus></label></p>
<p><button type="submit" name="action" value="approve" id="approve">Sign in</button>
<button type="submit" name="action" value="deny" id="deny" formnovalidate>Deny</button></p>
</form>{{end}}
</body></html>
`))

func page(w http.ResponseWriter, status int, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// The form posts codes and emails: no framing by other sites.
	w.Header().Set("X-Frame-Options", "DENY")
	// No form-action: the form posts here, and the redirect after it goes
	// to a loopback URI checked above, which CSP cannot spell for every
	// loopback address.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.WriteHeader(status)
	pageTemplate.Execute(w, d) //nolint:errcheck // the client went away
}
