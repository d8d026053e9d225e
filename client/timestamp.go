package client

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/sigstore/timestamp-authority/v2/pkg/verification"

	"github.com/signet-dev/signet/timestamp"
)

// TSA is a client of an RFC 3161 timestamp authority.
type TSA struct {
	url  string
	http *http.Client
}

// NewTSA returns a client posting to the full timestamp URL
// (e.g. http://127.0.0.1:8080/api/v1/timestamp).
func NewTSA(url string) *TSA {
	return &TSA{url: url, http: &http.Client{Timeout: 30 * time.Second}}
}

// TimestampRequest says what to ask for.
type TimestampRequest struct {
	Hash    crypto.Hash
	Digest  []byte
	Nonce   bool // send a random nonce
	CertReq bool // ask for the signing certificate in the token
}

// Stamped is a response and the nonce it must echo.
type Stamped struct {
	Response []byte
	Nonce    *big.Int
}

// Timestamp sends a DER request and returns the DER response.
func (c *TSA) Timestamp(ctx context.Context, r TimestampRequest) (*Stamped, error) {
	var nonce *big.Int
	if r.Nonce {
		var err error
		if nonce, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 63)); err != nil {
			return nil, err
		}
	}
	der, err := timestamp.MarshalRequest(r.Hash, r.Digest, nil, nonce, r.CertReq)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(der))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/timestamp-query")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("requesting a timestamp: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		msg := strings.TrimSpace(string(body))
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/timestamp-reply") {
			msg = "the TSA rejected the request (RFC 3161 rejection)"
		}
		return nil, &APIError{Status: resp.StatusCode, Message: msg}
	}
	return &Stamped{Response: body, Nonce: nonce}, nil
}

// VerifyTimestamp checks a response for artifact against a TSA chain
// (signing certificate first, root last), with Sigstore's verification
// library: signature, imprint, ESSCertIDv2, critical timeStamping EKU,
// chain to the root, and the nonce when one was sent.
func VerifyTimestamp(resp []byte, artifact io.Reader, chain []*x509.Certificate, nonce *big.Int) (time.Time, error) {
	if len(chain) < 2 {
		return time.Time{}, fmt.Errorf("the TSA chain needs the signing certificate and a root, got %d certificates", len(chain))
	}
	ts, err := verification.VerifyTimestampResponse(resp, artifact, verification.VerifyOpts{
		TSACertificate: chain[0], Intermediates: chain[1 : len(chain)-1], Roots: chain[len(chain)-1:], Nonce: nonce,
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp does not verify: %w", err)
	}
	return ts.Time, nil
}

// FetchTSAChain downloads a TSA's PEM chain (trust on first use: pin it for
// verification rather than fetching it each time).
func FetchTSAChain(ctx context.Context, url string) ([]byte, error) {
	return Fetch(ctx, url, 1<<20)
}

// Fetch GETs url and returns the body, refusing one over limit bytes.
func Fetch(ctx context.Context, url string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &APIError{Status: resp.StatusCode, Message: "fetching " + url}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", url, err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", url, limit)
	}
	return body, nil
}
