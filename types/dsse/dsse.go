// Package dsse is the dsse entry kind: a DSSE envelope (cosign v3 logs every
// image signature and attestation this way) and the keys that verify it. The
// leaf keeps the signatures and hashes, never the payload.
package dsse

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"

	ssldsse "github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/signet-dev/signet/types"
	"github.com/signet-dev/signet/types/pki"
)

// Name is the kind's name on the wire.
const Name = "dsse"

// InTotoPayloadType marks payloads whose subject digests are indexed.
const InTotoPayloadType = "application/vnd.in-toto+json"

// Kind returns the dsse kind with DefaultLimits.
func Kind() types.Kind { return KindWith(DefaultLimits) }

// KindWith returns the dsse kind with other limits.
func KindWith(l Limits) types.Kind {
	p := &parser{limits: l}
	return types.Kind{Name: Name, DefaultVersion: "0.0.1", Versions: map[string]types.Parser{"0.0.1": p.parseV001}}
}

type parser struct {
	limits Limits
	// checked, when set, is told of every signature check (tests count the
	// work an entry costs with it).
	checked func()
}

// specV001 holds either proposedContent (to insert) or the computed fields
// (the canonical form, to search), never both.
type specV001 struct {
	ProposedContent *proposedContent `json:"proposedContent,omitempty"`
	EnvelopeHash    *hash            `json:"envelopeHash,omitempty"`
	PayloadHash     *hash            `json:"payloadHash,omitempty"`
	Signatures      []sigItem        `json:"signatures,omitempty"`
}

type proposedContent struct {
	Envelope  *string  `json:"envelope"`
	Verifiers [][]byte `json:"verifiers"`
}

