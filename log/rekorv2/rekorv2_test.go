package rekorv2

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/cyberphone/json-canonicalization/go/src/webpki.org/jsoncanonicalizer"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	pb "github.com/sigstore/rekor-tiles/v2/pkg/generated/protobuf"
	rthashedrekord "github.com/sigstore/rekor-tiles/v2/pkg/types/hashedrekord"
	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/protobuf/encoding/protojson"
)

func testAPI(t testing.TB) *API {
	algs, err := signature.NewAlgorithmRegistryConfig(DefaultAlgorithms)
	if err != nil {
		t.Fatal(err)
	}
	return &API{algorithms: algs}
}

// request signs data with key and wraps it as a CreateEntryRequest, the
// verifier a public key or (cert) a self-signed certificate.
func request(t testing.TB, key crypto.Signer, details protocommon.PublicKeyDetails, h crypto.Hash, data []byte, cert bool) *pb.HashedRekordRequestV002 {
	t.Helper()
	var digest []byte
	switch h {
	case crypto.SHA256:
		d := sha256.Sum256(data)
		digest = d[:]
	case crypto.SHA512:
		d := sha512.Sum512(data)
		digest = d[:]
	}
	var opts crypto.SignerOpts = h
	if _, ok := key.(ed25519.PrivateKey); ok {
		opts = &ed25519.Options{Hash: crypto.SHA512}
	}
	sig, err := key.Sign(rand.Reader, digest, opts)
	if err != nil {
		t.Fatal(err)
	}
	v := &pb.Verifier{KeyDetails: details}
	if cert {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "signer"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			t.Fatal(err)
		}
		v.Verifier = &pb.Verifier_X509Certificate{X509Certificate: &protocommon.X509Certificate{RawBytes: der}}
	} else {
		der, _ := x509.MarshalPKIXPublicKey(key.Public())
		v.Verifier = &pb.Verifier_PublicKey{PublicKey: &pb.PublicKey{RawBytes: der}}
	}
	return &pb.HashedRekordRequestV002{Digest: digest, Signature: &pb.Signature{Content: sig, Verifier: v}}
}

func body(hr *pb.HashedRekordRequestV002) []byte {
	b, _ := protojson.Marshal(&pb.CreateEntryRequest{Spec: &pb.CreateEntryRequest_HashedRekordRequestV002{HashedRekordRequestV002: hr}})
	return b
}

// The logged entry is byte for byte what rekor-tiles logs, for each key
// type it accepts, with a key or a certificate as verifier.
func TestCanonicalMatchesRekorTiles(t *testing.T) {
	a := testAPI(t)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	for name, hr := range map[string]*pb.HashedRekordRequestV002{
		"ECDSA P-256 key":         request(t, ec, protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256, crypto.SHA256, []byte("a"), false),
		"ECDSA P-256 certificate": request(t, ec, protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256, crypto.SHA256, []byte("a"), true),
		"RSA 2048":                request(t, rk, protocommon.PublicKeyDetails_PKIX_RSA_PKCS1V15_2048_SHA256, crypto.SHA256, []byte("b"), false),
		"Ed25519ph":               request(t, ed, protocommon.PublicKeyDetails_PKIX_ED25519_PH, crypto.SHA512, []byte("c"), false),
	} {
		got, err := a.Canonical(body(hr))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want, err := rthashedrekord.ToLogEntry(hr, a.algorithms)
		if err != nil {
			t.Fatalf("%s: rekor-tiles: %v", name, err)
		}
		raw, _ := protojson.Marshal(want)
		wantBody, _ := jsoncanonicalizer.Transform(raw)
		if !bytes.Equal(got, wantBody) {
			t.Fatalf("%s:\n%s\nrekor-tiles:\n%s", name, got, wantBody)
		}
	}
	// A P-384 key with SHA-256 is refused, as rekor-tiles refuses the pair.
	if _, err := a.Canonical(body(request(t, ec384, protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256, crypto.SHA256, []byte("d"), false))); err == nil || !strings.Contains(err.Error(), "not accepted") {
		t.Fatalf("P-384 with SHA-256: %v", err)
	}
}

// Whatever bytes arrive, Canonical answers an error or an entry that
// parses back as a hashedrekord 0.0.2 of the same digest; it never panics.
func FuzzCanonical(f *testing.F) {
	a := testAPI(f)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f.Add(body(request(f, ec, protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256, crypto.SHA256, []byte("seed"), false)))
	f.Add([]byte(`{"dsseRequestV002":{}}`))
	f.Add([]byte(`{"hashedRekordRequestV002":{"digest":"AA==","signature":{"content":"AA==","verifier":{"keyDetails":"PKIX_ED25519"}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := a.Canonical(data)
		if err != nil {
			return
		}
		var e pb.Entry
		if err := protojson.Unmarshal(out, &e); err != nil || e.GetApiVersion() != "0.0.2" || e.GetSpec().GetHashedRekordV002() == nil {
			t.Fatalf("accepted %q, logged %q (%v)", data, out, err)
		}
	})
}
