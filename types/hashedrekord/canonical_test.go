package hashedrekord

import (
	"bytes"
	"testing"

	"github.com/signet-dev/signet/types"
)

// The spec's fields are declared in RFC 8785 order, so CanonicalizeSorted
// writes what the canonicalizer would, escapes or not.
func FuzzCanonicalFormMatchesCanonicalizer(f *testing.F) {
	f.Add("sha256", "4bc4", []byte("sig"), []byte("-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"))
	f.Add("sha<&>", "\u2028\"\\", []byte{0, 1, 2}, []byte("é"))
	f.Fuzz(func(t *testing.T, alg, value string, sig, key []byte) {
		spec := specV001{
			Data:      dataV001{Hash: &hashV001{Algorithm: alg, Value: value}},
			Signature: signatureV001{Content: sig, PublicKey: &publicKeyV001{Content: key}},
		}
		fast, err := types.CanonicalizeSorted(Name, "0.0.1", spec)
		if err != nil {
			t.Skip()
		}
		want, err := types.Canonicalize(Name, "0.0.1", spec)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fast, want) {
			t.Fatalf("CanonicalizeSorted:\n%s\ncanonicalizer:\n%s", fast, want)
		}
	})
}
