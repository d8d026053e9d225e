// Package note writes and verifies the signed checkpoints of Signet's logs:
// c2sp.org/signed-note notes whose body is origin, tree size and base64
// root hash (c2sp.org/tlog-checkpoint), signed by an ECDSA or Ed25519 key
// with a 4-byte key hint. It serves every personality (Rekor v1 origin
// "<host> - <treeID>", Rekor v2, RFC 6962 users) and is shared with the
// client, so it imports nothing of the server.
//
// Two key-hint styles exist. Rekor v1 hints every key by SHA-256 of its
// PKIX encoding (KeyHint). The signed-note spec hints an Ed25519 key by
// SHA-256 of name, newline, algorithm byte 0x01 and the key (KeyID), which
// is what witnesses and sigstore-go's Rekor v2 verifier compute; for ECDSA
// the two agree. Verification accepts either: the hint only picks the
// line, the signature is what is checked.
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
	"slices"
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

// Signed-note signature types: Ed25519 (the spec's), and ECDSA over
// SHA-256 as transparency-dev/formats names Rekor's.
const (
	algEd25519         = 0x01
	algECDSAWithSHA256 = 0x02
)

// KeyID is the signed-note key ID of pub signing as name, the first four
// bytes of which are its key hint: for Ed25519, SHA-256 of name, "\n",
// 0x01 and the key (c2sp.org/signed-note); for ECDSA, which the spec leaves
// to each key type, SHA-256 of the PKIX key, as Rekor and rekor-tiles sign.
// A Rekor v2 log's logId in the trusted root is this ID.
func KeyID(name string, pub crypto.PublicKey) ([sha256.Size]byte, error) {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		h := sha256.New()
		h.Write([]byte(name + "\n"))
		h.Write([]byte{algEd25519})
		h.Write(k)
		return [sha256.Size]byte(h.Sum(nil)), nil
	case *ecdsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return [sha256.Size]byte{}, fmt.Errorf("encoding public key: %w", err)
		}
		return sha256.Sum256(der), nil
	}
	return [sha256.Size]byte{}, fmt.Errorf("unsupported checkpoint key type %T", pub)
}

// VerifierKey is pub as a signed-note verifier key
// ("<name>+<hint>+<base64 of the type byte and the key>"), what a witness is
// told a log's key is: for Ed25519 the spec's type 0x01 and raw key, for
// ECDSA type 0x02 and the PKIX key, as transparency-dev/formats reads
// Rekor's (witnesses built on x/mod's notes alone, such as litewitness,
// know only Ed25519). The hint is KeyID's, which for ECDSA is also Rekor
// v1's.
func VerifierKey(name string, pub crypto.PublicKey) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	var key []byte
	switch k := pub.(type) {
	case ed25519.PublicKey:
		key = append([]byte{algEd25519}, k...)
	case *ecdsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			return "", err
		}
		key = append([]byte{algECDSAWithSHA256}, der...)
	default:
		return "", fmt.Errorf("a %T has no signed-note verifier key: witnesses verify Ed25519 and ECDSA checkpoints", pub)
	}
	id, err := KeyID(name, pub)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s+%08x+%s", name, binary.BigEndian.Uint32(id[:4]), base64.StdEncoding.EncodeToString(key)), nil
}

// Signer signs checkpoints as Name with Key, hinted by Hint.
type Signer struct {
	Name string
	Key  crypto.Signer
	Hint uint32
}

// RekorSigner signs as Rekor v1 does: every key hinted by KeyHint.
func RekorSigner(name string, key crypto.Signer) (Signer, error) {
	if err := checkName(name); err != nil {
		return Signer{}, err
	}
	hint, err := KeyHint(key.Public())
	if err != nil {
		return Signer{}, err
	}
	return Signer{Name: name, Key: key, Hint: hint}, nil
}

// C2SPSigner signs as c2sp.org/signed-note asks (KeyID): the hint
// witnesses and Rekor v2 verifiers look for.
func C2SPSigner(name string, key crypto.Signer) (Signer, error) {
	if err := checkName(name); err != nil {
		return Signer{}, err
	}
	id, err := KeyID(name, key.Public())
	if err != nil {
		return Signer{}, err
	}
	return Signer{Name: name, Key: key, Hint: binary.BigEndian.Uint32(id[:4])}, nil
}

