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
		{"wrong key", mustProposal(t, signedBy1, k2.pem), "all signatures must have a key that verifies it"},
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
