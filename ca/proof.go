package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/signet-dev/signet/internal/sigalg"
)

// RequestError is a key, proof or CSR the client got wrong (HTTP 400).
type RequestError struct{ Msg string }

func (e *RequestError) Error() string { return e.Msg }

func reqErr(format string, args ...any) error {
	return &RequestError{Msg: fmt.Sprintf(format, args...)}
}

// DefaultAlgorithms are the pairs Fulcio accepts by default.
var DefaultAlgorithms = []sigalg.Algorithm{sigalg.P256SHA256, sigalg.P384SHA384, sigalg.P521SHA512, sigalg.RSA2048SHA256, sigalg.RSA3072SHA256, sigalg.RSA4096SHA256, sigalg.Ed25519}

// ParsePublicKey reads a PEM PUBLIC KEY or a DER SubjectPublicKeyInfo.
func ParsePublicKey(content []byte) (crypto.PublicKey, error) {
	der := content
	if block, _ := pem.Decode(bytes.TrimSpace(content)); block != nil {
		if block.Type != "PUBLIC KEY" {
			return nil, reqErr("the public key is PEM %q; send a PUBLIC KEY", block.Type)
		}
		der = block.Bytes
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, reqErr("the public key could not be parsed (want PEM or DER SubjectPublicKeyInfo): %v", err)
	}
	if err := ValidatePublicKey(pub); err != nil {
		return nil, reqErr("the public key is insecure: %v", err)
	}
	return pub, nil
}

// defaultHash is the digest clients use with a key: what sigstore's
// LoadDefaultVerifier picks.
func defaultHash(pub crypto.PublicKey) crypto.Hash {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P384():
			return crypto.SHA384
		case elliptic.P521():
			return crypto.SHA512
		}
		return crypto.SHA256
	case *rsa.PublicKey:
		return crypto.SHA256
	}
	return 0 // Ed25519 signs the message itself
}

// VerifyProof checks that proof is a signature by pub over one of the
// principal's challenges (a verified email first, else sub, as clients
// choose), with the key's default digest.
func VerifyProof(pub crypto.PublicKey, challenges []string, proof []byte, allowed sigalg.Set) error {
	if err := allowed.Check(pub, defaultHash(pub)); err != nil {
		return reqErr("%v on this CA", err)
	}
	if len(proof) == 0 {
		return reqErr("proofOfPossession is required: a signature over the token's email or subject")
	}
	v, err := signature.LoadDefaultVerifier(pub)
	if err != nil {
		return reqErr("the public key cannot verify signatures: %v", err)
	}
	for _, c := range challenges {
		if v.VerifySignature(bytes.NewReader(proof), strings.NewReader(c)) == nil {
			return nil
		}
	}
	return reqErr("proof of possession does not verify for subject %s", strings.Join(quoteAll(challenges), " or "))
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// ParseCSR reads a PEM PKCS#10 request and checks its self-signature; only
// its key is used (subject, SANs and extensions are ignored, as Fulcio does).
func ParseCSR(pemBytes []byte, allowed sigalg.Set) (crypto.PublicKey, error) {
	block, _ := pem.Decode(bytes.TrimSpace(pemBytes))
	if block == nil || (block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST") {
		return nil, reqErr("the certificate signing request could not be parsed: want PEM CERTIFICATE REQUEST")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, reqErr("the certificate signing request could not be parsed: %v", err)
	}
	if err := ValidatePublicKey(csr.PublicKey); err != nil {
		return nil, reqErr("the public key is insecure: %v", err)
	}
	var h crypto.Hash
	switch csr.SignatureAlgorithm {
	case x509.SHA256WithRSA, x509.ECDSAWithSHA256:
		h = crypto.SHA256
	case x509.SHA384WithRSA, x509.ECDSAWithSHA384:
		h = crypto.SHA384
	case x509.SHA512WithRSA, x509.ECDSAWithSHA512:
		h = crypto.SHA512
	case x509.PureEd25519:
		h = 0
	default:
		return nil, reqErr("the certificate signing request uses signature algorithm %s, which is not allowed", csr.SignatureAlgorithm)
	}
	if err := allowed.Check(csr.PublicKey, h); err != nil {
		return nil, reqErr("%v on this CA", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, reqErr("the certificate signing request's signature does not verify: %v", err)
	}
	return csr.PublicKey, nil
}
