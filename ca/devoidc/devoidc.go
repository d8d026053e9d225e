// Package devoidc is the development OIDC issuer of `signet-server dev`:
// discovery and JWKS under <base>/dev/oidc, a token endpoint that signs
// whatever identity is asked for, and the two interactive logins clients
// use (login.go): authorization code with PKCE on a loopback redirect, and
// the device authorization grant (RFC 8628). Every login is approved for
// the email typed into its form. It exists only in dev mode.
package devoidc

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/mail"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-chi/chi/v5"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/signet-dev/signet/internal/httpjson"
)

// Path is where the issuer lives under the instance's base URL.
const Path = "/dev/oidc"

// Audience is the aud of every token, the CA's default client ID.
const Audience = "sigstore"

// TokenLifetime is how long a dev token is valid.
const TokenLifetime = 10 * time.Minute

// Issuer signs dev tokens with an RSA key.
type Issuer struct {
	url    string
	key    *rsa.PrivateKey
	kid    string
	signer jose.Signer
	now    func() time.Time
	grants grants // logins under way (login.go)
}

// New makes the issuer whose iss is url (the base URL + Path).
func New(url string, key *rsa.PrivateKey) (*Issuer, error) {
	sum := sha256.Sum256(key.PublicKey.N.Bytes())
	kid := hex.EncodeToString(sum[:8])
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		return nil, fmt.Errorf("dev OIDC signer: %w", err)
	}
	return &Issuer{url: url, key: key, kid: kid, signer: signer, now: time.Now, grants: newGrants()}, nil
}

// URL is the issuer (iss) URL.
func (i *Issuer) URL() string { return i.url }

// KeySet verifies this issuer's tokens without an HTTP round trip.
func (i *Issuer) KeySet() oidc.KeySet {
	return &oidc.StaticKeySet{PublicKeys: []crypto.PublicKey{&i.key.PublicKey}}
}

// Token signs an RS256 ID token. With an email, sub is the email and the
// email is verified; with only a sub, there is no email claim.
func (i *Issuer) Token(email, sub string) (string, error) {
	return i.token(email, sub, "")
}

// token is Token with the nonce a login was started with, if any.
func (i *Issuer) token(email, sub, nonce string) (string, error) {
	if email == "" && sub == "" {
		return "", fmt.Errorf("give email or sub")
	}
	now := i.now()
	claims := map[string]any{
		"iss": i.url, "aud": Audience,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(TokenLifetime).Unix(),
	}
	if email != "" {
		if a, err := mail.ParseAddress(email); err != nil || a.Address != email {
			return "", fmt.Errorf("email %q is not an email address", email)
		}
		claims["email"] = email
		claims["email_verified"] = true
		claims["sub"] = email
	}
	if sub != "" {
		claims["sub"] = sub
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := i.signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// Routes mounts discovery, JWKS, the token endpoint and the login pages
// under Path.
func (i *Issuer) Routes(r chi.Router) {
	r.Get(Path+"/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{
			"issuer": i.url, "jwks_uri": i.url + "/jwks", "token_endpoint": i.url + "/token",
			"authorization_endpoint":                i.url + "/authorize",
			"device_authorization_endpoint":         i.url + "/device/code",
			"response_types_supported":              []string{"code"},
			"grant_types_supported":                 []string{"authorization_code", deviceGrantType},
			"code_challenge_methods_supported":      []string{"S256"},
			"token_endpoint_auth_methods_supported": []string{"none"},
			"scopes_supported":                      []string{"openid", "email"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"claims_supported":                      []string{"iss", "sub", "aud", "exp", "iat", "nonce", "email", "email_verified"},
		})
	})
	r.Get(Path+"/jwks", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &i.key.PublicKey, KeyID: i.kid, Algorithm: "RS256", Use: "sig"}}})
	})
	// GET /token?email= is the shortcut for scripts and tests; POST /token
	// is OAuth's token endpoint, ending both logins.
	r.Get(Path+"/token", func(w http.ResponseWriter, r *http.Request) {
		tok, err := i.Token(r.URL.Query().Get("email"), r.URL.Query().Get("sub"))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"code": 400, "message": "dev token: " + err.Error() + " (use ?email=alice@example.com or ?sub=alice)"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"id_token": tok})
	})
	r.Post(Path+"/token", i.exchange)
	r.Get(Path+"/authorize", i.authorizeForm)
	r.Post(Path+"/authorize", i.authorize)
	r.Post(Path+"/device/code", i.deviceCode)
	r.Get(Path+"/device", i.deviceForm)
	r.Post(Path+"/device", i.deviceApprove)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Cache-Control", "no-store") // tokens
	httpjson.Write(w, status, v)
}
