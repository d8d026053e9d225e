package dsse_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	ssldsse "github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/sigstore/pkg/signature"
	sigdsse "github.com/sigstore/sigstore/pkg/signature/dsse"

	"github.com/signet-dev/signet/client"
	"github.com/signet-dev/signet/types"
	"github.com/signet-dev/signet/types/dsse"
	"github.com/signet-dev/signet/types/internal/rekorref"
)

type key struct {
	signer crypto.Signer
	pem    []byte
}

func newKey(t *testing.T, rsaKey bool) key {
	var s crypto.Signer
	if rsaKey {
		s, _ = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		s, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	der, _ := x509.MarshalPKIXPublicKey(s.Public())
	return key{s, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})}
}

func envelope(t *testing.T, payloadType string, payload []byte, keys ...key) []byte {
	var signers []ssldsse.Signer
	for _, k := range keys {
		sv, err := signature.LoadSignerVerifier(k.signer, crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		signers = append(signers, &sigdsse.SignerAdapter{SignatureSigner: sv})
	}
	es, err := ssldsse.NewEnvelopeSigner(signers...)
	if err != nil {
		t.Fatal(err)
	}
	env, err := es.SignPayload(context.Background(), payloadType, payload)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(env)
	return b
}

func statement() []byte {
	d := sha256.Sum256([]byte("artifact"))
	b, _ := json.Marshal(map[string]any{
		"_type": "https://in-toto.io/Statement/v1", "predicateType": "https://slsa.dev/provenance/v0.2",
		"subject":   []map[string]any{{"name": "a", "digest": map[string]string{"sha256": strings.ToUpper(string(hexOf(d[:])))}}},
		"predicate": map[string]any{"materials": []map[string]any{{"uri": "git+x", "digest": map[string]string{"sha1": strings.Repeat("0a", 20)}}}},
	})
	return b
}

func hexOf(b []byte) []byte {
	const h = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, h[c>>4], h[c&15])
	}
	return out
}

func TestCanonicalLeafMatchesRekor(t *testing.T) {
	ec1, ec2, rsaK := newKey(t, false), newKey(t, false), newKey(t, true)
	tests := []struct {
		name      string
		env       []byte
		verifiers [][]byte
	}{
		{"one signature, in-toto", envelope(t, "application/vnd.in-toto+json", statement(), ec1), [][]byte{ec1.pem}},
		{"two signatures sorted", envelope(t, "application/vnd.in-toto+json", statement(), ec1, rsaK), [][]byte{rsaK.pem, ec1.pem}},
		{"extra unused verifier first", envelope(t, "text/plain", []byte("hello"), ec2), [][]byte{ec2.pem, ec1.pem}},
	}
	reg := types.NewRegistry(dsse.Kind())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proposal, err := client.DSSE(tt.env, tt.verifiers...)
			if err != nil {
				t.Fatal(err)
			}
			e := rekorref.Matches(t, reg, proposal)
			// The canonical form parses back to the same leaf (used by search).
			var leaf struct {
				Spec json.RawMessage `json:"spec"`
			}
			json.Unmarshal(e.Canonical(), &leaf) //nolint:errcheck
			again, err := reg.Parse(context.Background(), []byte(`{"kind":"dsse","apiVersion":"0.0.1","spec":`+string(leaf.Spec)+`}`))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again.Canonical(), e.Canonical()) || again.Insertable() {
				t.Fatal("canonical form does not round-trip, or is insertable")
			}
		})
	}
}

func TestRejections(t *testing.T) {
	k1, k2 := newKey(t, false), newKey(t, false)
	signedBy1 := envelope(t, "text/plain", []byte("x"), k1)
	signedBy12 := envelope(t, "text/plain", []byte("x"), k1, k2)
	tests := []struct {
		name string
		body string
		want string
	}{
		{"wrong key", mustProposal(t, signedBy1, k2.pem), "verifiers[0] verifies none of the envelope's 1 signatures"},
		{"unused verifier before the signer (Rekor refuses it too)", mustProposal(t, signedBy1, k2.pem, k1.pem), "verifiers[0] verifies none"},
		{"one of two signatures unverified", mustProposal(t, signedBy12, k1.pem), "1 of 2 envelope signatures"},
		{"envelope not JSON", mustProposal(t, []byte("nope"), k1.pem), "not a DSSE envelope"},
		{"no signatures", mustProposal(t, []byte(`{"payload":"eA==","payloadType":"t","signatures":[]}`), k1.pem), "no signatures"},
		{"both forms", `{"kind":"dsse","apiVersion":"0.0.1","spec":{"proposedContent":{"envelope":"{}","verifiers":["` + "QQ==" + `"]},"payloadHash":{"algorithm":"sha256","value":"00"}}}`, "not both"},
		{"neither form", `{"kind":"dsse","apiVersion":"0.0.1","spec":{}}`, "either proposedContent"},
	}
	reg := types.NewRegistry(dsse.Kind())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := reg.ParseInsertable(context.Background(), []byte(tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want containing %q", err, tt.want)
			}
		})
	}
}

func mustProposal(t *testing.T, env []byte, verifiers ...[]byte) string {
	p, err := client.DSSE(env, verifiers...)
	if err != nil {
		t.Fatal(err)
	}
	return string(p)
}

// keyWithID signs envelopes whose signatures carry keyid.
type keyWithID struct {
	key
	id string
}

