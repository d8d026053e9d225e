package rekord

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	minisign "github.com/jedisct1/go-minisign"
	"golang.org/x/crypto/blake2b"
)

// minisignFormat: minisign (and OpenBSD signify) Ed25519 keys and
// signatures, read with minisign's author's Go library as Rekor reads them.
//
// As in Rekor, only the signature line is checked: the trusted comment and
// its global signature are not part of the canonical signature, and the
// key ID in the signature is not compared with the key's. An "ED"
// signature is over the BLAKE2b-512 of the artifact (minisign's default
// since 0.11, -H before), an "Ed" one over the artifact itself.
type minisignFormat struct{}

func (minisignFormat) verify(content, sigBytes, keyBytes []byte) ([]byte, []byte, []string, error) {
	key, err := minisignKey(keyBytes)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("publicKey: %w", err)
	}
	sig, err := minisignSignature(sigBytes)
	if err != nil {
		return nil, nil, nil, err
	}
	signed := content
	if sig.SignatureAlgorithm[1] == 'D' {
		h := blake2b.Sum512(content)
		signed = h[:]
	}
	if !ed25519.Verify(ed25519.PublicKey(key.PublicKey[:]), signed, sig.Signature[:]) {
		return nil, nil, nil, errors.New("the signature does not verify over data.content with the given key")
	}
	// Rekor's canonical forms: the signature line under an empty untrusted
	// comment, and the key's base64 line alone.
	canonSig := []byte("untrusted comment:\n" + base64.StdEncoding.EncodeToString(bytes.Join([][]byte{sig.SignatureAlgorithm[:], sig.KeyId[:], sig.Signature[:]}, nil)))
	return canonSig, minisignCanonicalKey(key), nil, nil
}

func (minisignFormat) canonicalKey(b []byte) ([]byte, error) {
	key, err := minisignKey(b)
	if err != nil {
		return nil, err
	}
	return minisignCanonicalKey(key), nil
}

func minisignCanonicalKey(key minisign.PublicKey) []byte {
	return []byte(base64.StdEncoding.EncodeToString(bytes.Join([][]byte{key.SignatureAlgorithm[:], key.KeyId[:], key.PublicKey[:]}, nil)))
}

// minisignKey reads a key as Rekor does: a minisign .pub file (comment
// line and base64 line), the base64 line alone, or the 32 raw bytes of the
// Ed25519 key (entries Rekor once stored so).
func minisignKey(b []byte) (minisign.PublicKey, error) {
	if k, err := minisign.DecodePublicKey(string(b)); err == nil {
		return k, nil
	}
	if k, err := minisign.NewPublicKey(string(b)); err == nil {
		return k, nil
	}
	if len(b) == ed25519.PublicKeySize {
		k := minisign.PublicKey{SignatureAlgorithm: [2]byte{'E', 'd'}}
		copy(k.PublicKey[:], b)
		return k, nil
	}
	return minisign.PublicKey{}, errors.New("not a minisign public key (its .pub file, or the base64 line in it)")
}

// minisignSignature reads a minisign .minisig file, or a signify .sig file
// (a comment line and the base64 of algorithm, key ID and signature).
func minisignSignature(b []byte) (minisign.Signature, error) {
	if s, err := minisign.DecodeSignature(string(b)); err == nil {
		return s, nil
	}
	var s minisign.Signature
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) != 2 {
		return s, fmt.Errorf("not a minisign signature (a .minisig file has 4 lines, a signify one 2; this has %d)", len(lines))
	}
	raw, err := base64.StdEncoding.DecodeString(lines[1])
	if err != nil {
		return s, errors.New("not a signify signature: its second line is not base64")
	}
	if len(raw) != len(s.SignatureAlgorithm)+len(s.KeyId)+len(s.Signature) {
		return s, fmt.Errorf("not a signify signature: %d bytes, not 74", len(raw))
	}
	copy(s.SignatureAlgorithm[:], raw[0:2])
	copy(s.KeyId[:], raw[2:10])
	copy(s.Signature[:], raw[10:])
	return s, nil
}
