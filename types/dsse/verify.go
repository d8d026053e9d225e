package dsse

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"fmt"

	ssldsse "github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"

	"github.com/signet-dev/signet/types"
	"github.com/signet-dev/signet/types/pki"
)

// Limits bound the work one dsse entry can ask of the server. Rekor has no
// such bounds: an entry with S signatures and V verifiers costs it up to
// V×S signature verifications, each over the whole payload.
type Limits struct {
	// MaxSignatures is the most signatures an envelope (or a canonical
	// entry given to search) may carry.
	MaxSignatures int
	// MaxVerifiers is the most keys or certificates proposedContent.verifiers
	// may list.
	MaxVerifiers int
}

// DefaultLimits are documented in docs/configuration.md. cosign writes one
// signature and one verifier; multi-party envelopes rarely have more than a
// handful. With both at 8 an entry costs at most 64 verifications, and the
// payload is decoded and hashed once whatever their number.
var DefaultLimits = Limits{MaxSignatures: 8, MaxVerifiers: 8}

// Prepared is an envelope ready for every signature check: the PAE and its
// SHA-256 computed once (every key is loaded with SHA-256, as Rekor does;
// only Ed25519 reads the PAE itself), the signatures decoded. The dsse
// and intoto kinds check envelopes with it.
type Prepared struct {
	pae    []byte
	digest []byte
	sigs   [][]byte // decoded envelope signatures, in envelope order
}

// Prepare decodes env's signatures and builds its PAE over payload (the
// decoded payload). Errors name the signature at fault; callers say whose.
func Prepare(env *ssldsse.Envelope, payload []byte) (*Prepared, error) {
	v := &Prepared{pae: ssldsse.PAE(env.PayloadType, payload)}
	d := sha256.Sum256(v.pae)
	v.digest = d[:]
	for i, s := range env.Signatures {
		sig, err := DecodeBase64(s.Sig)
		if err != nil {
			return nil, fmt.Errorf("envelope signatures[%d].sig is not base64", i)
		}
		v.sigs = append(v.sigs, sig)
	}
	return v, nil
}

// DecodeBase64 accepts standard or URL-safe padded base64, as the DSSE
// envelope specification (and so Rekor's library) does.
func DecodeBase64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return base64.URLEncoding.DecodeString(s)
	}
	return b, nil
}

// Verifier is a key or certificate (read as types/pki reads it) ready to
// check envelope signatures.
type Verifier struct {
	Key   *pki.Verifier
	sv    signature.Verifier
	keyID string // SSH SHA-256 fingerprint, "" for keys SSH cannot express
}

// LoadVerifier reads a PEM key, certificate or chain.
func LoadVerifier(raw []byte) (*Verifier, error) {
	v, err := pki.ParseVerifier(raw)
	if err != nil {
		return nil, err
	}
	sv, err := signature.LoadVerifier(v.Key, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("unusable key: %w", err)
	}
	keyID, err := ssldsse.SHA256KeyID(v.Key)
	if err != nil {
		keyID = ""
	}
	return &Verifier{Key: v, sv: sv, keyID: keyID}, nil
}

// check is one signature verification; the parser counts them.
type check func(ctx context.Context, v *Verifier, sig []byte) bool

func (p *Prepared) check(_ context.Context, v *Verifier, sig []byte) bool {
	return v.sv.VerifySignature(bytes.NewReader(sig), bytes.NewReader(p.pae), options.WithDigest(p.digest)) == nil
}

// Verifies reports whether v verifies the envelope's i-th signature.
func (p *Prepared) Verifies(v *Verifier, i int) bool {
	return p.check(context.Background(), v, p.sigs[i])
}

// assign decides which verifier accounts for each envelope signature, with
// Rekor's dsse v0.0.1 rules so that leaves are byte-for-byte Rekor's:
// verifiers are taken in order until every distinct signature value is
// accounted for; each one accepts the first signature (in envelope order)
// that it verifies, skipping signatures whose keyid names another key; a
// verifier that verifies none makes the entry invalid; a later verifier
// accepting an already accepted signature replaces the earlier one. The work
// is at most len(verifiers) × len(signatures) checks, both capped by the
// caller, and stops when ctx is done.
func assign(ctx context.Context, env *ssldsse.Envelope, sigs [][]byte, rawVerifiers [][]byte, verify check) (map[string]*Verifier, error) {
	pending := map[string]bool{}
	for _, s := range env.Signatures {
		pending[s.Sig] = true
	}
	distinct := len(pending)
	bySig := map[string]*Verifier{}
	for i, raw := range rawVerifiers {
		if len(pending) == 0 {
			break
		}
		v, err := LoadVerifier(raw)
		if err != nil {
			return nil, types.Invalid("dsse: proposedContent.verifiers[%d]: %v", i, err)
		}
		accepted := -1
		for j, s := range env.Signatures {
			if s.KeyID != "" && v.keyID != "" && s.KeyID != v.keyID {
				continue
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if verify(ctx, v, sigs[j]) {
				accepted = j
				break
			}
		}
		if accepted < 0 {
			return nil, types.Invalid("dsse: proposedContent.verifiers[%d] verifies none of the envelope's %d signatures", i, len(env.Signatures))
		}
		sig := env.Signatures[accepted].Sig
		delete(pending, sig)
		bySig[sig] = v
	}
	if len(pending) > 0 {
		return nil, types.Invalid("dsse: all signatures must have a key that verifies it: %d of %d envelope signatures verify with none of the %d verifiers", len(pending), distinct, len(rawVerifiers))
	}
	return bySig, nil
}
