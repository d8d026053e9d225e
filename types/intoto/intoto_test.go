package intoto_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	ssldsse "github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/signet-dev/signet/types"
	"github.com/signet-dev/signet/types/internal/rekorref"
	"github.com/signet-dev/signet/types/intoto"
)

const inToto = "application/vnd.in-toto+json"

// provenance is a SLSA v0.2 statement: its subject and materials are
// search keys.
var provenance = []byte(`{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://slsa.dev/provenance/v0.2","subject":[{"name":"app.tar.gz","digest":{"sha256":"` + strings.Repeat("ab", 32) + `"}}],` +
	`"predicate":{"builder":{"id":"https://ci.example.com"},"buildType":"https://example.com/build","materials":[{"uri":"git+https://example.com/app","digest":{"sha1":"` + strings.Repeat("cd", 20) + `"}}]}}`)

func pemKey(t testing.TB, pub crypto.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// sign signs DSSE's PAE with key as a DSSE signer does (SHA-256 for ECDSA
// and RSA, pure Ed25519).
func sign(t testing.TB, key crypto.Signer, payloadType string, payload []byte) string {
	t.Helper()
	pae := ssldsse.PAE(payloadType, payload)
	var sig []byte
	var err error
	switch k := key.(type) {
	case ed25519.PrivateKey:
		sig = ed25519.Sign(k, pae)
	case *rsa.PrivateKey:
		d := sha256.Sum256(pae)
		sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, d[:])
	default:
		d := sha256.Sum256(pae)
		sig, err = key.Sign(rand.Reader, d[:], crypto.SHA256)
	}
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

func envelope(t testing.TB, payloadType string, payload []byte, keys ...crypto.Signer) ssldsse.Envelope {
	t.Helper()
	env := ssldsse.Envelope{PayloadType: payloadType, Payload: base64.StdEncoding.EncodeToString(payload)}
	for _, k := range keys {
		env.Signatures = append(env.Signatures, ssldsse.Signature{Sig: sign(t, k, payloadType, payload)})
	}
	return env
}

// v001 is an intoto 0.0.1 proposal as rekor-cli makes it.
func v001(t testing.TB, env ssldsse.Envelope, key []byte) []byte {
	t.Helper()
	e, _ := json.Marshal(env)
	b, _ := json.Marshal(map[string]any{"apiVersion": "0.0.1", "kind": "intoto", "spec": map[string]any{
		"content": map[string]any{"envelope": string(e)}, "publicKey": key}})
	return b
}

// v002 is an intoto 0.0.2 proposal as cosign and rekor-cli make it: the
// envelope's payload and sigs base64 once more, the envelope's hash given.
func v002(t testing.TB, env ssldsse.Envelope, keys ...[]byte) []byte {
	t.Helper()
	e, _ := json.Marshal(env)
	h := sha256.Sum256(e)
	var sigs []map[string]any
	for i, s := range env.Signatures {
		sigs = append(sigs, map[string]any{"sig": []byte(s.Sig), "publicKey": keys[i]})
	}
	b, _ := json.Marshal(map[string]any{"apiVersion": "0.0.2", "kind": "intoto", "spec": map[string]any{
		"content": map[string]any{
			"envelope": map[string]any{"payload": []byte(env.Payload), "payloadType": env.PayloadType, "signatures": sigs},
			"hash":     map[string]any{"algorithm": "sha256", "value": hexOf(h[:])},
		}}})
	return b
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}

// Leaf and index keys are Rekor 1.5's for both versions, with ECDSA, RSA
// and Ed25519 keys, a certificate, several signers, an in-toto payload
// (subjects and SLSA materials indexed) and another payload type; the
// attestation is the statement.
func TestMatchesRekor(t *testing.T) {
	reg := types.NewRegistry(intoto.Kind())
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(5), Subject: pkix.Name{CommonName: "ci"}, EmailAddresses: []string{"ci@example.com"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	certDER, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, ec.Public(), ec)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})

	for name, tc := range map[string]struct {
		proposal  []byte
		statement []byte
	}{
		"0.0.1 ECDSA":                      {v001(t, envelope(t, inToto, provenance, ec), pemKey(t, ec.Public())), provenance},
		"0.0.1 RSA, another payload type":  {v001(t, envelope(t, "text/plain", []byte("hello"), rk), pemKey(t, rk.Public())), []byte("hello")},
		"0.0.1 Ed25519":                    {v001(t, envelope(t, inToto, provenance, ed), pemKey(t, ed.Public())), provenance},
		"0.0.1 certificate, one of two":    {v001(t, envelope(t, inToto, provenance, other, ec), certPEM), provenance},
		"0.0.2 ECDSA":                      {v002(t, envelope(t, inToto, provenance, ec), pemKey(t, ec.Public())), provenance},
		"0.0.2 two signers":                {v002(t, envelope(t, inToto, provenance, ec, rk), pemKey(t, ec.Public()), pemKey(t, rk.Public())), provenance},
		"0.0.2 certificate, Ed25519 other": {v002(t, envelope(t, "text/plain", []byte("x"), ec, ed), certPEM, pemKey(t, ed.Public())), []byte("x")},
	} {
		t.Run(name, func(t *testing.T) {
			e := rekorref.Matches(t, reg, tc.proposal)
			if got := e.(types.Attested).Attestation(); string(got) != string(tc.statement) {
				t.Errorf("attestation %q, want the statement", got)
			}
			if keys := strings.Join(e.IndexKeys(), " "); string(tc.statement) == string(provenance) && (!strings.Contains(keys, "sha256:"+strings.Repeat("ab", 32)) || !strings.Contains(keys, "sha1:"+strings.Repeat("cd", 20))) {
				t.Errorf("the subject and material are not keys: %s", keys)
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	reg := types.NewRegistry(intoto.Kind())
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	env := envelope(t, inToto, provenance, ec)
	tampered := env
	tampered.Payload = base64.StdEncoding.EncodeToString([]byte(`{"subject":[]}`))
	many := envelope(t, inToto, provenance, ec, ec, ec, ec, ec, ec, ec, ec, ec)
	twoSigs := envelope(t, inToto, provenance, ec, other)
	noHash := func() []byte {
		var m map[string]any
		json.Unmarshal(v002(t, env, pemKey(t, ec.Public())), &m) //nolint:errcheck
		delete(m["spec"].(map[string]any)["content"].(map[string]any), "hash")
		b, _ := json.Marshal(m)
		return b
	}()
	for name, tc := range map[string]struct {
		proposal []byte
		want     string
	}{
		"0.0.1 another key":             {v001(t, env, pemKey(t, other.Public())), "none of the envelope's 1 signatures verifies"},
		"0.0.1 another payload":         {v001(t, tampered, pemKey(t, ec.Public())), "none of the envelope's 1 signatures verifies"},
		"0.0.1 not an envelope":         {[]byte(`{"apiVersion":"0.0.1","kind":"intoto","spec":{"content":{"envelope":"nope"},"publicKey":"` + base64.StdEncoding.EncodeToString(pemKey(t, ec.Public())) + `"}}`), "not a DSSE envelope"},
		"0.0.1 nine signatures":         {v001(t, many, pemKey(t, ec.Public())), "9 signatures, more than the 8"},
		"0.0.2 another key":             {v002(t, env, pemKey(t, other.Public())), "verifies none of the envelope's signatures"},
		"0.0.2 a signature unaccounted": {v002(t, twoSigs, pemKey(t, ec.Public()), pemKey(t, ec.Public())), "all signatures must have a key"},
		"0.0.2 no envelope hash":        {noHash, "content.hash (the SHA-256 of the envelope) is required"},
		"0.0.2 tampered":                {v002(t, tampered, pemKey(t, ec.Public())), "verifies none"},
	} {
		_, err := reg.ParseInsertable(context.Background(), tc.proposal)
		var ve *types.ValidationError
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a validation error saying %q", name, err, tc.want)
		}
	}
}

// Whatever bytes arrive as an envelope, parsing answers an entry or a
// validation error, and never panics.
func FuzzParse(f *testing.F) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	env := envelope(f, inToto, provenance, ec)
	e, _ := json.Marshal(env)
	key := pemKey(f, ec.Public())
	f.Add(e, uint8(1))
	f.Add(e, uint8(2))
	reg := types.NewRegistry(intoto.Kind())
	f.Fuzz(func(t *testing.T, envJSON []byte, version uint8) {
		var p []byte
		if version%2 == 1 {
			b, _ := json.Marshal(map[string]any{"apiVersion": "0.0.1", "kind": "intoto", "spec": map[string]any{"content": map[string]any{"envelope": string(envJSON)}, "publicKey": key}})
			p = b
		} else {
			var env ssldsse.Envelope
			if json.Unmarshal(envJSON, &env) != nil {
				return
			}
			keys := make([][]byte, len(env.Signatures))
			for i := range keys {
				keys[i] = key
			}
			p = v002(t, env, keys...)
		}
		_, err := reg.ParseInsertable(context.Background(), p)
		var ve *types.ValidationError
		if err != nil && (!errors.As(err, &ve) || errors.Is(err, types.ErrParserPanic)) {
			t.Fatalf("not a validation error, or a parser panic: %v", err)
		}
	})
}
