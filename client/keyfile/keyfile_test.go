package keyfile

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
)

type publicKeyer interface {
	Public() crypto.PublicKey
}

func samePublic(t *testing.T, a, b publicKeyer) {
	t.Helper()
	pa, _ := x509.MarshalPKIXPublicKey(a.Public())
	pb, _ := x509.MarshalPKIXPublicKey(b.Public())
	if !bytes.Equal(pa, pb) {
		t.Fatal("the key read back is another key")
	}
}

func TestEncryptedRoundTrip(t *testing.T) {
	key, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	data, err := Encrypt(key, []byte("hunter2"))
	if err != nil {
		t.Fatal(err)
	}
	if !IsEncrypted(data) || !strings.HasPrefix(string(data), "-----BEGIN "+EncryptedType+"-----") {
		t.Fatalf("not an encrypted key PEM:\n%s", data)
	}
	got, err := Parse(data, []byte("hunter2"))
	if err != nil {
		t.Fatal(err)
	}
	samePublic(t, key, got)
	if _, err := Parse(data, []byte("hunter3")); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	// cosign before v2.1 wrote the same content under another PEM type.
	block, _ := pem.Decode(data)
	legacy := pem.EncodeToMemory(&pem.Block{Type: LegacyEncryptedType, Bytes: block.Bytes})
	if got, err := Parse(legacy, []byte("hunter2")); err != nil {
		t.Fatalf("legacy type: %v", err)
	} else {
		samePublic(t, key, got)
	}
}

func TestPlainKeys(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	pkcs8 := func(k crypto.Signer) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	sec1, _ := x509.MarshalECPrivateKey(ec)
	for name, tt := range map[string]struct {
		pem  []byte
		want publicKeyer
	}{
		"PKCS#8 EC":      {pkcs8(ec), ec},
		"PKCS#8 RSA":     {pkcs8(rk), rk},
		"PKCS#8 Ed25519": {pkcs8(ed), ed},
		"SEC 1 EC":       {pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), ec},
		"PKCS#1 RSA":     {pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)}), rk},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := Parse(tt.pem, nil)
			if err != nil {
				t.Fatal(err)
			}
			samePublic(t, tt.want, got)
		})
	}
}

func TestParseRefusals(t *testing.T) {
	key, _ := Generate()
	pub, _ := PublicPEM(key.Public())
	enc, _ := Encrypt(key, nil)
	for name, tt := range map[string]struct {
		data []byte
		want string
	}{
		"not PEM":        {[]byte("hello"), "not a PEM private key"},
		"public key":     {pub, `PEM type "PUBLIC KEY" is not a private key`},
		"two blocks":     {append(append([]byte{}, enc...), enc...), "more than one PEM block"},
		"garbage inside": {pem.EncodeToMemory(&pem.Block{Type: EncryptedType, Bytes: []byte(`{"kdf":{"name":"scrypt","params":{"N":1024,"r":8,"p":1},"salt":"AAAA"},"cipher":{"name":"nacl/secretbox","nonce":"AAAA"},"ciphertext":"AAAA"}`)}), "the encrypted key"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse(tt.data, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// FuzzParse feeds Parse untrusted key files: it must return an error, not
// panic. Only scrypt parameter sets the library knows are ever computed.
func FuzzParse(f *testing.F) {
	key, _ := Generate()
	enc, _ := Encrypt(key, []byte("p"))
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	f.Add(enc, []byte("p"))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), []byte{})
	f.Add(pem.EncodeToMemory(&pem.Block{Type: EncryptedType, Bytes: []byte(`{"kdf":{"name":"scrypt"}}`)}), []byte{})
	f.Fuzz(func(t *testing.T, data, password []byte) {
		k, err := Parse(data, password)
		if err == nil && k == nil {
			t.Fatal("no key and no error")
		}
	})
}
