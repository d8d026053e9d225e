// Package pgp reads OpenPGP keys and detached signatures, armored or
// binary, with ProtonMail's go-crypto, into the canonical forms Rekor
// stores them in (rekord, helm and rpm entries carry them).
//
// Rekor reads them with the frozen x/crypto/openpgp, which cannot read
// Ed25519 or Curve25519 keys (GnuPG's default since 2.3) and refuses
// them; here they are accepted, as are RSA and NIST ECDSA keys. For the
// keys both read, the canonical key is the bytes Rekor writes: each
// entity re-serialized with only what x/crypto keeps (see canonicalKey).
//
// Deviations, on purpose:
//   - A private key block is refused: Rekor would log its public part, but
//     a user who sends a private key to a public log has made a mistake the
//     log should not complete.
//   - A key that cannot be read whole is refused with the reason; Rekor
//     silently drops the entities it cannot read and logs the rest.
//   - A key with several user IDs: Rekor writes them in Go map order, so
//     its canonical bytes (and UUID) change from one run to the next; here
//     they are in the key's own order, one of Rekor's possible outputs.
package pgp

import (
	"bytes"
	"crypto/dsa" //nolint:staticcheck // go-crypto's DSA keys are crypto/dsa's
	"crypto/rsa"
	"errors"
	"fmt"
	"io"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/elgamal"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/asaskevich/govalidator"
)

// Armor block types.
const (
	SignatureType = "PGP SIGNATURE"
	PublicKeyType = "PGP PUBLIC KEY BLOCK"

	// Every signature the primary key made may be checked (self-
	// certifications, subkey bindings and their back-signatures,
	// revocations), so their number is what a key costs: bounded, far above
	// what real keys carry (one per user ID and subkey, more after expiry
	// changes). Certifications by other keys are kept but never checked.
	MaxKeys            = 8
	MaxSignatureChecks = 32
)

// Key is a key read whole: its canonical packets, armored as Rekor stores
// them, the keyring they make, and its user IDs' emails (Rekor's search
// subjects).
type Key struct {
	Armored []byte
	Keyring openpgp.EntityList
	Emails  []string
}

// ReadKey reads a key, armored (one or several blocks) or binary.
func ReadKey(key []byte) (*Key, error) {
	packets, err := keyPackets(key)
	if err != nil {
		return nil, err
	}
	bin, emails, err := canonicalKey(packets)
	if err != nil {
		return nil, err
	}
	armored, err := Armor(PublicKeyType, bin)
	if err != nil {
		return nil, err
	}
	// The keyring checked against is the canonical key: what the log
	// stores is what verifies.
	keyring, err := openpgp.ReadKeyRing(bytes.NewReader(bin))
	if err != nil {
		return nil, err
	}
	return &Key{Armored: armored, Keyring: keyring, Emails: emails}, nil
}

// Verify checks a binary detached signature over signed with the key.
func (k *Key) Verify(signed io.Reader, sig []byte) error {
	_, err := openpgp.CheckDetachedSignature(k.Keyring, signed, bytes.NewReader(sig), nil)
	return err
}

