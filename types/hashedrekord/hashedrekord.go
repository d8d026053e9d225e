// Package hashedrekord is the hashedrekord entry kind: a signature over an
// artifact digest, with the public key or certificate that made it.
package hashedrekord

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"

	"github.com/signet-dev/signet/internal/sigalg"
	"github.com/signet-dev/signet/types"
	"github.com/signet-dev/signet/types/pki"
)

// Name is the kind's name on the wire.
const Name = "hashedrekord"

// DefaultAlgorithms are the pairs Rekor accepts by default (its
// --client-signing-algorithms).
var DefaultAlgorithms = sigalg.All

// Kind returns the hashedrekord kind accepting the given algorithms (all
// defaults when none are given).
func Kind(allowed ...sigalg.Algorithm) (types.Kind, error) {
	set, err := sigalg.NewSet(allowed, DefaultAlgorithms)
	if err != nil {
		return types.Kind{}, fmt.Errorf("hashedrekord: %w", err)
	}
	p := &parser{allowed: set}
	return types.Kind{Name: Name, DefaultVersion: "0.0.1", Versions: map[string]types.Parser{"0.0.1": p.parseV001}}, nil
}

type parser struct{ allowed sigalg.Set }

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
	alg, ok := sigalg.HashByName(s.Data.Hash.Algorithm)
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
	leaf, err := types.CanonicalizeSorted(Name, "0.0.1", canon)
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

// checkAlgorithm enforces the key type and digest pairs clients may use. A
// digest signed with an Ed25519 key can only be Ed25519ph.
func (p *parser) checkAlgorithm(key crypto.PublicKey, h crypto.Hash) error {
	if err := p.allowed.Check(key, h); err != nil {
		return types.Invalid("hashedrekord: %v on this log", err)
	}
	return nil
}
