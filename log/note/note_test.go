package note

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"strings"
	"testing"
)

func TestSignVerifyRoundTrip(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	root := sha256.Sum256([]byte("root"))
	cp := Checkpoint{Origin: "rekor.example - 1193050959916656506", Size: 42, RootHash: root[:]}
	for name, signer := range map[string]crypto.Signer{"ecdsa": ec, "ed25519": ed} {
		t.Run(name, func(t *testing.T) {
			signed, err := Sign(cp, "rekor.example", signer)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(signed, "rekor.example - 1193050959916656506\n42\n") || strings.Count(signed, "\u2014 ") != 1 {
				t.Fatalf("unexpected note %q", signed)
			}
			got, err := Verify(signed, "rekor.example", signer.Public())
			if err != nil {
				t.Fatal(err)
			}
			if got.Size != 42 || got.Origin != cp.Origin || string(got.RootHash) != string(root[:]) {
				t.Fatalf("parsed %+v", got)
			}
			if _, err := Verify(signed, "", signer.Public()); err != nil {
				t.Fatalf("any-name verify: %v", err)
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	root := sha256.Sum256([]byte("r"))
	signed, err := Sign(Checkpoint{Origin: "o - 1", Size: 1, RootHash: root[:]}, "o", k)
	if err != nil {
		t.Fatal(err)
	}
	otherSigned, _ := Sign(Checkpoint{Origin: "o - 1", Size: 1, RootHash: root[:]}, "o", other)
	cosigned := signed + otherSigned[strings.Index(otherSigned, "\u2014"):]
	tests := []struct {
		name, note, want string
	}{
		{"other key", signed, "key hint"},
		{"tampered size", strings.Replace(signed, "\n1\n", "\n2\n", 1), "does not verify"},
		{"two signature lines", cosigned, "exactly one signature line"},
		{"wrong name", signed, "signed by \"o\""},
		{"no blank line", "o - 1\n1\nAAAA\n", "no blank line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub := any(&k.PublicKey)
			name := "o"
			switch tt.name {
			case "other key":
				pub = &other.PublicKey
			case "wrong name":
				name = "p"
			}
			_, err := Verify(tt.note, name, pub)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want containing %q", err, tt.want)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	root := sha256.Sum256([]byte("r"))
	signed, _ := Sign(Checkpoint{Origin: "o - 1", Size: 1, RootHash: root[:]}, "o", k)
	f.Add(signed)
	f.Add("o - 1\n1\n" + strings.Repeat("A", 44) + "\n\n\u2014 o AAAA\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		cp, err := Verify(s, "", &k.PublicKey)
		if err == nil && len(cp.RootHash) != 32 {
			t.Fatal("verified checkpoint without a 32-byte root")
		}
		Parse(s) //nolint:errcheck
	})
}
