// Package hashedrekord is the hashedrekord entry kind: a signature over an
// artifact digest, with the public key or certificate that made it.
package hashedrekord

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"

	"github.com/signet-dev/signet/types"
	"github.com/signet-dev/signet/types/pki"
)

// Name is the kind's name on the wire.
const Name = "hashedrekord"

// Algorithm is a key type and digest pair a client may sign with.
type Algorithm string

// The algorithms Rekor accepts by default (its --client-signing-algorithms).
const (
	RSA2048SHA256 Algorithm = "rsa-sign-pkcs1-2048-sha256"
	RSA3072SHA256 Algorithm = "rsa-sign-pkcs1-3072-sha256"
	RSA4096SHA256 Algorithm = "rsa-sign-pkcs1-4096-sha256"
	P256SHA256    Algorithm = "ecdsa-sha2-256-nistp256"
	P384SHA384    Algorithm = "ecdsa-sha2-384-nistp384"
	P521SHA512    Algorithm = "ecdsa-sha2-512-nistp521"
	Ed25519       Algorithm = "ed25519"
	Ed25519ph     Algorithm = "ed25519-ph"
)

// DefaultAlgorithms is every algorithm above.
var DefaultAlgorithms = []Algorithm{RSA2048SHA256, RSA3072SHA256, RSA4096SHA256, P256SHA256, P384SHA384, P521SHA512, Ed25519, Ed25519ph}

// Kind returns the hashedrekord kind accepting the given algorithms (all
// defaults when none are given).
func Kind(allowed ...Algorithm) (types.Kind, error) {
	if len(allowed) == 0 {
		allowed = DefaultAlgorithms
	}
	set := map[Algorithm]bool{}
	for _, a := range allowed {
		known := false
		for _, d := range DefaultAlgorithms {
			known = known || d == a
		}
		if !known {
			return types.Kind{}, fmt.Errorf("hashedrekord: unknown signing algorithm %q", a)
		}
		set[a] = true
	}
	p := &parser{allowed: set}
	return types.Kind{Name: Name, DefaultVersion: "0.0.1", Versions: map[string]types.Parser{"0.0.1": p.parseV001}}, nil
}

type parser struct{ allowed map[Algorithm]bool }

// specV001 is the 0.0.1 spec, field names as in Rekor's schema. The same
// struct is the proposed and the canonical form.
type specV001 struct {
	Data      dataV001      `json:"data"`
	Signature signatureV001 `json:"signature"`
}

type dataV001 struct {
	Hash *hashV001 `json:"hash,omitempty"`
}