// Armor armors b as x/crypto's armor.Encode does (no headers, a CRC-24
// checksum line), the bytes Rekor stores.
func Armor(blockType string, b []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := armor.EncodeWithChecksumOption(&buf, blockType, nil, true)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(b); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// keyPackets returns a key's packets: the binary input, or the bodies of
// every armored public key block in it, concatenated (as Rekor reads
// several blocks pasted one after the other). Each block is the text up to
// its "-----END PGP" line, decoded once: the cost is linear in the input.
func keyPackets(key []byte) ([]byte, error) {
	if !bytes.HasPrefix(key, []byte("-----BEGIN PGP")) {
		return key, nil
	}
	var out []byte
	for chunk := range chunksEndingWith(key, []byte("-----END PGP")) {
		block, err := armor.Decode(bytes.NewReader(chunk))
		if err != nil {
			if len(bytes.TrimSpace(chunk)) == 0 {
				continue // what follows the last block
			}
			return nil, fmt.Errorf("not an armored PGP key: %w", err)
		}
		if block.Type != PublicKeyType {
			if block.Type == "PGP PRIVATE KEY BLOCK" {
				return nil, errors.New("this is a PGP private key: send the public key (gpg --export --armor)")
			}
			return nil, fmt.Errorf("an armored %q, not a %q", block.Type, PublicKeyType)
		}
		body, err := io.ReadAll(block.Body)
		if err != nil {
			return nil, fmt.Errorf("not an armored PGP key: %w", err)
		}
		out = append(out, body...)
	}
	return out, nil
}

// chunksEndingWith splits b after each line that starts with end; the text
// after the last such line is the last chunk.
func chunksEndingWith(b, end []byte) func(yield func([]byte) bool) {
	return func(yield func([]byte) bool) {
		start := 0
		for pos := 0; pos < len(b); {
			next := bytes.IndexByte(b[pos:], '\n')
			lineEnd := len(b)
			if next >= 0 {
				lineEnd = pos + next + 1
			}
			if bytes.HasPrefix(b[pos:lineEnd], end) {
				if !yield(b[start:lineEnd]) {
					return
				}
				start = lineEnd
			}
			pos = lineEnd
		}
		if start < len(b) {
			yield(b[start:])
		}
	}
}

// SignaturePacket returns the binary signature, armored or not, after
// checking that it is one signature packet.
func SignaturePacket(sig []byte) (bin []byte, armored bool, err error) {
	bin = sig
	if block, derr := armor.Decode(bytes.NewReader(sig)); derr == nil {
		if block.Type != SignatureType {
			return nil, false, fmt.Errorf("the signature is an armored %q, not a %q", block.Type, SignatureType)
		}
		if bin, err = io.ReadAll(block.Body); err != nil {
			return nil, false, fmt.Errorf("the armored signature: %w", err)
		}
		armored = true
	}
	p, err := packet.NewReader(bytes.NewReader(bin)).Next()
	if err != nil {
		return nil, false, fmt.Errorf("not a PGP signature: %w", err)
	}
	if _, ok := p.(*packet.Signature); !ok {
		return nil, false, fmt.Errorf("not a PGP signature: the first packet is a %T", p)
	}
	return bin, armored, nil
}

// Key sizes a signature check's cost grows with: RSA up to 8192 bits (go-
// crypto reads up to 65535), DSA at FIPS 186's sizes (p up to 3072 bits,
// q up to 256); the curves are fixed-size.
const (
	maxRSABits  = 8192
	maxDSAPBits = 3072
	maxDSAQBits = 256
)

// checkKeySize refuses keys whose every signature check would cost
// seconds: a 65535-bit DSA or RSA key is a few KiB.
func checkKeySize(pk *packet.PublicKey) error {
	switch k := pk.PublicKey.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n > maxRSABits {
			return fmt.Errorf("key %X is %d-bit RSA, more than %d", pk.KeyId, n, maxRSABits)
		}
	case *dsa.PublicKey:
		if p, q := k.P.BitLen(), k.Q.BitLen(); p > maxDSAPBits || q > maxDSAQBits {
			return fmt.Errorf("key %X is DSA with a %d-bit p and %d-bit q, more than %d and %d", pk.KeyId, p, q, maxDSAPBits, maxDSAQBits)
		}
	case *elgamal.PublicKey:
		if p := k.P.BitLen(); p > maxRSABits {
			return fmt.Errorf("key %X is %d-bit ElGamal, more than %d", pk.KeyId, p, maxRSABits)
		}
	}
	return nil
}

// issuedBy reports whether sig names pk as its issuer, or names none (so
// that pk is what it would be checked with).
func issuedBy(sig *packet.Signature, pk *packet.PublicKey) bool {
	switch {
	case sig.IssuerFingerprint != nil:
		return bytes.Equal(sig.IssuerFingerprint, pk.Fingerprint)
	case sig.IssuerKeyId != nil:
		return *sig.IssuerKeyId == pk.KeyId
	}
	return true
}

