// Package cose is the cose entry kind (0.0.1): a COSE_Sign1 message
// (RFC 9052) with the key that verifies it. The leaf holds the key and the
// message's and payload's digests; the message itself is the entry's
// attestation, stored beside the leaf (types.Attested), as Rekor stores it.
package cose

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/fxamacker/cbor/v2"
	gocose "github.com/veraison/go-cose"

	"github.com/signet-dev/signet/types"
	"github.com/signet-dev/signet/types/pki"
)

// Name is the kind's name on the wire.
const Name = "cose"

// inTotoPayloadType is the content type of a message whose payload is an
// in-toto statement: its subjects' digests become search keys.
const inTotoPayloadType = "application/vnd.in-toto+json"

// Bounds on a message's CBOR structure, checked before go-cose decodes it.
const (
	maxItems  = 1024
	maxLevels = 16
)

// shape checks a message's CBOR structure against those bounds.
var shape = func() cbor.DecMode {
	dm, err := cbor.DecOptions{MaxArrayElements: maxItems, MaxMapPairs: maxItems, MaxNestedLevels: maxLevels}.DecMode()
	if err != nil {
		panic(err) // constant options
	}
	return dm
}()

// Kind returns the cose kind.
func Kind() types.Kind {
	return types.Kind{Name: Name, DefaultVersion: "0.0.1", Versions: map[string]types.Parser{"0.0.1": parseV001}}
}

// proposedV001 is what a client sends (Rekor's schema; the hashes it may
// also carry are recomputed from the message, as Rekor does).
type proposedV001 struct {
	Message   []byte        `json:"message"`
	PublicKey []byte        `json:"publicKey"`
	Data      *proposedData `json:"data,omitempty"`
}

type proposedData struct {
	AAD          []byte    `json:"aad,omitempty"`
	PayloadHash  *hashV001 `json:"payloadHash,omitempty"`
	EnvelopeHash *hashV001 `json:"envelopeHash,omitempty"`
}

// canonicalV001 is the leaf's spec, fields in RFC 8785 order.
type canonicalV001 struct {
	Data      canonicalData `json:"data"`
	PublicKey []byte        `json:"publicKey"`
}

type canonicalData struct {
	EnvelopeHash hashV001 `json:"envelopeHash"`
	PayloadHash  hashV001 `json:"payloadHash"`
}

type hashV001 struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"value"`
}

// entry is the verified message's leaf and keys, and the message itself,
// stored as its attestation.
type entry struct {
	types.Verified
	message []byte
}

func (e *entry) Attestation() []byte { return e.message }

func parseV001(_ context.Context, raw json.RawMessage) (types.Entry, error) {
	var p proposedV001
	if err := types.DecodeStrict(raw, &p); err != nil {
		return nil, types.Invalid("cose spec: %v", err)
	}
	switch {
	case len(p.PublicKey) == 0:
		return nil, types.Invalid("cose: publicKey is required (a PEM key or certificate)")
	case len(p.Message) == 0:
		return nil, types.Invalid("cose: message is required (the COSE_Sign1 message, CBOR)")
	}
	v, err := pki.ParseVerifier(p.PublicKey)
	if err != nil {
		return nil, types.Invalid("cose: publicKey: %v", err)
	}
	alg, err := algorithm(v.Key)
	if err != nil {
		return nil, types.Invalid("cose: publicKey: %v", err)
	}
	verifier, err := gocose.NewVerifier(alg, v.Key)
	if err != nil {
		return nil, types.Invalid("cose: publicKey: %v", err)
	}
	// go-cose decodes with fxamacker/cbor's defaults (131,072 pairs per
	// map): header maps that big cost seconds to decode. A COSE_Sign1 has a
	// handful of headers; the payload is a byte string, not counted.
	if err := shape.Wellformed(p.Message); err != nil {
		return nil, types.Invalid("cose: message: %v (at most %d array elements or map pairs, %d levels)", err, maxItems, maxLevels)
	}
	msg := gocose.NewSign1Message()
	if err := msg.UnmarshalCBOR(p.Message); err != nil {
		return nil, types.Invalid("cose: message: %v", err)
	}
	var aad []byte
	if p.Data != nil {
		aad = p.Data.AAD
	}
	if err := msg.Verify(aad, verifier); err != nil {
		return nil, types.Invalid("cose: the message does not verify with the given key and aad: %v", err)
	}
	if msg.Payload == nil {
		return nil, types.Invalid("cose: the message's payload is detached; send a message that carries it")
	}
	envelope := sha256.Sum256(p.Message)
	payload := sha256.Sum256(msg.Payload)
	canonKey, err := v.CanonicalPEM()
	if err != nil {
		return nil, err
	}
	leaf, err := types.Canonicalize(Name, "0.0.1", canonicalV001{
		Data: canonicalData{
			EnvelopeHash: hashV001{Algorithm: "sha256", Value: hex.EncodeToString(envelope[:])},
			PayloadHash:  hashV001{Algorithm: "sha256", Value: hex.EncodeToString(payload[:])},
		},
		PublicKey: canonKey,
	})
	if err != nil {
		return nil, err
	}
	keyHash := sha256.Sum256(canonKey)
	keys := append([]string{hex.EncodeToString(keyHash[:])}, v.Subjects()...)
	keys = append(keys, "sha256:"+hex.EncodeToString(envelope[:]), "sha256:"+hex.EncodeToString(payload[:]))
	if ct, ok := msg.Headers.Protected[gocose.HeaderLabelContentType].(string); ok && ct == inTotoPayloadType {
		keys = append(keys, statementSubjects(msg.Payload)...)
	}
	return &entry{Verified: types.Verified{Leaf: leaf, Keys: keys}, message: p.Message}, nil
}

// statementSubjects are an in-toto statement's subject digests as search
// keys ("<alg>:<digest>"); a payload that is not one gives none, as in
// Rekor.
func statementSubjects(payload []byte) []string {
	var st struct {
		Subject []struct {
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
	}
	if json.Unmarshal(payload, &st) != nil {
		return nil
	}
	var keys []string
	for _, s := range st.Subject {
		for alg, d := range s.Digest {
			keys = append(keys, alg+":"+d)
		}
	}
	return keys
}

// algorithm is the COSE algorithm Rekor verifies a key's messages with:
// PS256 for RSA, ES256 for P-256; other keys are refused, as there.
func algorithm(pub crypto.PublicKey) (gocose.Algorithm, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return gocose.AlgorithmPS256, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return 0, fmt.Errorf("ECDSA on %s: cose entries take P-256 (ES256) or RSA (PS256) keys", k.Curve.Params().Name)
		}
		return gocose.AlgorithmES256, nil
	}
	return 0, fmt.Errorf("a %T: cose entries take P-256 (ES256) or RSA (PS256) keys", pub)
}