type hashV001 struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"value"`
}

type signatureV001 struct {
	Content   []byte         `json:"content,omitempty"`
	PublicKey *publicKeyV001 `json:"publicKey,omitempty"`
}

type publicKeyV001 struct {
	Content []byte `json:"content,omitempty"`
}

type entry struct {
	canonical []byte
	keys      []string
}

func (e *entry) Canonical() []byte   { return e.canonical }
func (e *entry) IndexKeys() []string { return e.keys }
func (e *entry) Insertable() bool    { return true }

var hashes = map[string]crypto.Hash{"sha256": crypto.SHA256, "sha384": crypto.SHA384, "sha512": crypto.SHA512}

func (p *parser) parseV001(_ context.Context, raw json.RawMessage) (types.Entry, error) {
	var s specV001
	if err := types.DecodeStrict(raw, &s); err != nil {
		return nil, types.Invalid("hashedrekord spec: %v", err)
	}
	if len(s.Signature.Content) == 0 {
		return nil, types.Invalid("hashedrekord: signature.content is required")
	}
	if s.Signature.PublicKey == nil || len(s.Signature.PublicKey.Content) == 0 {
		return nil, types.Invalid("hashedrekord: signature.publicKey.content is required")
	}
	if s.Data.Hash == nil {
		return nil, types.Invalid("hashedrekord: data.hash is required")
	}
	alg, ok := hashes[s.Data.Hash.Algorithm]
	if !ok {
		return nil, types.Invalid("hashedrekord: data.hash.algorithm %q is not one of sha256, sha384, sha512", s.Data.Hash.Algorithm)
	}
	if len(s.Data.Hash.Value) != alg.Size()*2 {
		return nil, types.Invalid("hashedrekord: data.hash.value has %d hex characters, %s needs %d", len(s.Data.Hash.Value), s.Data.Hash.Algorithm, alg.Size()*2)
	}
	if strings.ToLower(s.Data.Hash.Value) != s.Data.Hash.Value {
		return nil, types.Invalid("hashedrekord: data.hash.value must be lower-case hex")
	}
	digest, err := hex.DecodeString(s.Data.Hash.Value)
	if err != nil {
		return nil, types.Invalid("hashedrekord: data.hash.value is not hex: %v", err)
	}
	v, err := pki.ParseVerifier(s.Signature.PublicKey.Content)
	if err != nil {
		return nil, types.Invalid("hashedrekord: signature.publicKey: %v", err)
	}
	if err := p.checkAlgorithm(v.Key, alg); err != nil {
		return nil, err
	}
	verifier, err := signature.LoadVerifierWithOpts(v.Key, options.WithHash(alg), options.WithED25519ph())
	if err != nil {
		return nil, types.Invalid("hashedrekord: unusable public key: %v", err)
	}
	if err := verifier.VerifySignature(bytes.NewReader(s.Signature.Content), nil, options.WithDigest(digest), options.WithCryptoSignerOpts(alg)); err != nil {
		return nil, types.Invalid("hashedrekord: signature does not verify against data.hash with the given public key: %v", err)
	}
	canonicalKey, err := v.CanonicalPEM()
	if err != nil {
		return nil, types.Invalid("hashedrekord: encoding public key: %v", err)
	}
	canon := specV001{
		Data:      dataV001{Hash: &hashV001{Algorithm: s.Data.Hash.Algorithm, Value: s.Data.Hash.Value}},
		Signature: signatureV001{Content: s.Signature.Content, PublicKey: &publicKeyV001{Content: canonicalKey}},
	}
	leaf, err := types.Canonicalize(Name, "0.0.1", canon)
	if err != nil {
		return nil, err
	}
	// Rekor hashes the key as uploaded; we hash the canonical PEM, which is
	// what /api/v1/index/retrieve computes for a publicKey query.
	keyHash := sha256.Sum256(canonicalKey)
	keys := []string{hex.EncodeToString(keyHash[:])}
	keys = append(keys, v.Subjects()...)
	keys = append(keys, s.Data.Hash.Algorithm+":"+s.Data.Hash.Value)
	return &entry{canonical: leaf, keys: keys}, nil
}

// checkAlgorithm enforces the key type and digest pairs clients may use.
func (p *parser) checkAlgorithm(key crypto.PublicKey, h crypto.Hash) error {
	var candidates []Algorithm
	switch k := key.(type) {
	case *rsa.PublicKey:
		if h == crypto.SHA256 {
			switch k.N.BitLen() {
			case 2048:
				candidates = []Algorithm{RSA2048SHA256}
			case 3072:
				candidates = []Algorithm{RSA3072SHA256}
			case 4096:
				candidates = []Algorithm{RSA4096SHA256}
			}
		}
	case *ecdsa.PublicKey:
		switch {
		case k.Curve == elliptic.P256() && h == crypto.SHA256:
			candidates = []Algorithm{P256SHA256}
		case k.Curve == elliptic.P384() && h == crypto.SHA384:
			candidates = []Algorithm{P384SHA384}
		case k.Curve == elliptic.P521() && h == crypto.SHA512:
			candidates = []Algorithm{P521SHA512}
		}
	case ed25519.PublicKey:
		// A digest can only have been signed with Ed25519ph.
		if h == crypto.SHA512 {
			candidates = []Algorithm{Ed25519ph}
		}
	}
	for _, c := range candidates {
		if p.allowed[c] {
			return nil
		}
	}
	return types.Invalid("hashedrekord: signing algorithm (%s key, %s digest) is not allowed on this log", keyDescription(key), h)
}

func keyDescription(key crypto.PublicKey) string {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA-%d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	default:
		return fmt.Sprintf("%T", key)
	}
}