// canonicalKey re-serializes a keyring as x/crypto's Entity.Serialize
// writes what x/crypto's ReadEntity kept, which is Rekor's canonical key:
// per entity, the primary key; per user ID with a valid self-certification,
// the user ID, its last self-certification, then its other signatures
// in order; per subkey, the key and its binding (the newest, or a
// revocation). Direct-key signatures, key revocations and user attributes
// are dropped, as x/crypto drops them. It returns the emails of the user
// IDs kept (Rekor's search subjects).
func canonicalKey(bin []byte) ([]byte, []string, error) {
	r := packet.NewReader(bytes.NewReader(bin))
	var out bytes.Buffer
	var emails []string
	var primary *packet.PublicKey
	var entities, identities int
	// pending holds the user ID being read and its signatures.
	var uid *packet.UserId
	var self *packet.Signature
	var others []*packet.Signature
	var sub *packet.PublicKey
	var subSig *packet.Signature
	var inAttribute bool
	checks := 0
	check := func() error {
		if checks++; checks > MaxSignatureChecks {
			return fmt.Errorf("the key carries more than %d signatures by its primary key", MaxSignatureChecks)
		}
		return nil
	}
	flushUID := func() error {
		if uid != nil && self != nil {
			if err := uid.Serialize(&out); err != nil {
				return err
			}
			if err := self.Serialize(&out); err != nil {
				return err
			}
			for _, s := range others {
				if err := s.Serialize(&out); err != nil {
					return err
				}
			}
			identities++
			if govalidator.IsEmail(uid.Email) {
				emails = append(emails, uid.Email)
			}
		}
		uid, self, others = nil, nil, nil
		return nil
	}
	flushSub := func() error {
		if sub == nil {
			return nil
		}
		if subSig == nil {
			return fmt.Errorf("subkey %X has no binding signature", sub.KeyId)
		}
		if err := sub.Serialize(&out); err != nil {
			return err
		}
		if err := subSig.Serialize(&out); err != nil {
			return err
		}
		sub, subSig = nil, nil
		return nil
	}
	endEntity := func() error {
		if err := flushUID(); err != nil {
			return err
		}
		if err := flushSub(); err != nil {
			return err
		}
		if primary != nil && identities == 0 {
			return fmt.Errorf("key %X has no user ID with a valid self-signature", primary.KeyId)
		}
		identities = 0
		return nil
	}
	for {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("reading the PGP key: %w", err)
		}
		switch p := p.(type) {
		case *packet.PrivateKey:
			return nil, nil, errors.New("this is a PGP private key: send the public key (gpg --export)")
		case *packet.PublicKey:
			if !p.IsSubkey {
				if err := endEntity(); err != nil {
					return nil, nil, err
				}
				if !p.CanSign() {
					return nil, nil, fmt.Errorf("key %X is not a signing key", p.KeyId)
				}
				if err := checkKeySize(p); err != nil {
					return nil, nil, err
				}
				primary, inAttribute = p, false
				if entities++; entities > MaxKeys {
					return nil, nil, fmt.Errorf("more than %d primary keys", MaxKeys)
				}
				if err := p.Serialize(&out); err != nil {
					return nil, nil, err
				}
				continue
			}
			if primary == nil {
				return nil, nil, errors.New("the key starts with a subkey")
			}
			if err := flushUID(); err != nil {
				return nil, nil, err
			}
			if err := flushSub(); err != nil {
				return nil, nil, err
			}
			if err := checkKeySize(p); err != nil {
				return nil, nil, err
			}
			sub, inAttribute = p, false
		case *packet.UserId:
			if primary == nil {
				return nil, nil, errors.New("the key starts with a user ID")
			}
			if err := flushUID(); err != nil {
				return nil, nil, err
			}
			if sub != nil {
				return nil, nil, errors.New("a user ID after a subkey")
			}
			uid, inAttribute = p, false
		case *packet.UserAttribute:
			if err := flushUID(); err != nil {
				return nil, nil, err
			}
			inAttribute = true
		case *packet.Signature:
			// Every signature the primary key made (or that names no
			// issuer) may be verified, here or by go-crypto's ReadKeyRing,
			// whatever its type: each counts, an embedded back-signature too.
			// Counted: what go-crypto matches to the primary (its own rule,
			// CheckKeyIdOrFingerprint), what names it or no one, and every
			// signature after a subkey, which is verified here whoever it
			// names.
			if primary != nil && (sub != nil || p.CheckKeyIdOrFingerprint(primary) || issuedBy(p, primary)) {
				if err := check(); err != nil {
					return nil, nil, err
				}
				if p.EmbeddedSignature != nil {
					if err := check(); err != nil {
						return nil, nil, err
					}
				}
			}
			switch {
			case primary == nil:
				return nil, nil, errors.New("the key starts with a signature")
			case sub != nil:
				switch p.SigType {
				case packet.SigTypeSubkeyBinding:
					if err := primary.VerifyKeySignature(sub, p); err != nil {
						return nil, nil, fmt.Errorf("subkey %X: binding signature: %w", sub.KeyId, err)
					}
					if subSig == nil || subSig.SigType != packet.SigTypeSubkeyRevocation && p.CreationTime.After(subSig.CreationTime) {
						subSig = p
					}
				case packet.SigTypeSubkeyRevocation:
					if err := primary.VerifySubkeyRevocationSignature(p, sub); err != nil {
						return nil, nil, fmt.Errorf("subkey %X: revocation: %w", sub.KeyId, err)
					}
					subSig = p
				default:
					return nil, nil, fmt.Errorf("subkey %X: a signature of type %#x", sub.KeyId, p.SigType)
				}
			case uid != nil && !inAttribute:
				if (p.SigType == packet.SigTypePositiveCert || p.SigType == packet.SigTypeGenericCert) && p.IssuerKeyId != nil && *p.IssuerKeyId == primary.KeyId {
					if err := primary.VerifyUserIdSignature(uid.Id, primary, p); err != nil {
						return nil, nil, fmt.Errorf("user ID %q: self-signature: %w", uid.Id, err)
					}
					self = p
				} else {
					others = append(others, p)
				}
			}
			// Otherwise a direct-key signature, a key revocation or a user
			// attribute's certification: x/crypto keeps none of them.
		}
	}
	if err := endEntity(); err != nil {
		return nil, nil, err
	}
	if entities == 0 {
		return nil, nil, errors.New("no PGP public key in it")
	}
	return out.Bytes(), emails, nil
}