type hash struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"value"`
}

type sigItem struct {
	Signature *string `json:"signature"`
	Verifier  []byte  `json:"verifier"`
}

type entry struct {
	canonical  []byte
	keys       []string
	insertable bool
}

func (e *entry) Canonical() []byte   { return e.canonical }
func (e *entry) IndexKeys() []string { return e.keys }
func (e *entry) Insertable() bool    { return e.insertable }

func (p *parser) parseV001(ctx context.Context, raw json.RawMessage) (types.Entry, error) {
	var s specV001
	if err := types.DecodeStrict(raw, &s); err != nil {
		return nil, types.Invalid("dsse spec: %v", err)
	}
	computed := s.EnvelopeHash != nil || s.PayloadHash != nil || len(s.Signatures) > 0
	if s.ProposedContent == nil {
		if s.EnvelopeHash == nil || s.PayloadHash == nil || len(s.Signatures) == 0 {
			return nil, types.Invalid("dsse: either proposedContent or envelopeHash, payloadHash and signatures must be present")
		}
		return p.canonicalForm(s)
	}
	if computed {
		return nil, types.Invalid("dsse: give either proposedContent or envelopeHash, payloadHash and signatures, not both")
	}
	return p.proposedForm(ctx, s.ProposedContent)
}

func checkHash(field string, h *hash) error {
	if h.Algorithm != "sha256" {
		return types.Invalid("dsse: %s.algorithm %q must be sha256", field, h.Algorithm)
	}
	if b, err := hex.DecodeString(h.Value); err != nil || len(b) != sha256.Size {
		return types.Invalid("dsse: %s.value must be 64 hex characters", field)
	}
	return nil
}

func (p *parser) canonicalForm(s specV001) (types.Entry, error) {
	if len(s.Signatures) > p.limits.MaxSignatures {
		return nil, types.Invalid("dsse: %d signatures, more than the %d this log accepts", len(s.Signatures), p.limits.MaxSignatures)
	}
	if err := checkHash("envelopeHash", s.EnvelopeHash); err != nil {
		return nil, err
	}
	if err := checkHash("payloadHash", s.PayloadHash); err != nil {
		return nil, err
	}
	for i, sig := range s.Signatures {
		if sig.Signature == nil || len(sig.Verifier) == 0 {
			return nil, types.Invalid("dsse: signatures[%d] needs signature and verifier", i)
		}
		if _, err := pki.ParseVerifier(sig.Verifier); err != nil {
			return nil, types.Invalid("dsse: signatures[%d].verifier: %v", i, err)
		}
	}
	sort.Slice(s.Signatures, func(i, j int) bool { return *s.Signatures[i].Signature < *s.Signatures[j].Signature })
	leaf, err := types.Canonicalize(Name, "0.0.1", s)
	if err != nil {
		return nil, err
	}
	return &entry{canonical: leaf}, nil
}

func (p *parser) proposedForm(ctx context.Context, pc *proposedContent) (types.Entry, error) {
	if pc.Envelope == nil {
		return nil, types.Invalid("dsse: proposedContent.envelope is required")
	}
	if len(pc.Verifiers) == 0 {
		return nil, types.Invalid("dsse: proposedContent.verifiers needs at least one key or certificate")
	}
	if len(pc.Verifiers) > p.limits.MaxVerifiers {
		return nil, types.Invalid("dsse: proposedContent.verifiers lists %d keys, more than the %d this log accepts", len(pc.Verifiers), p.limits.MaxVerifiers)
	}
	var env ssldsse.Envelope
	if err := json.Unmarshal([]byte(*pc.Envelope), &env); err != nil {
		return nil, types.Invalid("dsse: proposedContent.envelope is not a DSSE envelope: %v", err)
	}
	if len(env.Signatures) == 0 {
		return nil, types.Invalid("dsse: the envelope has no signatures")
	}
	if len(env.Signatures) > p.limits.MaxSignatures {
		return nil, types.Invalid("dsse: the envelope has %d signatures, more than the %d this log accepts", len(env.Signatures), p.limits.MaxSignatures)
	}
	payload, err := env.DecodeB64Payload()
	if err != nil {
		return nil, types.Invalid("dsse: envelope payload is not base64: %v", err)
	}
	prepared, err := Prepare(&env, payload)
	if err != nil {
		return nil, types.Invalid("dsse: %v", err)
	}
	check := prepared.check
	if p.checked != nil {
		check = func(ctx context.Context, v *Verifier, sig []byte) bool {
			p.checked()
			return prepared.check(ctx, v, sig)
		}
	}
	verifierBySig, err := assign(ctx, &env, prepared.sigs, pc.Verifiers, check)
	if err != nil {
		return nil, err
	}

	sigs := make([]string, 0, len(verifierBySig))
	for sig := range verifierBySig {
		sigs = append(sigs, sig)
	}
	sort.Strings(sigs)
	var keys []string
	canon := specV001{}
	for i := range sigs {
		v := verifierBySig[sigs[i]].Key
		pemKey, err := v.CanonicalPEM()
		if err != nil {
			return nil, types.Invalid("dsse: encoding verifier: %v", err)
		}
		canon.Signatures = append(canon.Signatures, sigItem{Signature: &sigs[i], Verifier: pemKey})
		keyHash := sha256.Sum256(pemKey)
		keys = append(keys, "sha256:"+hex.EncodeToString(keyHash[:]))
		keys = append(keys, v.Subjects()...)
	}
	payloadHash := sha256.Sum256(payload)
	envelopeHash := sha256.Sum256([]byte(*pc.Envelope))
	canon.PayloadHash = &hash{Algorithm: "sha256", Value: hex.EncodeToString(payloadHash[:])}
	canon.EnvelopeHash = &hash{Algorithm: "sha256", Value: hex.EncodeToString(envelopeHash[:])}
	keys = append(keys, "sha256:"+canon.PayloadHash.Value, "sha256:"+canon.EnvelopeHash.Value)
	if env.PayloadType == InTotoPayloadType {
		keys = append(keys, InTotoDigests(payload)...)
	}
	leaf, err := types.Canonicalize(Name, "0.0.1", canon)
	if err != nil {
		return nil, err
	}
	return &entry{canonical: leaf, keys: keys, insertable: true}, nil
}

// InTotoDigests returns "alg:digest" for every subject and SLSA material of
// an in-toto statement, the search keys Rekor's dsse and intoto kinds give
// it; a payload that is not one yields none.
func InTotoDigests(payload []byte) []string {
	var st struct {
		Subject []struct {
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
		Predicate json.RawMessage `json:"predicate"`
	}
	if json.Unmarshal(payload, &st) != nil {
		return nil
	}
	var out []string
	for _, s := range st.Subject {
		for alg, d := range s.Digest {
			out = append(out, alg+":"+d)
		}
	}
	var pred struct {
		Materials []struct {
			Digest map[string]string `json:"digest"`
		} `json:"materials"`
	}
	if len(st.Predicate) > 0 && json.Unmarshal(st.Predicate, &pred) == nil {
		for _, m := range pred.Materials {
			for alg, d := range m.Digest {
				out = append(out, alg+":"+d)
			}
		}
	}
	sort.Strings(out)
	return out
}
