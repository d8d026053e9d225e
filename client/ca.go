package client

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// CA is a client of a Fulcio-compatible certificate authority.
type CA struct {
	base string
	http *http.Client
}

// NewCA returns a client for the CA at baseURL.
func NewCA(baseURL string) *CA {
	return &CA{base: strings.TrimSuffix(baseURL, "/"), http: &http.Client{Timeout: 30 * time.Second}}
}

// Challenge is what a proof of possession signs for a token: the email if
// the token carries one, else the subject (the rule sigstore clients use).
func Challenge(token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errors.New("identity token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("identity token payload: %w", err)
	}
	var c struct {
		Email         string `json:"email"`
		EmailVerified any    `json:"email_verified"`
		Sub           string `json:"sub"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", fmt.Errorf("identity token claims: %w", err)
	}
	if c.Email != "" {
		if v, ok := c.EmailVerified.(bool); ok && !v {
			return "", errors.New("the token's email is not verified")
		}
		return c.Email, nil
	}
	if c.Sub == "" {
		return "", errors.New("identity token has neither email nor sub")
	}
	return c.Sub, nil
}

// SignChallenge signs the challenge with the key's default digest, as the
// CA verifies it.
func SignChallenge(signer crypto.Signer, challenge string) ([]byte, error) {
	msg := []byte(challenge)
	switch k := signer.Public().(type) {
	case *ecdsa.PublicKey:
		var digest []byte
		var h crypto.Hash
		switch k.Curve {
		case elliptic.P384():
			d := sha512.Sum384(msg)
			digest, h = d[:], crypto.SHA384
		case elliptic.P521():
			d := sha512.Sum512(msg)
			digest, h = d[:], crypto.SHA512
		default:
			d := sha256.Sum256(msg)
			digest, h = d[:], crypto.SHA256
		}
		return signer.Sign(rand.Reader, digest, h)
	case *rsa.PublicKey:
		d := sha256.Sum256(msg)
		return signer.Sign(rand.Reader, d[:], crypto.SHA256)
	default: // Ed25519 signs the message
		return signer.Sign(rand.Reader, msg, crypto.Hash(0))
	}
}

// SigningCertificate asks for a certificate for signer's key, proving
// possession over the token's challenge. It returns the chain, leaf first.
func (c *CA) SigningCertificate(ctx context.Context, token string, signer crypto.Signer) ([]*x509.Certificate, error) {
	challenge, err := Challenge(token)
	if err != nil {
		return nil, err
	}
	proof, err := SignChallenge(signer, challenge)
	if err != nil {
		return nil, fmt.Errorf("signing the proof of possession: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(map[string]any{
		"publicKeyRequest": map[string]any{
			"publicKey":         map[string]any{"content": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))},
			"proofOfPossession": proof,
		},
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/api/v2/signingCert", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("requesting a certificate: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Message string `json:"message"`
		}
		json.Unmarshal(data, &e) //nolint:errcheck
		return nil, &APIError{Status: resp.StatusCode, Message: e.Message}
	}
	var out struct {
		Embedded *struct {
			Chain struct{ Certificates []string } `json:"chain"`
		} `json:"signedCertificateEmbeddedSct"`
		Detached *struct {
			Chain struct{ Certificates []string } `json:"chain"`
		} `json:"signedCertificateDetachedSct"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("decoding the CA's answer: %w", err)
	}
	var pems []string
	switch {
	case out.Embedded != nil:
		pems = out.Embedded.Chain.Certificates
	case out.Detached != nil:
		pems = out.Detached.Chain.Certificates
	}
	if len(pems) == 0 {
		return nil, errors.New("the CA returned no certificate")
	}
	var chain []*x509.Certificate
	for i, p := range pems {
		block, _ := pem.Decode([]byte(p))
		if block == nil {
			return nil, fmt.Errorf("certificate %d of the chain is not PEM", i)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d of the chain: %w", i, err)
		}
		chain = append(chain, cert)
	}
	if !bytes.Equal(chain[0].RawSubjectPublicKeyInfo, der) {
		return nil, errors.New("the CA certified a different key than the one sent")
	}
	return chain, nil
}
