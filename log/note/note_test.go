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

	fnote "github.com/transparency-dev/formats/note"
	xnote "golang.org/x/mod/sumdb/note"
)

func rekorSigner(t testing.TB, name string, k crypto.Signer) Signer {
	t.Helper()
	s, err := RekorSigner(name, k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func c2spSigner(t testing.TB, name string, k crypto.Signer) Signer {
	t.Helper()
	s, err := C2SPSigner(name, k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestC2SPSignerIndependently checks C2SP-hinted notes with verifiers we
// did not write: x/mod's for Ed25519 (what litewitness uses) given our
// VerifierKey, transparency-dev/formats' for ECDSA (Rekor's scheme).
func TestC2SPSignerIndependently(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPub, ed, _ := ed25519.GenerateKey(rand.Reader)
	root := sha256.Sum256([]byte("root"))
	cp := Checkpoint{Origin: "log.example", Size: 7, RootHash: root[:]}

	signed, err := Sign(cp, c2spSigner(t, "log.example", ed))
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := VerifierKey("log.example", edPub)
	if err != nil {
		t.Fatal(err)
	}
	v, err := xnote.NewVerifier(vkey)
	if err != nil {
		t.Fatalf("x/mod refuses our verifier key %q: %v", vkey, err)
	}
	n, err := xnote.Open([]byte(signed), xnote.VerifierList(v))
	if err != nil || n.Text != cp.Text() {
		t.Fatalf("x/mod opening our Ed25519 note: %v (text %q)", err, n.Text)
	}
	id, _ := KeyID("log.example", edPub)
	if v.KeyHash() != uint32(id[0])<<24|uint32(id[1])<<16|uint32(id[2])<<8|uint32(id[3]) {
		t.Fatalf("x/mod key hash %08x, our ID %x", v.KeyHash(), id[:4])
	}
	if _, err := Verify(signed, "log.example", edPub); err != nil {
		t.Fatalf("verifying our own C2SP-hinted note: %v", err)
	}

	signed, err = Sign(cp, c2spSigner(t, "log.example", ec))
	if err != nil {
		t.Fatal(err)
	}
	ecVKey, err := VerifierKey("log.example", &ec.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := fnote.NewVerifier(ecVKey)
	if err != nil {
		t.Fatalf("formats refuses our ECDSA verifier key %q: %v", ecVKey, err)
	}
	// Rekor v1's hint is the same for ECDSA: its checkpoints verify too.
	rekorSigned, _ := Sign(cp, rekorSigner(t, "log.example", ec))
	if _, err := xnote.Open([]byte(rekorSigned), xnote.VerifierList(ev)); err != nil {
		t.Fatalf("formats' ECDSA verifier refuses a Rekor-hinted note: %v", err)
	}
	if _, err := xnote.Open([]byte(signed), xnote.VerifierList(ev)); err != nil {
		t.Fatalf("formats' ECDSA verifier refuses our note: %v", err)
	}
}

func TestOpenCosigned(t *testing.T) {
	_, logKey, _ := ed25519.GenerateKey(rand.Reader)
	_, w1, _ := ed25519.GenerateKey(rand.Reader)
	_, w2, _ := ed25519.GenerateKey(rand.Reader)
	root := sha256.Sum256([]byte("root"))
	cp := Checkpoint{Origin: "log.example", Size: 9, RootHash: root[:]}
	signed, _ := Sign(cp, c2spSigner(t, "log.example", logKey))
	sig := func(name string, k crypto.Signer) string {
		s, _ := Sign(cp, c2spSigner(t, name, k))
		return s[strings.Index(s, "\u2014"):]
	}
	cosigned := signed + sig("w1.example", w1) + sig("w2.example", w2)

	got, others, err := Open(cosigned, "log.example", logKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	if got.Size != 9 || len(others) != 2 || others[0].Name != "w1.example" || others[1].Name != "w2.example" {
		t.Fatalf("opened %+v with others %+v", got, others)
	}
	if others[0].Line() != sig("w1.example", w1)[:len(others[0].Line())] || !strings.HasSuffix(others[0].Line(), "\n") {
		t.Fatalf("line %q does not round-trip", others[0].Line())
	}
	// The log's line may come anywhere.
	if _, _, err := Open(strings.Replace(cosigned, sig("w1.example", w1), "", 1)+sig("w1.example", w1), "log.example", logKey.Public()); err != nil {
		t.Fatalf("log signature after a witness's: %v", err)
	}
	// A repeat of the log's line is ignored, as x/mod ignores it.
	logLine := signed[strings.Index(signed, "\u2014"):]
	if _, others, err := Open(cosigned+logLine, "log.example", logKey.Public()); err != nil || len(others) != 2 {
		t.Fatalf("a repeated log line: %v, %d others", err, len(others))
	}
	if _, err := Verify(cosigned, "log.example", logKey.Public()); err == nil || !strings.Contains(err.Error(), "exactly one") {
		t.Fatalf("Verify (Rekor v1's single-signature rule) accepted a cosigned note: %v", err)
	}
	for name, tc := range map[string]struct{ note, want string }{
		"no log signature": {strings.Replace(cosigned, signed[strings.Index(signed, "\u2014"):], "", 1), "no signature by the log"},
		"too many lines":   {signed + strings.Repeat(sig("w1.example", w1), MaxSignatures), "more than"},
		"tampered body":    {strings.Replace(cosigned, "\n9\n", "\n8\n", 1), "does not verify"},
		"bad line":         {cosigned + "- w3 AAAA\n", "em dash"},
		// x/mod refuses a note whose first line by a known key is bad,
		// whatever follows: so must we, or the monitor would pass what
		// sigstore-go and witnesses refuse.
		"bad log line, then a good one": {strings.Replace(cosigned, logLine, badLogLine(t, logLine)+logLine, 1), "does not verify"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := Open(tc.note, "log.example", logKey.Public()); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want containing %q", err, tc.want)
			}
		})
	}
}

// badLogLine is line with its signature's last byte changed.
func badLogLine(t *testing.T, line string) string {
	t.Helper()
	s, err := parseLine(strings.TrimSuffix(line, "\n"))
	if err != nil {
		t.Fatal(err)
	}
	s.Sig = append([]byte{}, s.Sig...)
	s.Sig[len(s.Sig)-1] ^= 1
	return s.Line()
}

func FuzzOpen(f *testing.F) {
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	root := sha256.Sum256([]byte("r"))
	signed, _ := Sign(Checkpoint{Origin: "o", Size: 1, RootHash: root[:]}, c2spSigner(f, "o", k))
	f.Add(signed)
	f.Add(signed + signed[strings.Index(signed, "\u2014"):])
	f.Add("o\n1\n" + strings.Repeat("A", 44) + "\n\n\u2014 o AAAAAA==\n")
	f.Fuzz(func(t *testing.T, s string) {
		cp, others, err := Open(s, "", k.Public())
		if err == nil && (len(cp.RootHash) != 32 || len(others) >= MaxSignatures) {
			t.Fatalf("opened %+v with %d other signatures", cp, len(others))
		}
	})
}

func TestSignVerifyRoundTrip(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	root := sha256.Sum256([]byte("root"))
	cp := Checkpoint{Origin: "rekor.example - 1193050959916656506", Size: 42, RootHash: root[:]}
	for name, signer := range map[string]crypto.Signer{"ecdsa": ec, "ed25519": ed} {
		t.Run(name, func(t *testing.T) {
			signed, err := Sign(cp, rekorSigner(t, "rekor.example", signer))
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
	signed, err := Sign(Checkpoint{Origin: "o - 1", Size: 1, RootHash: root[:]}, rekorSigner(t, "o", k))
	if err != nil {
		t.Fatal(err)
	}
	otherSigned, _ := Sign(Checkpoint{Origin: "o - 1", Size: 1, RootHash: root[:]}, rekorSigner(t, "o", other))
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
	signed, _ := Sign(Checkpoint{Origin: "o - 1", Size: 1, RootHash: root[:]}, rekorSigner(f, "o", k))
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