func envelopeWithKeyIDs(t *testing.T, payload []byte, keys ...keyWithID) []byte {
	var signers []ssldsse.Signer
	for _, k := range keys {
		sv, err := signature.LoadSignerVerifier(k.signer, crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		signers = append(signers, &sigdsse.SignerAdapter{SignatureSigner: sv, PubKeyID: k.id})
	}
	es, err := ssldsse.NewEnvelopeSigner(signers...)
	if err != nil {
		t.Fatal(err)
	}
	env, err := es.SignPayload(context.Background(), "text/plain", payload)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(env)
	return b
}

// TestVerificationWorkIsBounded counts the signature checks an entry costs:
// the reproduction was one entry with 300 signatures and 300 keys
// costing 90,000 verifications, each over the whole payload.
func TestVerificationWorkIsBounded(t *testing.T) {
	keys := make([]key, 9)
	for i := range keys {
		keys[i] = newKey(t, false)
	}
	pems := func(ks ...key) [][]byte {
		var out [][]byte
		for _, k := range ks {
			out = append(out, k.pem)
		}
		return out
	}
	big := bytes.Repeat([]byte("p"), 1<<20)
	eight := envelope(t, "text/plain", big, keys[:8]...)
	// The verifiers in reverse order: verifier i accepts the signature at
	// position 7-i, after checking the ones before it.
	reversed := pems(keys[7], keys[6], keys[5], keys[4], keys[3], keys[2], keys[1], keys[0])
	k1, k2 := keys[0], keys[1]
	id1, _ := ssldsse.SHA256KeyID(k1.signer.Public())
	tests := []struct {
		name       string
		proposal   string
		wantErr    string
		wantChecks int
	}{
		{"300 signatures refused before any check",
			mustProposal(t, manySignatures(t, envelope(t, "text/plain", []byte("x"), k1), 300), k1.pem),
			"the envelope has 300 signatures, more than the 8", 0},
		{"9 verifiers refused before any check",
			mustProposal(t, envelope(t, "text/plain", []byte("x"), k1), pems(keys...)...),
			"lists 9 keys, more than the 8", 0},
		{"8 signatures, 8 verifiers in the worst order", mustProposal(t, eight, reversed...), "", 8 + 7 + 6 + 5 + 4 + 3 + 2 + 1},
		{"8 signatures, 8 verifiers in order", mustProposal(t, eight, pems(keys[:8]...)...), "", 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8},
		{"a wrong key costs one check per signature, then stops",
			mustProposal(t, eight, pems(keys[8], keys[0])...), "verifiers[0] verifies none", 8},
		{"a keyid naming another key is not checked",
			mustProposal(t, envelopeWithKeyIDs(t, []byte("x"), keyWithID{k1, id1}), k2.pem, k1.pem), "verifiers[0] verifies none", 0},
		{"a keyid naming the key is checked",
			mustProposal(t, envelopeWithKeyIDs(t, []byte("x"), keyWithID{k1, id1}), k1.pem), "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checks := 0
			reg := types.NewRegistry(dsse.KindCounting(dsse.DefaultLimits, func() { checks++ }))
			_, err := reg.ParseInsertable(context.Background(), []byte(tt.proposal))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want containing %q", err, tt.wantErr)
			}
			if checks != tt.wantChecks {
				t.Fatalf("%d signature checks, want %d", checks, tt.wantChecks)
			}
			// Rekor accepts and refuses the same entries (it has no caps, so
			// only for entries within them).
			if tt.wantChecks > 0 {
				if _, _, rerr := rekorref.Canonicalize([]byte(tt.proposal)); (rerr == nil) != (err == nil) {
					t.Fatalf("Rekor's verdict differs: ours %v, Rekor's %v", err, rerr)
				}
			}
		})
	}
}

// manySignatures repeats an envelope's signature n times (distinct keyids,
// so the values are what a signer could send).
func manySignatures(t *testing.T, env []byte, n int) []byte {
	var e ssldsse.Envelope
	if err := json.Unmarshal(env, &e); err != nil {
		t.Fatal(err)
	}
	one := e.Signatures[0]
	e.Signatures = nil
	for i := 0; i < n; i++ {
		e.Signatures = append(e.Signatures, ssldsse.Signature{KeyID: strings.Repeat("k", i%7), Sig: one.Sig})
	}
	b, _ := json.Marshal(e)
	return b
}

func TestCancelledRequestStopsVerifying(t *testing.T) {
	k1 := newKey(t, false)
	keys := []key{newKey(t, false), newKey(t, false), k1}
	env := envelope(t, "text/plain", []byte("x"), keys...)
	ctx, cancel := context.WithCancel(context.Background())
	checks := 0
	reg := types.NewRegistry(dsse.KindCounting(dsse.DefaultLimits, func() {
		checks++
		cancel() // the client goes away during the first check
	}))
	_, err := reg.ParseInsertable(ctx, []byte(mustProposal(t, env, k1.pem)))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if checks != 1 {
		t.Fatalf("%d checks after the request was cancelled, want 1", checks)
	}
}

func TestCanonicalFormSignaturesAreCapped(t *testing.T) {
	var sigs []string
	for i := 0; i < 9; i++ {
		sigs = append(sigs, `{"signature":"c2ln","verifier":"QQ=="}`)
	}
	body := `{"kind":"dsse","apiVersion":"0.0.1","spec":{"envelopeHash":{"algorithm":"sha256","value":"` + strings.Repeat("0", 64) +
		`"},"payloadHash":{"algorithm":"sha256","value":"` + strings.Repeat("0", 64) + `"},"signatures":[` + strings.Join(sigs, ",") + `]}}`
	_, err := types.NewRegistry(dsse.Kind()).Parse(context.Background(), []byte(body))
	if err == nil || !strings.Contains(err.Error(), "9 signatures, more than the 8") {
		t.Fatalf("error %v, want the signature cap", err)
	}
}
