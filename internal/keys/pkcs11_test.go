package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/signet-dev/signet/internal/keys/softhsmtest"
)

func TestPKCS11SignerInSoftHSM(t *testing.T) {
	tk := softhsmtest.Setup(t)
	for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384()} {
		t.Run(c.Params().Name, func(t *testing.T) {
			uri := tk.URI("key-" + c.Params().Name)
			gen, err := GeneratePKCS11Key(uri, c, Options{})
			if err != nil {
				t.Fatal(err)
			}
			s, err := Open(uri, Options{})
			if err != nil {
				t.Fatal(err)
			}
			pub := s.Public().(*ecdsa.PublicKey)
			if !pub.Equal(gen.Public()) || pub.Curve != c {
				t.Fatal("reopened key differs from the generated one")
			}
			// Concurrent signatures share the session pool.
			var wg sync.WaitGroup
			errs := make(chan error, 32)
			for i := 0; i < 32; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					d := sha256.Sum256([]byte{byte(i)})
					sig, err := s.Sign(rand.Reader, d[:], crypto.SHA256)
					if err == nil && !ecdsa.VerifyASN1(pub, d[:], sig) {
						err = errFailedVerify
					}
					errs <- err
				}(i)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

var errFailedVerify = errors.New("token signature does not verify")

// An Ed25519 key made in SoftHSM (PKCS#11 v3.0's CKM_EDDSA) signs messages
// that crypto/ed25519 verifies, as a file key does; Ed25519ph is refused.
func TestPKCS11Ed25519InSoftHSM(t *testing.T) {
	tk := softhsmtest.Setup(t)
	uri := tk.URI("ed25519")
	gen, err := GeneratePKCS11Ed25519Key(uri, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(uri, Options{})
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := s.Public().(ed25519.PublicKey)
	if !ok || !pub.Equal(gen.Public()) {
		t.Fatalf("reopened key %T differs from the generated one", s.Public())
	}
	msg := []byte("checkpoint text\n")
	sig, err := s.Sign(rand.Reader, msg, crypto.Hash(0))
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(pub, msg, sig) {
		t.Fatal(errFailedVerify)
	}
	if ed25519.Verify(pub, []byte("other text\n"), sig) {
		t.Fatal("the signature verifies for another message")
	}
	if _, err := s.Sign(rand.Reader, msg, crypto.SHA512); err == nil || !strings.Contains(err.Error(), "Ed25519ph") {
		t.Fatalf("Ed25519ph: %v", err)
	}
}

func TestPKCS11URIErrors(t *testing.T) {
	tk := softhsmtest.Setup(t)
	pinFile := filepath.Join(t.TempDir(), "pin")
	os.WriteFile(pinFile, []byte(tk.PIN+"\n"), 0o600) //nolint:errcheck
	if _, err := GeneratePKCS11Key(tk.URI("by-pin-file"), elliptic.P256(), Options{}); err != nil {
		t.Fatal(err)
	}
	withPinFile := strings.Replace(tk.URI("by-pin-file"), "pin-value="+tk.PIN, "pin-source=file:"+pinFile, 1)
	if _, err := Open(withPinFile, Options{}); err != nil {
		t.Fatalf("pin-source file: %v", err)
	}
	for _, tt := range []struct{ uri, want string }{
		{"pkcs11:token=x;object=y", "module-path is required"},
		{"pkcs11:object=y?module-path=/m.so", "token= or slot-id="},
		{"pkcs11:token=x?module-path=/m.so", "object="},
		{"pkcs11:token=x;object=y;colour=red?module-path=/m.so", `unknown path attribute "colour"`},
		{"pkcs11:token=x;object=y?module-path=/nonexistent.so", "loading PKCS#11 module"},
		{strings.Replace(tk.URI("k"), "token=signet-test", "token=other", 1), `no PKCS#11 token "other"`},
		{tk.URI("no-such-key"), "has no private key"},
		{strings.Replace(tk.URI("k"), "pin-value=1234", "pin-env=NOPE", 1), "NOPE (the token PIN) is empty"},
	} {
		_, err := Open(tt.uri, Options{Getenv: func(string) string { return "" }})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Open(%q) = %v, want %q", tt.uri, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), tk.PIN) && strings.Contains(tt.uri, "pin-value") {
			t.Errorf("error leaks the PIN: %v", err)
		}
	}
}
