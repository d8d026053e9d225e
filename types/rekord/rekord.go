// Package rekord is the rekord entry kind (0.0.1): a detached signature
// over an artifact sent whole, with the key that made it, in one of
// Rekor's PKI formats. The log keeps the artifact's SHA-256, never the
// artifact. Formats: x509 (a PEM key, certificate or chain; the signature
// raw, over the artifact: SHA-256 for RSA and ECDSA, pure Ed25519) and ssh
// (an `ssh-keygen -Y sign -n file` signature, armored, with an
// authorized_keys line as key), pgp (pgp.go) and minisign (minisign.go).
package rekord

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"strings"

	"github.com/sigstore/sigstore/pkg/signature"
	"golang.org/x/crypto/ssh"

	"github.com/signet-dev/signet/types"
	"github.com/signet-dev/signet/types/pki"
)

// Name is the kind's name on the wire.
const Name = "rekord"

// Kind returns the rekord kind.
func Kind() types.Kind {
	return types.Kind{Name: Name, DefaultVersion: "0.0.1", Versions: map[string]types.Parser{"0.0.1": parseV001}}
}

// specV001 is Rekor's rekord 0.0.1 schema, proposed and canonical.
type specV001 struct {
	Data      dataV001      `json:"data"`
	Signature signatureV001 `json:"signature"`
}

type dataV001 struct {
	Content []byte    `json:"content,omitempty"`
	Hash    *hashV001 `json:"hash,omitempty"`
	URL     string    `json:"url,omitempty"`
}