func checkName(name string) error {
	if name == "" || strings.ContainsAny(name, " \t\n+") || !utf8.ValidString(name) {
		return fmt.Errorf("note signer name %q must be non-empty UTF-8 without spaces, newlines or '+'", name)
	}
	return nil
}

// Sign returns the note text with one signature line by s.
func Sign(c Checkpoint, s Signer) (string, error) {
	if err := checkName(s.Name); err != nil {
		return "", err
	}
	text := c.Text()
	var sig []byte
	var err error
	switch s.Key.Public().(type) {
	case ed25519.PublicKey:
		sig, err = s.Key.Sign(rand.Reader, []byte(text), crypto.Hash(0))
	default:
		digest := sha256.Sum256([]byte(text))
		sig, err = s.Key.Sign(rand.Reader, digest[:], crypto.SHA256)
	}
	if err != nil {
		return "", fmt.Errorf("signing checkpoint: %w", err)
	}
	blob := make([]byte, 4+len(sig))
	binary.BigEndian.PutUint32(blob, s.Hint)
	copy(blob[4:], sig)
	return text + "\n" + SignatureLine(s.Name, blob), nil
}

// SignatureLine is one signature line of a note: an em dash, the
// signer's name and base64 of the key hint and signature, and a newline.
func SignatureLine(name string, hintAndSig []byte) string {
	return "\u2014 " + name + " " + base64.StdEncoding.EncodeToString(hintAndSig) + "\n"
}

// MaxSignatures bounds the signature lines of a note accepted by Open: the
// log's own and its witnesses' cosignatures.
const MaxSignatures = 32

// Signature is one signature line of a note, as read: not verified.
type Signature struct {
	Name string
	Hint uint32
	// Sig is the signature after the key hint.
	Sig []byte
}

// Line is the signature as it appears in the note.
func (s Signature) Line() string {
	return SignatureLine(s.Name, append(binary.BigEndian.AppendUint32(nil, s.Hint), s.Sig...))
}

// Verify parses a signed note and checks that it carries exactly one
// signature, by pub, as Rekor v1 clients require. An empty name accepts any
// signer name (Rekor's verifiers check only the key hint and signature).
func Verify(signed string, name string, pub crypto.PublicKey) (Checkpoint, error) {
	text, sigs, err := split(signed)
	if err != nil {
		return Checkpoint{}, err
	}
	if len(sigs) != 1 {
		return Checkpoint{}, fmt.Errorf("checkpoint must carry exactly one signature line, found %d", len(sigs))
	}
	if err := verifyOne(text, sigs[0], name, pub); err != nil {
		return Checkpoint{}, err
	}
	return Parse(text)
}

// Open parses a signed note that may carry several signatures (a log's
// and its witnesses' cosignatures), checks that one is pub's as name (an
// empty name: any), and returns the checkpoint and the other signatures,
// unverified: the caller checks those it knows keys for.
func Open(signed string, name string, pub crypto.PublicKey) (Checkpoint, []Signature, error) {
	text, sigs, err := split(signed)
	if err != nil {
		return Checkpoint{}, nil, err
	}
	if len(sigs) > MaxSignatures {
		return Checkpoint{}, nil, fmt.Errorf("checkpoint carries %d signature lines, more than %d", len(sigs), MaxSignatures)
	}
	hints, err := hintsOf(pub)
	if err != nil {
		return Checkpoint{}, nil, err
	}
	// As x/mod's note.Open: the first line by the log's key (its name and
	// hint) must verify, a repeat of it is ignored.
	var others []Signature
	found := false
	for _, s := range sigs {
		if (name == "" || s.Name == name) && slices.Contains(hints(s.Name), s.Hint) {
			if found {
				continue
			}
			if err := verifyOne(text, s, name, pub); err != nil {
				return Checkpoint{}, nil, err
			}
			found = true
			continue
		}
		others = append(others, s)
	}
	if !found {
		return Checkpoint{}, nil, errors.New("checkpoint carries no signature by the log's key")
	}
	c, err := Parse(text)
	if err != nil {
		return Checkpoint{}, nil, err
	}
	return c, others, nil
}

