package cose_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	gocose "github.com/veraison/go-cose"

	"github.com/signet-dev/signet/types"
	"github.com/signet-dev/signet/types/cose"
	"github.com/signet-dev/signet/types/internal/rekorref"
)

func proposal(t testing.TB, msg, key, aad []byte) []byte {
	t.Helper()
	// data is always there, as rekor-cli sends it (Rekor 1.5 dereferences
	// it unchecked).
	data := map[string]any{}
	if aad != nil {
		data["aad"] = aad
	}
	spec := map[string]any{"message": msg, "publicKey": key, "data": data}
	b, err := json.Marshal(map[string]any{"apiVersion": "0.0.1", "kind": "cose", "spec": spec})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sign1 makes a tagged COSE_Sign1 message with go-cose, as a COSE signer
// would.
func sign1(t testing.TB, alg gocose.Algorithm, key crypto.Signer, payload []byte, contentType string, aad []byte) []byte {
	t.Helper()
	signer, err := gocose.NewSigner(alg, key)
	if err != nil {
		t.Fatal(err)
	}
	msg := gocose.NewSign1Message()
	msg.Headers.Protected.SetAlgorithm(alg)
	if contentType != "" {
		msg.Headers.Protected[gocose.HeaderLabelContentType] = contentType
	}
	msg.Payload = payload
	if err := msg.Sign(rand.Reader, aad, signer); err != nil {
		t.Fatal(err)
	}
	b, err := msg.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pemKey(t testing.TB, pub crypto.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

var statement = []byte(`{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://slsa.dev/provenance/v0.2","subject":[{"name":"app","digest":{"sha256":"` + strings.Repeat("ab", 32) + `"}}],"predicate":{}}`)

// Leaf and index keys are Rekor 1.5's: ES256 and PS256, a key and a
// certificate, with and without external AAD, an in-toto payload (whose
// subjects are indexed) and an opaque one.
func TestMatchesRekor(t *testing.T) {
	reg := types.NewRegistry(cose.Kind())
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "cose signer"}, EmailAddresses: []string{"signer@example.com"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	certDER, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, ec.Public(), ec)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})
	for name, p := range map[string][]byte{
		"ES256, in-toto payload":    proposal(t, sign1(t, gocose.AlgorithmES256, ec, statement, "application/vnd.in-toto+json", nil), pemKey(t, ec.Public()), nil),
		"ES256, aad":                proposal(t, sign1(t, gocose.AlgorithmES256, ec, []byte("opaque"), "", []byte("context")), pemKey(t, ec.Public()), []byte("context")),
		"PS256":                     proposal(t, sign1(t, gocose.AlgorithmPS256, rk, []byte("opaque"), "text/plain", nil), pemKey(t, rk.Public()), nil),
		"certificate with an email": proposal(t, sign1(t, gocose.AlgorithmES256, ec, []byte("x"), "", nil), certPEM, nil),
	} {
		t.Run(name, func(t *testing.T) {
			e := rekorref.Matches(t, reg, p)
			var spec struct {
				Spec struct {
					Message []byte `json:"message"`
				} `json:"spec"`
			}
			json.Unmarshal(p, &spec) //nolint:errcheck
			if att := e.(types.Attested).Attestation(); string(att) != string(spec.Spec.Message) {
				t.Errorf("the attestation is not the message")
			}
		})
	}
	e, _ := reg.ParseInsertable(context.Background(), proposal(t, sign1(t, gocose.AlgorithmES256, ec, statement, "application/vnd.in-toto+json", nil), pemKey(t, ec.Public()), nil))
	if keys := strings.Join(e.IndexKeys(), " "); !strings.Contains(keys, "sha256:"+strings.Repeat("ab", 32)) {
		t.Errorf("the statement's subject is not a key: %s", keys)
	}
}

func TestRefusals(t *testing.T) {
	reg := types.NewRegistry(cose.Kind())
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	msg := sign1(t, gocose.AlgorithmES256, ec, []byte("payload"), "", []byte("aad"))
	sum := sha256.Sum256(msg)
	tampered := append([]byte(nil), msg...)
	tampered[len(tampered)-1] ^= 1
	for name, tc := range map[string]struct {
		proposal []byte
		want     string
	}{
		"another key":     {proposal(t, msg, pemKey(t, other.Public()), []byte("aad")), "does not verify"},
		"another aad":     {proposal(t, msg, pemKey(t, ec.Public()), []byte("other")), "does not verify"},
		"no aad":          {proposal(t, msg, pemKey(t, ec.Public()), nil), "does not verify"},
		"a bad signature": {proposal(t, tampered, pemKey(t, ec.Public()), []byte("aad")), "does not verify"},
		"P-384 key":       {proposal(t, msg, pemKey(t, p384.Public()), nil), "take P-256 (ES256) or RSA"},
		"not CBOR":        {proposal(t, []byte(hex.EncodeToString(sum[:])), pemKey(t, ec.Public()), nil), "message"},
		"no message":      {proposal(t, nil, pemKey(t, ec.Public()), nil), "message is required"},
		"no key":          {proposal(t, msg, nil, nil), "publicKey is required"},
	} {
		_, err := reg.ParseInsertable(context.Background(), tc.proposal)
		var ve *types.ValidationError
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a validation error saying %q", name, err, tc.want)
		}
	}
}

// A header map past the structure bounds is refused before go-cose
// decodes it (its defaults allow 131,072 pairs a map: 12 such maps took
// 2.5 s and 350 MiB).
func TestLargeHeadersAreRefused(t *testing.T) {
	reg := types.NewRegistry(cose.Kind())
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := gocose.NewSigner(gocose.AlgorithmES256, ec)
	msg := gocose.NewSign1Message()
	msg.Headers.Protected.SetAlgorithm(gocose.AlgorithmES256)
	big := map[int]int{}
	for i := range 2000 {
		big[i] = i
	}
	msg.Headers.Unprotected[int64(99)] = big
	msg.Payload = []byte("x")
	if err := msg.Sign(rand.Reader, nil, signer); err != nil {
		t.Fatal(err)
	}
	b, err := msg.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	_, err = reg.ParseInsertable(context.Background(), proposal(t, b, pemKey(t, ec.Public()), nil))
	var ve *types.ValidationError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), "at most 1024") {
		t.Fatalf("a header map of 2,000 pairs: %v, want a refusal", err)
	}
}

// Whatever bytes arrive as a COSE message, parsing answers an entry or a
// validation error, and never panics.
func FuzzParse(f *testing.F) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	key := pemKey(f, ec.Public())
	f.Add(sign1(f, gocose.AlgorithmES256, ec, statement, "application/vnd.in-toto+json", nil))
	f.Add(sign1(f, gocose.AlgorithmES256, ec, []byte("x"), "", nil))
	reg := types.NewRegistry(cose.Kind())
	f.Fuzz(func(t *testing.T, msg []byte) {
		_, err := reg.ParseInsertable(context.Background(), proposal(t, msg, key, nil))
		var ve *types.ValidationError
		if err != nil && (!errors.As(err, &ve) || errors.Is(err, types.ErrParserPanic)) {
			t.Fatalf("not a validation error, or a parser panic: %v", err)
		}
	})
}