type hashV001 struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"value"`
}

type signatureV001 struct {
	Content   []byte         `json:"content"`
	Format    string         `json:"format"`
	PublicKey *publicKeyV001 `json:"publicKey"`
	URL       string         `json:"url,omitempty"`
}

type publicKeyV001 struct {
	Content []byte `json:"content"`
	URL     string `json:"url,omitempty"`
}

// format is one PKI format: its key and signature read, checked over the
// artifact, and written back as Rekor stores them.
type format interface {
	// verify checks sig over content with key and returns the canonical
	// signature and key, and the key's search subjects.
	verify(content, sig, key []byte) (canonSig, canonKey []byte, subjects []string, err error)
	// canonicalKey is the key as verify writes it back.
	canonicalKey(key []byte) ([]byte, error)
}

var formats = map[string]format{"x509": x509Format{}, "ssh": sshFormat{}, "pgp": pgpFormat{}, "minisign": minisignFormat{}}

// Formats are the PKI formats rekord entries are accepted in.
var Formats = []string{"minisign", "pgp", "ssh", "x509"}

// CanonicalKey returns a key in one of Formats as rekord entries store it.
// Entries the key signed are indexed under the hex SHA-256 of these bytes:
// this is how a search by public key finds them, as in Rekor.
func CanonicalKey(format string, key []byte) ([]byte, error) {
	f, ok := formats[format]
	if !ok {
		return nil, fmt.Errorf("format %q is not one of %s", format, strings.Join(Formats, ", "))
	}
	return f.canonicalKey(key)
}

func parseV001(_ context.Context, raw json.RawMessage) (types.Entry, error) {
	var s specV001
	if err := types.DecodeStrict(raw, &s); err != nil {
		return nil, types.Invalid("rekord spec: %v", err)
	}
	switch {
	case s.Data.URL != "" || s.Signature.URL != "" || (s.Signature.PublicKey != nil && s.Signature.PublicKey.URL != ""):
		return nil, types.Invalid("rekord: the log fetches no URLs: send data.content, signature.content and signature.publicKey.content")
	case len(s.Signature.Content) == 0:
		return nil, types.Invalid("rekord: 'content' must be specified for signature")
	case s.Signature.PublicKey == nil || len(s.Signature.PublicKey.Content) == 0:
		return nil, types.Invalid("rekord: 'content' must be specified for publicKey")
	case len(s.Data.Content) == 0:
		return nil, types.Invalid("rekord: 'content' must be specified for data (the artifact itself; a log that only has its hash cannot check the signature)")
	}
	f, ok := formats[s.Signature.Format]
	if !ok {
		return nil, types.Invalid("rekord: signature.format %q is not one of %s", s.Signature.Format, strings.Join(Formats, ", "))
	}
	sum := sha256.Sum256(s.Data.Content)
	computed := hex.EncodeToString(sum[:])
	if h := s.Data.Hash; h != nil {
		if h.Algorithm != "sha256" {
			return nil, types.Invalid("rekord: data.hash.algorithm %q: rekord 0.0.1 hashes with sha256", h.Algorithm)
		}
		if h.Value != computed {
			return nil, types.Invalid("rekord: SHA mismatch: %s != %s (data.hash.value is not the SHA-256 of data.content)", computed, h.Value)
		}
	}
	canonSig, canonKey, subjects, err := f.verify(s.Data.Content, s.Signature.Content, s.Signature.PublicKey.Content)
	if err != nil {
		return nil, types.Invalid("rekord (%s): %v", s.Signature.Format, err)
	}
	canon := specV001{
		Data:      dataV001{Hash: &hashV001{Algorithm: "sha256", Value: computed}},
		Signature: signatureV001{Content: canonSig, Format: s.Signature.Format, PublicKey: &publicKeyV001{Content: canonKey}},
	}
	leaf, err := types.Canonicalize(Name, "0.0.1", canon)
	if err != nil {
		return nil, err
	}
	keyHash := sha256.Sum256(canonKey)
	keys := append([]string{hex.EncodeToString(keyHash[:])}, subjects...)
	keys = append(keys, "sha256:"+computed)
	return &types.Verified{Leaf: leaf, Keys: keys}, nil
}

// x509Format: a PEM key, certificate or chain (types/pki, as hashedrekord
// reads them); the raw signature over the artifact.
type x509Format struct{}

func (x509Format) verify(content, sig, key []byte) ([]byte, []byte, []string, error) {
	v, err := pki.ParseVerifier(key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("publicKey: %w", err)
	}
	verifier, err := signature.LoadVerifier(v.Key, crypto.SHA256)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("publicKey: unusable key: %w", err)
	}
	if err := verifier.VerifySignature(bytes.NewReader(sig), bytes.NewReader(content)); err != nil {
		return nil, nil, nil, fmt.Errorf("the signature does not verify over data.content with the given key: %w", err)
	}
	canonKey, err := v.CanonicalPEM()
	if err != nil {
		return nil, nil, nil, err
	}
	return sig, canonKey, v.Subjects(), nil
}

func (x509Format) canonicalKey(key []byte) ([]byte, error) {
	v, err := pki.ParseVerifier(key)
	if err != nil {
		return nil, err
	}
	return v.CanonicalPEM()
}

// The SSH signature format (OpenSSH's PROTOCOL.sshsig): the armored blob
// holds the signer's public key, the namespace, the hash and the signature
// over "SSHSIG" || the wrapped message.
const (
	sshMagic     = "SSHSIG"
	sshPEMType   = "SSH SIGNATURE"
	sshNamespace = "file"
	// sshHash is the hash Rekor writes into every canonical SSH signature
	// (and then verifies with), whatever the signer used: a signature made
	// with sha256 therefore never verifies there, and is refused here with
	// that reason. ssh-keygen signs with sha512 by default.
	sshHash = "sha512"
)

type sshWrappedSig struct {
	MagicHeader   [6]byte
	Version       uint32
	PublicKey     string
	Namespace     string
	Reserved      string
	HashAlgorithm string
	Signature     string
}

type sshSignedMessage struct {
	Namespace     string
	Reserved      string
	HashAlgorithm string
	Hash          string
}

type sshFormat struct{}

func (sshFormat) canonicalKey(key []byte) ([]byte, error) {
	pub, _, _, _, err := ssh.ParseAuthorizedKey(key)
	if err != nil {
		return nil, fmt.Errorf("not an authorized_keys line: %w", err)
	}
	return ssh.MarshalAuthorizedKey(pub), nil
}

func (sshFormat) verify(content, sigArmored, key []byte) ([]byte, []byte, []string, error) {
	pub, _, _, _, err := ssh.ParseAuthorizedKey(key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("publicKey is not an authorized_keys line: %w", err)
	}
	block, _ := pem.Decode(sigArmored)
	if block == nil || block.Type != sshPEMType {
		return nil, nil, nil, errors.New("the signature is not an armored SSH SIGNATURE (ssh-keygen -Y sign)")
	}
	var w sshWrappedSig
	if err := ssh.Unmarshal(block.Bytes, &w); err != nil {
		return nil, nil, nil, fmt.Errorf("the SSH signature: %w", err)
	}
	switch {
	case string(w.MagicHeader[:]) != sshMagic:
		return nil, nil, nil, errors.New("the SSH signature has no SSHSIG header")
	case w.Version != 1:
		return nil, nil, nil, fmt.Errorf("the SSH signature is version %d, not 1", w.Version)
	case w.Namespace != sshNamespace:
		return nil, nil, nil, fmt.Errorf("the SSH signature's namespace is %q: sign with -n file", w.Namespace)
	case w.HashAlgorithm != sshHash:
		return nil, nil, nil, fmt.Errorf("the SSH signature hashes with %q: Rekor's format checks sha512 signatures only (ssh-keygen's default)", w.HashAlgorithm)
	}
	var sig ssh.Signature
	if err := ssh.Unmarshal([]byte(w.Signature), &sig); err != nil {
		return nil, nil, nil, fmt.Errorf("the SSH signature: %w", err)
	}
	embedded, err := ssh.ParsePublicKey([]byte(w.PublicKey))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("the SSH signature's key: %w", err)
	}
	var h hash.Hash = sha512.New()
	h.Write(content)
	msg := append([]byte(sshMagic), ssh.Marshal(sshSignedMessage{Namespace: sshNamespace, HashAlgorithm: sshHash, Hash: string(h.Sum(nil))})...)
	if err := pub.Verify(msg, &sig); err != nil {
		return nil, nil, nil, fmt.Errorf("the signature does not verify over data.content with the given key: %w", err)
	}
	// Written back as Rekor re-armors it: the signature's own key, namespace
	// file, sha512.
	canon := sshWrappedSig{Version: 1, PublicKey: string(embedded.Marshal()), Namespace: sshNamespace, HashAlgorithm: sshHash, Signature: string(ssh.Marshal(&sig))}
	copy(canon.MagicHeader[:], sshMagic)
	canonSig := pem.EncodeToMemory(&pem.Block{Type: sshPEMType, Bytes: ssh.Marshal(canon)})
	// No search subjects: Rekor indexes the canonical key, whose comment
	// (where an email would be) is gone by then.
	return canonSig, ssh.MarshalAuthorizedKey(pub), nil, nil
}
