// Package note writes and verifies the signed checkpoints of Signet's logs:
// golang.org/x/mod-style signed notes whose body is origin, tree size and
// base64 root hash, signed by an ECDSA or Ed25519 key with a 4-byte key hint.
// It serves every personality (Rekor v1 origin "<host> - <treeID>", RFC 6962
// users) and is shared with the client, so it imports nothing of the server.
package note

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxSize bounds a note accepted for verification.
const MaxSize = 64 << 10

// Checkpoint is the body of a signed tree head.
type Checkpoint struct {
	Origin   string
	Size     uint64
	RootHash []byte
	// Extra lines after the root hash; Rekor no longer writes any.
	Extra []string
}

// Text is the signed part of the note: each line ends in a newline.
func (c Checkpoint) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.RootHash))
	for _, e := range c.Extra {
		b.WriteString(e + "\n")
	}
	return b.String()
}

// KeyHint is the first four bytes of SHA-256 over the key's PKIX DER, as a
// big-endian integer: Rekor's v1 checkpoint key hint.
func KeyHint(pub crypto.PublicKey) (uint32, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return 0, fmt.Errorf("encoding public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return binary.BigEndian.Uint32(sum[:4]), nil
}

// Sign returns the note text with one signature line by signer under name.
func Sign(c Checkpoint, name string, signer crypto.Signer) (string, error) {
	if name == "" || strings.ContainsAny(name, " \n+") {
		return "", fmt.Errorf("note signer name %q must be non-empty without spaces, newlines or '+'", name)
	}
	text := c.Text()
	hint, err := KeyHint(signer.Public())
	if err != nil {
		return "", err
	}
	var sig []byte
	switch signer.Public().(type) {
	case ed25519.PublicKey:
		sig, err = signer.Sign(rand.Reader, []byte(text), crypto.Hash(0))
	default:
		digest := sha256.Sum256([]byte(text))
		sig, err = signer.Sign(rand.Reader, digest[:], crypto.SHA256)
	}
	if err != nil {
		return "", fmt.Errorf("signing checkpoint: %w", err)
	}
	blob := make([]byte, 4+len(sig))
	binary.BigEndian.PutUint32(blob, hint)
	copy(blob[4:], sig)
	return text + "\n\u2014 " + name + " " + base64.StdEncoding.EncodeToString(blob) + "\n", nil
}

// Verify parses a signed note and checks that it carries exactly one
// signature, by pub, as Rekor v1 clients require. An empty name accepts any
// signer name (Rekor's verifiers check only the key hint and signature).
func Verify(signed string, name string, pub crypto.PublicKey) (Checkpoint, error) {
	if len(signed) > MaxSize {
		return Checkpoint{}, fmt.Errorf("checkpoint is %d bytes, more than %d", len(signed), MaxSize)
	}
	if !utf8.ValidString(signed) {
		return Checkpoint{}, errors.New("checkpoint is not UTF-8")
	}
	text, sigs, ok := strings.Cut(signed, "\n\n")
	if !ok {
		return Checkpoint{}, errors.New("checkpoint has no blank line before its signatures")
	}
	text += "\n"
	lines := strings.Split(strings.TrimSuffix(sigs, "\n"), "\n")
	if !strings.HasSuffix(sigs, "\n") || len(lines) != 1 {
		return Checkpoint{}, fmt.Errorf("checkpoint must carry exactly one signature line, found %d", len(lines))
	}
	rest, ok := strings.CutPrefix(lines[0], "\u2014 ")
	if !ok {
		return Checkpoint{}, errors.New("checkpoint signature line does not start with an em dash")
	}
	gotName, b64, ok := strings.Cut(rest, " ")
	if !ok {
		return Checkpoint{}, errors.New("malformed checkpoint signature line")
	}
	if name != "" && gotName != name {
		return Checkpoint{}, fmt.Errorf("checkpoint is signed by %q, want %q", gotName, name)
	}
	blob, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(blob) < 5 {
		return Checkpoint{}, errors.New("checkpoint signature is not base64 of a key hint and signature")
	}
	hint, err := KeyHint(pub)
	if err != nil {
		return Checkpoint{}, err
	}
	if binary.BigEndian.Uint32(blob) != hint {
		return Checkpoint{}, fmt.Errorf("checkpoint is signed by key hint %08x, want %08x", binary.BigEndian.Uint32(blob), hint)
	}
	sig := blob[4:]
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		digest := sha256.Sum256([]byte(text))
		if !ecdsa.VerifyASN1(k, digest[:], sig) {
			return Checkpoint{}, errors.New("checkpoint signature does not verify")
		}
	case ed25519.PublicKey:
		if !ed25519.Verify(k, []byte(text), sig) {
			return Checkpoint{}, errors.New("checkpoint signature does not verify")
		}
	default:
		return Checkpoint{}, fmt.Errorf("unsupported checkpoint key type %T", pub)
	}
	return Parse(text)
}

// Parse reads the checkpoint body (the text before the blank line).
func Parse(text string) (Checkpoint, error) {
	if !strings.HasSuffix(text, "\n") {
		return Checkpoint{}, errors.New("checkpoint body must end with a newline")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 {
		return Checkpoint{}, fmt.Errorf("checkpoint body has %d lines, want at least 3", len(lines))
	}
	if lines[0] == "" {
		return Checkpoint{}, errors.New("checkpoint origin is empty")
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || strconv.FormatUint(size, 10) != lines[1] {
		return Checkpoint{}, fmt.Errorf("checkpoint tree size %q is not a decimal number", lines[1])
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != sha256.Size {
		return Checkpoint{}, fmt.Errorf("checkpoint root hash %q is not base64 of 32 bytes", lines[2])
	}
	var extra []string
	if len(lines) > 3 {
		extra = append(extra, lines[3:]...)
	}
	return Checkpoint{Origin: lines[0], Size: size, RootHash: root, Extra: extra}, nil
}
