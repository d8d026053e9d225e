package rekord

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"testing"

	"golang.org/x/crypto/blake2b"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Whatever bytes arrive as a PGP key and signature, the pgp format
// answers an error or a verified signature, and never panics; what it
// accepts it accepts again from its own canonical output.
func FuzzPGP(f *testing.F) {
	content := []byte("artifact")
	for _, cfg := range []*packet.Config{
		{Algorithm: packet.PubKeyAlgoRSA, RSABits: 1024},
		{Algorithm: packet.PubKeyAlgoECDSA, Curve: packet.CurveNistP256},
		{Algorithm: packet.PubKeyAlgoEdDSA},
	} {
		ent, err := openpgp.NewEntity("Fuzz", "", "fuzz@example.com", cfg)
		if err != nil {
			f.Fatal(err)
		}
		var key, sig bytes.Buffer
		if err := ent.Serialize(&key); err != nil {
			f.Fatal(err)
		}
		if err := openpgp.DetachSign(&sig, ent, bytes.NewReader(content), cfg); err != nil {
			f.Fatal(err)
		}
		f.Add(sig.Bytes(), key.Bytes())
	}
	f.Fuzz(func(t *testing.T, sig, key []byte) {
		canonSig, canonKey, _, err := pgpFormat{}.verify(content, sig, key)
		if err != nil {
			return
		}
		s2, k2, _, err := pgpFormat{}.verify(content, canonSig, canonKey)
		if err != nil || !bytes.Equal(s2, canonSig) || !bytes.Equal(k2, canonKey) {
			t.Fatalf("the canonical form does not verify as itself: %v", err)
		}
	})
}

// The same for minisign: any bytes give an error or a verified signature
// whose canonical form verifies as itself.
func FuzzMinisign(f *testing.F) {
	content := []byte("artifact")
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	keyLine := base64.StdEncoding.EncodeToString(append([]byte("Ed12345678"), pub...))
	h := blake2b.Sum512(content)
	for alg, signed := range map[string][]byte{"ED": h[:], "Ed": content} {
		line := base64.StdEncoding.EncodeToString(append([]byte(alg+"12345678"), ed25519.Sign(priv, signed)...))
		f.Add([]byte("untrusted comment: x\n"+line+"\ntrusted comment: y\n"+base64.StdEncoding.EncodeToString(make([]byte, 64))+"\n"), []byte("untrusted comment: k\n"+keyLine+"\n"))
		f.Add([]byte("untrusted comment: signify\n"+line+"\n"), []byte(keyLine))
	}
	f.Fuzz(func(t *testing.T, sig, key []byte) {
		canonSig, canonKey, _, err := minisignFormat{}.verify(content, sig, key)
		if err != nil {
			return
		}
		s2, k2, _, err := minisignFormat{}.verify(content, canonSig, canonKey)
		if err != nil || !bytes.Equal(s2, canonSig) || !bytes.Equal(k2, canonKey) {
			t.Fatalf("the canonical form does not verify as itself: %v", err)
		}
	})
}
