package hashedrekord_test

import (
	"context"
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
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/signet-dev/signet/client"
	"github.com/signet-dev/signet/internal/sigalg"
	"github.com/signet-dev/signet/types"
	"github.com/signet-dev/signet/types/hashedrekord"
	"github.com/signet-dev/signet/types/internal/rekorref"
)

func pubPEM(t *testing.T, k crypto.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func certPEM(t *testing.T, subject crypto.PublicKey, issuer crypto.Signer, issuerCert *x509.Certificate, isCA bool) ([]byte, *x509.Certificate) {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: isCA, BasicConstraintsValid: true,
	}
	if isCA {
		tmpl.Subject = pkix.Name{CommonName: "test CA"}
		tmpl.KeyUsage = x509.KeyUsageCertSign
	} else {
		tmpl.EmailAddresses = []string{"Dev@Example.com"}
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}
	}
	parent := issuerCert
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, subject, issuer)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), c
}

type signed struct {
	name     string
	alg      string
	digest   []byte
	sig      []byte
	verifier []byte
}

func cases(t *testing.T) []signed {
	artifact := []byte("an artifact")
	d256 := sha256.Sum256(artifact)
	d384 := sha512.Sum384(artifact)
	d512 := sha512.Sum512(artifact)
	var out []signed

	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	sig, _ := rsa.SignPKCS1v15(rand.Reader, rsaKey, crypto.SHA256, d256[:])
	out = append(out, signed{"RSA-2048 SHA-256", "sha256", d256[:], sig, pubPEM(t, rsaKey.Public())})

	for _, c := range []struct {
		curve  elliptic.Curve
		alg    string
		digest []byte
	}{{elliptic.P256(), "sha256", d256[:]}, {elliptic.P384(), "sha384", d384[:]}, {elliptic.P521(), "sha512", d512[:]}} {
		k, _ := ecdsa.GenerateKey(c.curve, rand.Reader)
		sig, _ := ecdsa.SignASN1(rand.Reader, k, c.digest)
		out = append(out, signed{"ECDSA " + c.curve.Params().Name, c.alg, c.digest, sig, pubPEM(t, k.Public())})
	}

	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	edSig, err := edKey.Sign(rand.Reader, d512[:], &ed25519.Options{Hash: crypto.SHA512})
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, signed{"Ed25519ph", "sha512", d512[:], edSig, pubPEM(t, edKey.Public())})

	ca, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caPEM, caCert := certPEM(t, ca.Public(), ca, nil, true)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafPEM, _ := certPEM(t, leafKey.Public(), ca, caCert, false)
	leafSig, _ := ecdsa.SignASN1(rand.Reader, leafKey, d256[:])
	out = append(out, signed{"certificate", "sha256", d256[:], leafSig, leafPEM})
	out = append(out, signed{"certificate chain", "sha256", d256[:], leafSig, append(append([]byte{}, leafPEM...), caPEM...)})
	return out
}

// Our leaf and index keys must be exactly Rekor's for every key type.
func TestCanonicalLeafMatchesRekor(t *testing.T) {
	kind, err := hashedrekord.Kind()
	if err != nil {
		t.Fatal(err)
	}
	reg := types.NewRegistry(kind)
	for _, c := range cases(t) {
		t.Run(c.name, func(t *testing.T) {
			proposal, err := client.HashedRekord(c.alg, c.digest, c.sig, c.verifier)
			if err != nil {
				t.Fatal(err)
			}
			rekorref.Matches(t, reg, proposal)
		})
	}
}

func TestRejections(t *testing.T) {
	artifact := []byte("x")
	d256 := sha256.Sum256(artifact)
	d384 := sha512.Sum384(artifact)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sig256, _ := ecdsa.SignASN1(rand.Reader, p256, d256[:])
	sig384, _ := ecdsa.SignASN1(rand.Reader, p256, d384[:])
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	d512 := sha512.Sum512(artifact)
	edPure := ed25519.Sign(edKey, d512[:])

	all, _ := hashedrekord.Kind()
	onlyP384, _ := hashedrekord.Kind(sigalg.P384SHA384)
	tests := []struct {
		name     string
		kind     types.Kind
		alg      string
		digest   []byte
		sig      []byte
		verifier []byte
		want     string
	}{
		{"wrong key", all, "sha256", d256[:], sig256, pubPEM(t, other.Public()), "signature does not verify"},
		{"P-256 with SHA-384 is not a default pair", all, "sha384", d384[:], sig384, pubPEM(t, p256.Public()), "(ECDSA P-256 key, SHA-384 digest) is not allowed"},
		{"algorithm not configured", onlyP384, "sha256", d256[:], sig256, pubPEM(t, p256.Public()), "is not allowed on this log"},
		{"pure Ed25519 over a digest", all, "sha512", d512[:], edPure, pubPEM(t, edKey.Public()), "signature does not verify"},
		{"empty signature", all, "sha256", d256[:], nil, pubPEM(t, p256.Public()), "signature.content is required"},
		{"private key PEM", all, "sha256", d256[:], sig256, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}), "neither PUBLIC KEY nor CERTIFICATE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := client.HashedRekord(tt.alg, tt.digest, tt.sig, tt.verifier)
			_, err := types.NewRegistry(tt.kind).ParseInsertable(context.Background(), p)
			var ve *types.ValidationError
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want containing %q", err, tt.want)
			}
			if !errors.As(err, &ve) {
				t.Fatalf("error %T is not a ValidationError (would be a 500)", err)
			}
		})
	}
	if _, err := hashedrekord.Kind("md5-rsa"); err == nil {
		t.Fatal("unknown algorithm accepted in configuration")
	}
}
