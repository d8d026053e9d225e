// Package intoto is the intoto entry kind, versions 0.0.1 and 0.0.2: a
// DSSE envelope over an in-toto statement (older cosign attest writes
// these), with the keys that verify it. The leaf keeps the envelope's
// hashes and the keys; the statement itself is the entry's attestation,
// stored beside the leaf (types.Attested) and returned on reads, as Rekor
// stores it.
//
// Signatures are checked with the dsse kind's code (types/dsse), within its
// limits: at most 8 signatures per envelope.
package intoto

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	ssldsse "github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/signet-dev/signet/types"
	"github.com/signet-dev/signet/types/dsse"
)

// Name is the kind's name on the wire.
const Name = "intoto"

// Kind returns the intoto kind. 0.0.2 is the default, as in Rekor 1.5.
func Kind() types.Kind {
	return types.Kind{Name: Name, DefaultVersion: "0.0.2", Versions: map[string]types.Parser{"0.0.1": parseV001, "0.0.2": parseV002}}
}

type hash struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"value"`
}

func sha256Hash(b []byte) *hash {
	sum := sha256.Sum256(b)
	return &hash{Algorithm: "sha256", Value: hex.EncodeToString(sum[:])}
}

// checkHash refuses a hash that is not SHA-256 in hex.
func checkHash(field string, h *hash) error {
	if h.Algorithm != "sha256" {
		return types.Invalid("intoto: %s.algorithm %q must be sha256", field, h.Algorithm)
	}
	if b, err := hex.DecodeString(h.Value); err != nil || len(b) != sha256.Size {
		return types.Invalid("intoto: %s.value must be 64 hex characters", field)
	}
	return nil
}

type entry struct {
	canonical  []byte
	keys       []string
	statement  []byte
	insertable bool
}

func (e *entry) Canonical() []byte   { return e.canonical }
func (e *entry) IndexKeys() []string { return e.keys }
func (e *entry) Insertable() bool    { return e.insertable }
func (e *entry) Attestation() []byte { return e.statement }

// envelope reads a DSSE envelope's signatures and payload, bounded as the
// dsse kind bounds them.
func envelope(env *ssldsse.Envelope) (payload []byte, prepared *dsse.Prepared, err error) {
	switch {
	case len(env.Signatures) == 0:
		return nil, nil, types.Invalid("intoto: the envelope has no signatures")
	case len(env.Signatures) > dsse.DefaultLimits.MaxSignatures:
		return nil, nil, types.Invalid("intoto: the envelope has %d signatures, more than the %d this log accepts", len(env.Signatures), dsse.DefaultLimits.MaxSignatures)
	}
	if payload, err = env.DecodeB64Payload(); err != nil {
		return nil, nil, types.Invalid("intoto: the envelope's payload is not base64: %v", err)
	}
	if prepared, err = dsse.Prepare(env, payload); err != nil {
		return nil, nil, types.Invalid("intoto: %v", err)
	}
	return payload, prepared, nil
}

// statementKeys are the search keys of an in-toto payload: its subjects'
// and SLSA materials' digests.
func statementKeys(payloadType string, payload []byte) []string {
	if payloadType != dsse.InTotoPayloadType {
		return nil
	}
	return dsse.InTotoDigests(payload)
}

// ---- 0.0.1: the envelope as a JSON string and one public key.

type specV001 struct {
	Content   *contentV001 `json:"content"`
	PublicKey []byte       `json:"publicKey"`
}

type contentV001 struct {
	Envelope    string `json:"envelope,omitempty"`
	Hash        *hash  `json:"hash,omitempty"`
	PayloadHash *hash  `json:"payloadHash,omitempty"`
}

func parseV001(_ context.Context, raw json.RawMessage) (types.Entry, error) {
	var s specV001
	if err := types.DecodeStrict(raw, &s); err != nil {
		return nil, types.Invalid("intoto spec: %v", err)
	}
	switch {
	case s.Content == nil:
		return nil, types.Invalid("intoto: content is required")
	case len(s.PublicKey) == 0:
		return nil, types.Invalid("intoto: publicKey is required (a PEM key or certificate)")
	}
	key, err := dsse.LoadVerifier(s.PublicKey)
	if err != nil {
		return nil, types.Invalid("intoto: publicKey: %v", err)
	}
	canonKey, err := key.Key.CanonicalPEM()
	if err != nil {
		return nil, types.Invalid("intoto: publicKey: %v", err)
	}
	canon := specV001{PublicKey: canonKey, Content: &contentV001{}}
	var statement []byte
	var keys []string
	insertable := s.Content.Envelope != ""
	if !insertable {
		// The canonical form, as a search gives it: hashes without the
		// envelope.
		if s.Content.Hash == nil {
			return nil, types.Invalid("intoto: content.envelope is required (or, to search, content.hash)")
		}
		if err := checkHash("content.hash", s.Content.Hash); err != nil {
			return nil, err
		}
		canon.Content.Hash = s.Content.Hash
		if s.Content.PayloadHash != nil {
			if err := checkHash("content.payloadHash", s.Content.PayloadHash); err != nil {
				return nil, err
			}
			canon.Content.PayloadHash = s.Content.PayloadHash
		}
	} else {
		var env ssldsse.Envelope
		if err := json.Unmarshal([]byte(s.Content.Envelope), &env); err != nil {
			return nil, types.Invalid("intoto: content.envelope is not a DSSE envelope: %v", err)
		}
		payload, prepared, err := envelope(&env)
		if err != nil {
			return nil, err
		}
		// One signature the key verifies is enough, as Rekor's 0.0.1
		// (sigstore's DSSE verifier, threshold 1).
		verified := false
		for i := range env.Signatures {
			if prepared.Verifies(key, i) {
				verified = true
				break
			}
		}
		if !verified {
			return nil, types.Invalid("intoto: none of the envelope's %d signatures verifies with publicKey", len(env.Signatures))
		}
		canon.Content.Hash = sha256Hash([]byte(s.Content.Envelope))
		canon.Content.PayloadHash = sha256Hash(payload)
		statement = payload
		keys = statementKeys(env.PayloadType, payload)
	}
	leaf, err := types.Canonicalize(Name, "0.0.1", canon)
	if err != nil {
		return nil, err
	}
	keyHash := sha256.Sum256(canonKey)
	keys = append(keys, "sha256:"+canon.Content.Hash.Value, "sha256:"+hex.EncodeToString(keyHash[:]))
	keys = append(keys, key.Key.Subjects()...)
	if canon.Content.PayloadHash != nil {
		keys = append(keys, "sha256:"+canon.Content.PayloadHash.Value)
	}
	return &entry{canonical: leaf, keys: keys, statement: statement, insertable: insertable}, nil
}

// ---- 0.0.2: the envelope as an object, a key per signature.

type specV002 struct {
	Content *contentV002 `json:"content"`
}

type contentV002 struct {
	Envelope    *envelopeV002 `json:"envelope"`
	Hash        *hash         `json:"hash,omitempty"`
	PayloadHash *hash         `json:"payloadHash,omitempty"`
}

// envelopeV002 is the envelope as Rekor's 0.0.2 schema carries it: payload
// and each sig are base64 of the DSSE envelope's own (base64) fields, as
// cosign sends them.
type envelopeV002 struct {
	Payload     []byte    `json:"payload,omitempty"`
	PayloadType string    `json:"payloadType"`
	Signatures  []sigV002 `json:"signatures"`
}

type sigV002 struct {
	KeyID     string `json:"keyid,omitempty"`
	PublicKey []byte `json:"publicKey"`
	Sig       []byte `json:"sig"`
}

func parseV002(_ context.Context, raw json.RawMessage) (types.Entry, error) {
	var s specV002
	if err := types.DecodeStrict(raw, &s); err != nil {
		return nil, types.Invalid("intoto spec: %v", err)
	}
	switch {
	case s.Content == nil || s.Content.Envelope == nil:
		return nil, types.Invalid("intoto: content.envelope is required")
	case s.Content.Envelope.PayloadType == "":
		return nil, types.Invalid("intoto: content.envelope.payloadType is required")
	case len(s.Content.Envelope.Signatures) == 0:
		return nil, types.Invalid("intoto: content.envelope.signatures needs at least one signature")
	case len(s.Content.Envelope.Signatures) > dsse.DefaultLimits.MaxSignatures:
		return nil, types.Invalid("intoto: the envelope has %d signatures, more than the %d this log accepts", len(s.Content.Envelope.Signatures), dsse.DefaultLimits.MaxSignatures)
	case s.Content.Hash == nil:
		// Rekor takes the envelope's hash from the client too: the
		// envelope's own bytes are not sent.
		return nil, types.Invalid("intoto: content.hash (the SHA-256 of the envelope) is required")
	}
	if err := checkHash("content.hash", s.Content.Hash); err != nil {
		return nil, err
	}
	keys := make([]*dsse.Verifier, len(s.Content.Envelope.Signatures))
	for i, sig := range s.Content.Envelope.Signatures {
		if len(sig.Sig) == 0 || len(sig.PublicKey) == 0 {
			return nil, types.Invalid("intoto: content.envelope.signatures[%d] needs sig and publicKey", i)
		}
		k, err := dsse.LoadVerifier(sig.PublicKey)
		if err != nil {
			return nil, types.Invalid("intoto: content.envelope.signatures[%d].publicKey: %v", i, err)
		}
		keys[i] = k
	}
	canon := specV002{Content: &contentV002{
		Envelope: &envelopeV002{PayloadType: s.Content.Envelope.PayloadType, Signatures: s.Content.Envelope.Signatures},
		Hash:     s.Content.Hash,
	}}
	insertable := len(s.Content.Envelope.Payload) > 0
	var statement []byte
	var searchKeys []string
	if !insertable {
		// The canonical form, to search: payloadHash given, not computed.
		if s.Content.PayloadHash == nil {
			return nil, types.Invalid("intoto: content.envelope.payload is required (or, to search, content.payloadHash)")
		}
		if err := checkHash("content.payloadHash", s.Content.PayloadHash); err != nil {
			return nil, err
		}
		canon.Content.PayloadHash = s.Content.PayloadHash
	} else {
		env := ssldsse.Envelope{PayloadType: s.Content.Envelope.PayloadType, Payload: string(s.Content.Envelope.Payload)}
		for _, sig := range s.Content.Envelope.Signatures {
			env.Signatures = append(env.Signatures, ssldsse.Signature{KeyID: sig.KeyID, Sig: string(sig.Sig)})
		}
		payload, prepared, err := envelope(&env)
		if err != nil {
			return nil, err
		}
		// As Rekor's 0.0.2: each key must verify at least one signature,
		// and every signature must be verified by some key.
		unverified := map[int]bool{}
		for i := range env.Signatures {
			unverified[i] = true
		}
		for k, key := range keys {
			verifiedOne := false
			for i := range env.Signatures {
				if prepared.Verifies(key, i) {
					verifiedOne = true
					delete(unverified, i)
				}
			}
			if !verifiedOne {
				return nil, types.Invalid("intoto: content.envelope.signatures[%d].publicKey verifies none of the envelope's signatures", k)
			}
		}
		if len(unverified) > 0 {
			return nil, types.Invalid("intoto: all signatures must have a key that verifies it: %d of %d do not", len(unverified), len(env.Signatures))
		}
		canon.Content.PayloadHash = sha256Hash(payload)
		statement = payload
		searchKeys = statementKeys(env.PayloadType, payload)
	}
	leaf, err := types.Canonicalize(Name, "0.0.2", canon)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		pemKey, err := k.Key.CanonicalPEM()
		if err != nil {
			return nil, types.Invalid("intoto: %v", err)
		}
		sum := sha256.Sum256(pemKey)
		searchKeys = append(searchKeys, "sha256:"+hex.EncodeToString(sum[:]))
		searchKeys = append(searchKeys, k.Key.Subjects()...)
	}
	searchKeys = append(searchKeys, "sha256:"+canon.Content.PayloadHash.Value)
	return &entry{canonical: leaf, keys: searchKeys, statement: statement, insertable: insertable}, nil
}
