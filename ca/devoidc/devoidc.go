// Package devoidc is the development OIDC issuer of `signet-server dev`:
// discovery and JWKS under <base>/dev/oidc and a token endpoint that signs
// whatever identity is asked for. It exists only in dev mode.
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
}

// New makes the issuer whose iss is url (the base URL + Path).
func New(url string, key *rsa.PrivateKey) (*Issuer, error) {
	sum := sha256.Sum256(key.PublicKey.N.Bytes())
	kid := hex.EncodeToString(sum[:8])
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		return nil, fmt.Errorf("dev OIDC signer: %w", err)
	}
	return &Issuer{url: url, key: key, kid: kid, signer: signer, now: time.Now}, nil
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

// Routes mounts discovery, JWKS and the token endpoint under Path.
func (i *Issuer) Routes(r chi.Router) {
	r.Get(Path+"/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{
			"issuer": i.url, "jwks_uri": i.url + "/jwks", "token_endpoint": i.url + "/token",
			"authorization_endpoint":                i.url + "/authorize",
			"response_types_supported":              []string{"id_token"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"claims_supported":                      []string{"iss", "sub", "aud", "exp", "iat", "email", "email_verified"},
		})
	})
	r.Get(Path+"/jwks", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &i.key.PublicKey, KeyID: i.kid, Algorithm: "RS256", Use: "sig"}}})
	})
	r.Get(Path+"/token", func(w http.ResponseWriter, r *http.Request) {
		tok, err := i.Token(r.URL.Query().Get("email"), r.URL.Query().Get("sub"))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"code": 400, "message": "dev token: " + err.Error() + " (use ?email=alice@example.com or ?sub=alice)"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"id_token": tok})
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Cache-Control", "no-store") // tokens
	httpjson.Write(w, status, v)
}
