// Package pki parses the public keys and certificates that entries carry and
// produces their canonical PEM and search subjects, as Rekor does for "x509"
// verifiers.
package pki

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// MaxChain is the most certificates accepted in one verifier.
const MaxChain = 10

// MaxRSABits bounds an RSA key's modulus: a signature check's cost grows
// with its square, and neither crypto/x509 nor sigstore bounds it (a 64 KiB
// modulus costs seconds a check). 8192 is twice what Sigstore's clients
// make.
const MaxRSABits = 8192

// CheckKey refuses keys whose checks would cost the server seconds. Kinds
// that read keys without ParseVerifier (jar's signature blocks, TUF's
// keys) call it themselves.
func CheckKey(k crypto.PublicKey) error {
	if r, ok := k.(*rsa.PublicKey); ok && r.N.BitLen() > MaxRSABits {
		return fmt.Errorf("%d-bit RSA key: at most %d bits", r.N.BitLen(), MaxRSABits)
	}
	return nil
}

// Verifier is a PEM public key, a certificate, or a certificate chain (leaf first).
type Verifier struct {
	Key   crypto.PublicKey
	Certs []*x509.Certificate
}

// ParseVerifier reads a PEM PUBLIC KEY, CERTIFICATE, or up to MaxChain
// concatenated certificates.
func ParseVerifier(data []byte) (*Verifier, error) {
	trimmed := bytes.TrimSpace(data)
	block, rest := pem.Decode(trimmed)
	if block == nil {
		return nil, errors.New("invalid public key: not PEM")
	}
	if len(rest) > 0 {
		certs, err := cryptoutils.UnmarshalCertificatesFromPEMLimited(trimmed, MaxChain)
		if err != nil {
			return nil, fmt.Errorf("invalid certificate chain: %w", err)
		}
		for i, c := range certs {
			if err := CheckKey(c.PublicKey); err != nil {
				return nil, fmt.Errorf("invalid certificate chain: certificate %d: %w", i, err)
			}
		}
		for i := 0; i+1 < len(certs); i++ {
			if err := certs[i].CheckSignatureFrom(certs[i+1]); err != nil {
				return nil, fmt.Errorf("invalid certificate chain: certificate %d is not signed by certificate %d: %w", i, i+1, err)
			}
		}
		return &Verifier{Key: certs[0].PublicKey, Certs: certs}, nil
	}
	switch block.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("invalid public key: %w", err)
		}
		if err := CheckKey(k); err != nil {
			return nil, fmt.Errorf("invalid public key: %w", err)
		}
		return &Verifier{Key: k}, nil
	case "CERTIFICATE":
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("invalid certificate: %w", err)
		}
		if err := CheckKey(c.PublicKey); err != nil {
			return nil, fmt.Errorf("invalid certificate: %w", err)
		}
		return &Verifier{Key: c.PublicKey, Certs: []*x509.Certificate{c}}, nil
	}
	return nil, fmt.Errorf("invalid public key: PEM type %q is neither PUBLIC KEY nor CERTIFICATE", block.Type)
}

// CanonicalPEM re-encodes the verifier as Rekor stores it in leaves.
func (v *Verifier) CanonicalPEM() ([]byte, error) {
	switch {
	case len(v.Certs) > 1:
		return cryptoutils.MarshalCertificatesToPEM(v.Certs)
	case len(v.Certs) == 1:
		return cryptoutils.MarshalCertificateToPEM(v.Certs[0])
	default:
		return cryptoutils.MarshalPublicKeyToPEM(v.Key)
	}
}

// Subjects are the leaf certificate's SANs (email, URI, DNS, IP, otherName);
// none for a bare key.
func (v *Verifier) Subjects() []string {
	if len(v.Certs) == 0 {
		return nil
	}
	return cryptoutils.GetSubjectAlternateNames(v.Certs[0])
}
