package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	enc := filepath.Join(dir, "enc.pem")
	plain := filepath.Join(dir, "plain.pem")
	if err := WriteFile(enc, key, []byte("s3cret")); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(plain, key, nil); err != nil {
		t.Fatal(err)
	}
	pwFile, emptyFile := filepath.Join(dir, "pw"), filepath.Join(dir, "empty")
	if err := os.WriteFile(pwFile, []byte("s3cret\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(emptyFile, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PW": "s3cret", "BAD": "nope"}
	getenv := func(k string) string { return env[k] }

	tests := []struct {
		name    string
		uri     string
		dev     bool
		wantErr string
	}{
		{"encrypted", FileURI(enc, PasswordSource{Env: "PW"}), false, ""},
		{"wrong password", FileURI(enc, PasswordSource{Env: "BAD"}), false, "decrypting"},
		{"unset password", FileURI(enc, PasswordSource{Env: "NONE"}), false, "empty or unset"},
		{"no password env", FileURI(enc, PasswordSource{}), false, "password-env"},
		{"password file, line break dropped", FileURI(enc, PasswordSource{File: pwFile}), false, ""},
		{"empty password file", FileURI(enc, PasswordSource{File: emptyFile}), false, "password file " + emptyFile + " (its password) is empty"},
		{"missing password file", FileURI(enc, PasswordSource{File: filepath.Join(dir, "nope")}), false, "reading the key password"},
		{"relative password file", "file://" + enc + "?password-file=pw", false, `password-file "pw" must be an absolute path`},
		{"both password sources", "file://" + enc + "?password-env=PW&password-file=" + pwFile, false, "both password-env and password-file"},
		{"plain refused in production", FileURI(plain, PasswordSource{}), false, "not encrypted"},
		{"plain allowed in dev", FileURI(plain, PasswordSource{}), true, ""},
		{"memory refused in production", "memory:", false, "only allowed in dev"},
		{"memory in dev", "memory:", true, ""},
		{"missing file", FileURI(filepath.Join(dir, "nope.pem"), PasswordSource{}), true, "no such file"},
		{"relative", "file://key.pem", true, "absolute path"},
		{"unknown scheme", "vault://x", true, "unknown scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(tt.uri, Options{Dev: tt.dev, Getenv: getenv})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Open(%q) error = %v, want containing %q", tt.uri, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%q): %v", tt.uri, err)
			}
			digest := sha256.Sum256([]byte("hello"))
			sig, err := s.Sign(rand.Reader, digest[:], crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			if !ecdsa.VerifyASN1(s.Public().(*ecdsa.PublicKey), digest[:], sig) {
				t.Fatal("signature does not verify")
			}
			if tt.uri != "memory:" && !s.Public().(*ecdsa.PublicKey).Equal(key.Public()) {
				t.Fatal("opened a different key than was written")
			}
		})
	}
	if err := WriteFile(enc, key, nil); err == nil {
		t.Fatal("WriteFile overwrote an existing key")
	}
}

// An operator's key made by openssl must open: that is how production keys
// are made (ECDSA for every role, Ed25519 for the Rekor v2 log a witness
// checks), and it must sign as its type does.
func TestOpenOpenSSLEncryptedKey(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	for name, args := range map[string][]string{
		"P-256":   {"-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"},
		"Ed25519": {"-algorithm", "ed25519"},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "k.pem")
			cmd := exec.Command("openssl", append(append([]string{"genpkey"}, args...), "-aes-256-cbc", "-pass", "pass:pw123", "-out", path)...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("openssl: %v: %s", err, out)
			}
			data, _ := os.ReadFile(path)
			if !strings.Contains(string(data), "ENCRYPTED PRIVATE KEY") {
				t.Fatalf("openssl wrote %q, want an encrypted PKCS#8 key", data[:40])
			}
			s, err := Open(FileURI(path, PasswordSource{Env: "PW"}), Options{Getenv: func(string) string { return "pw123" }})
			if err != nil {
				t.Fatal(err)
			}
			msg := []byte("checkpoint\n")
			switch pub := s.Public().(type) {
			case *ecdsa.PublicKey:
				d := sha256.Sum256(msg)
				sig, err := s.Sign(rand.Reader, d[:], crypto.SHA256)
				if err != nil || !ecdsa.VerifyASN1(pub, d[:], sig) || name != "P-256" {
					t.Fatalf("%s key signs: %v", name, err)
				}
			case ed25519.PublicKey:
				sig, err := s.Sign(rand.Reader, msg, crypto.Hash(0))
				if err != nil || !ed25519.Verify(pub, msg, sig) || name != "Ed25519" {
					t.Fatalf("%s key signs: %v", name, err)
				}
			default:
				t.Fatalf("public key is %T", s.Public())
			}
		})
	}
}

// Key URIs name the password's source readably and round-trip.
func TestFileURIPasswordSource(t *testing.T) {
	for _, pw := range []PasswordSource{{}, {Env: "SIGNET_KEY_PASSWORD"}, {File: "/run/secrets/key password+1"}} {
		uri := FileURI("/var/lib/signet/log.pem", pw)
		got, err := PasswordSourceOf(uri)
		if err != nil || got != pw {
			t.Errorf("FileURI(%+v) = %q, read back as %+v, %v", pw, uri, got, err)
		}
	}
	if uri := FileURI("/k.pem", PasswordSource{File: "/run/secrets/pw"}); uri != "file:///k.pem?password-file=/run/secrets/pw" {
		t.Errorf("URI %q, want the path's slashes unescaped", uri)
	}
}