// split parses a signed note into its text (with its final newline) and
// its signature lines.
func split(signed string) (string, []Signature, error) {
	if len(signed) > MaxSize {
		return "", nil, fmt.Errorf("checkpoint is %d bytes, more than %d", len(signed), MaxSize)
	}
	if !utf8.ValidString(signed) {
		return "", nil, errors.New("checkpoint is not UTF-8")
	}
	text, rest, ok := strings.Cut(signed, "\n\n")
	if !ok {
		return "", nil, errors.New("checkpoint has no blank line before its signatures")
	}
	sigs, err := ParseSignatures(rest)
	if err != nil {
		return "", nil, err
	}
	return text + "\n", sigs, nil
}

// ParseSignatures reads signature lines, each ending in a newline, and
// nothing else: what follows a note's blank line, or a witness's answer.
func ParseSignatures(lines string) ([]Signature, error) {
	if !strings.HasSuffix(lines, "\n") {
		return nil, errors.New("checkpoint signatures must end with a newline")
	}
	var sigs []Signature
	for _, line := range strings.Split(strings.TrimSuffix(lines, "\n"), "\n") {
		s, err := parseLine(line)
		if err != nil {
			return nil, err
		}
		sigs = append(sigs, s)
	}
	return sigs, nil
}

// Text is the signed text of a note, up to and including the newline
// before its blank line.
func Text(signed string) (string, error) {
	text, _, ok := strings.Cut(signed, "\n\n")
	if !ok {
		return "", errors.New("checkpoint has no blank line before its signatures")
	}
	return text + "\n", nil
}

// ParseSigned reads the checkpoint of a signed note without checking its
// signatures: for notes the log itself stored.
func ParseSigned(signed string) (Checkpoint, error) {
	text, err := Text(signed)
	if err != nil {
		return Checkpoint{}, err
	}
	return Parse(text)
}

func parseLine(line string) (Signature, error) {
	rest, ok := strings.CutPrefix(line, "\u2014 ")
	if !ok {
		return Signature{}, errors.New("checkpoint signature line does not start with an em dash")
	}
	name, b64, ok := strings.Cut(rest, " ")
	if !ok || name == "" || strings.Contains(b64, " ") {
		return Signature{}, errors.New("malformed checkpoint signature line")
	}
	blob, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(blob) < 5 {
		return Signature{}, errors.New("checkpoint signature is not base64 of a key hint and signature")
	}
	return Signature{Name: name, Hint: binary.BigEndian.Uint32(blob), Sig: blob[4:]}, nil
}

// hintsOf returns the hints pub may be found under when signing as a
// given name: Rekor v1's, and the signed-note spec's.
func hintsOf(pub crypto.PublicKey) (func(signer string) []uint32, error) {
	rekor, err := KeyHint(pub)
	if err != nil {
		return nil, err
	}
	return func(signer string) []uint32 {
		id, err := KeyID(signer, pub)
		if err != nil {
			return []uint32{rekor}
		}
		return []uint32{rekor, binary.BigEndian.Uint32(id[:4])}
	}, nil
}

func verifyOne(text string, s Signature, name string, pub crypto.PublicKey) error {
	if name != "" && s.Name != name {
		return fmt.Errorf("checkpoint is signed by %q, want %q", s.Name, name)
	}
	hints, err := hintsOf(pub)
	if err != nil {
		return err
	}
	if want := hints(s.Name); !slices.Contains(want, s.Hint) {
		return fmt.Errorf("checkpoint is signed by key hint %08x, want %08x", s.Hint, want[len(want)-1])
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		digest := sha256.Sum256([]byte(text))
		if !ecdsa.VerifyASN1(k, digest[:], s.Sig) {
			return errors.New("checkpoint signature does not verify")
		}
	case ed25519.PublicKey:
		if !ed25519.Verify(k, []byte(text), s.Sig) {
			return errors.New("checkpoint signature does not verify")
		}
	default:
		return fmt.Errorf("unsupported checkpoint key type %T", pub)
	}
	return nil
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
