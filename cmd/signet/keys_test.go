package main

import (
	"bytes"
	"crypto/ecdsa"
	"fmt"
	"github.com/signet-dev/signet/client"
	"github.com/signet-dev/signet/internal/keys"
	"github.com/signet-dev/signet/internal/keys/softhsmtest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signet-dev/signet/internal/cosigntest"
)

// withoutPasswordEnv unsets both password variables for the test.
func withoutPasswordEnv(t *testing.T) {
	for _, k := range []string{"SIGNET_PASSWORD", "COSIGN_PASSWORD"} {
		if v, ok := os.LookupEnv(k); ok {
			os.Unsetenv(k)                        //nolint:errcheck
			t.Cleanup(func() { os.Setenv(k, v) }) //nolint:errcheck
		}
	}
}

func TestGenerateKeyPair(t *testing.T) {
	withoutPasswordEnv(t)
	dir := t.TempDir()
	prefix := filepath.Join(dir, "release")
	// No terminal here (go test's stdin) and no variable: refused, nothing written.
	if _, err := runCLI(t, "generate-key-pair", "--output-key-prefix", prefix); err == nil || !strings.Contains(err.Error(), "set SIGNET_PASSWORD (or COSIGN_PASSWORD)") {
		t.Fatalf("without a password: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("a refused generate-key-pair wrote %d files", len(entries))
	}
	t.Setenv("SIGNET_PASSWORD", "correct horse")
	out, err := runCLI(t, "generate-key-pair", "--output-key-prefix", prefix)
	if err != nil || !strings.Contains(out, "Private key written to "+prefix+".key") {
		t.Fatalf("generate-key-pair: %v\n%s", err, out)
	}
	if st, err := os.Stat(prefix + ".key"); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key file: %v %v", st, err)
	}
	if _, err := runCLI(t, "generate-key-pair", "--output-key-prefix", prefix); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("overwriting: %v", err)
	}
	pub, _ := os.ReadFile(prefix + ".pub")
	got, err := runCLI(t, "public-key", "--key", prefix+".key")
	if err != nil || got != string(pub) {
		t.Fatalf("public-key: %v\n%q\nwant %q", err, got, pub)
	}
	t.Setenv("SIGNET_PASSWORD", "wrong")
	if _, err := runCLI(t, "public-key", "--key", prefix+".key"); err == nil || !strings.Contains(err.Error(), "password does not decrypt") {
		t.Fatalf("wrong password: %v", err)
	}
	// COSIGN_PASSWORD is the fallback, as scripts written for cosign set it.
	os.Unsetenv("SIGNET_PASSWORD") //nolint:errcheck
	t.Setenv("COSIGN_PASSWORD", "correct horse")
	if got, err := runCLI(t, "public-key", "--key", prefix+".key"); err != nil || got != string(pub) {
		t.Fatalf("public-key with COSIGN_PASSWORD: %v", err)
	}
}

// Key files go both ways between signet and unmodified cosign.
func TestKeyFilesInteroperateWithCosign(t *testing.T) {
	cosign := cosigntest.Binary(t)
	withoutPasswordEnv(t)
	dir := t.TempDir()
	const password = "shared secret"
	runCosign := func(args ...string) []byte {
		t.Helper()
		c := exec.Command(cosign, args...)
		c.Dir = dir
		c.Env = append(os.Environ(), "COSIGN_PASSWORD="+password, "HOME="+dir)
		var stderr bytes.Buffer
		c.Stderr = &stderr
		out, err := c.Output()
		if err != nil {
			t.Fatalf("cosign %v: %v\n%s", args, err, stderr.String())
		}
		return out
	}

	// cosign makes the pair, signet reads the private key.
	runCosign("generate-key-pair", "--output-key-prefix", "bycosign")
	t.Setenv("COSIGN_PASSWORD", password)
	got, err := runCLI(t, "public-key", "--key", filepath.Join(dir, "bycosign.key"))
	want, _ := os.ReadFile(filepath.Join(dir, "bycosign.pub"))
	if err != nil || got != string(want) {
		t.Fatalf("signet public-key of cosign's key: %v\n%q\nwant %q", err, got, want)
	}

	// signet makes the pair, cosign reads the private key.
	if _, err := runCLI(t, "generate-key-pair", "--output-key-prefix", filepath.Join(dir, "bysignet")); err != nil {
		t.Fatal(err)
	}
	fromCosign := runCosign("public-key", "--key", "bysignet.key")
	want, _ = os.ReadFile(filepath.Join(dir, "bysignet.pub"))
	if !bytes.Equal(fromCosign, want) {
		t.Fatalf("cosign public-key of signet's key:\n%s\nwant\n%s", fromCosign, want)
	}
}

func TestVersion(t *testing.T) {
	out, err := runCLI(t, "version")
	if err != nil || !strings.HasPrefix(out, "signet ") || !strings.Contains(out, "go1.") {
		t.Fatalf("version: %v %q", err, out)
	}
}

// generate-key-pair --pkcs11 makes the key inside the token: only the
// public key is written, it is the token's key, the PIN is not printed, and
// a second key of the same label is refused.
func TestGenerateKeyPairInToken(t *testing.T) {
	tk := softhsmtest.Setup(t)
	uri := tk.URI(fmt.Sprintf("release-%d", time.Now().UnixNano()))
	prefix := filepath.Join(t.TempDir(), "release")
	out, err := runCLI(t, "generate-key-pair", "--output-key-prefix", prefix, "--pkcs11", uri)
	if err != nil || strings.Contains(out, tk.PIN) || !strings.Contains(out, "made in the token") {
		t.Fatalf("generate-key-pair --pkcs11: %v\n%s", err, out)
	}
	if _, err := os.Stat(prefix + ".key"); !os.IsNotExist(err) {
		t.Fatalf("a private key file was written: %v", err)
	}
	pubPEM, err := os.ReadFile(prefix + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := client.ParsePublicKeyPEM(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	inToken, err := keys.Open(uri, keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !inToken.Public().(*ecdsa.PublicKey).Equal(pub) {
		t.Fatal("PREFIX.pub is not the token's key")
	}
	if _, err := runCLI(t, "generate-key-pair", "--output-key-prefix", prefix+"-2", "--pkcs11", uri); err == nil || !strings.Contains(err.Error(), "already holds a key of that object= label") {
		t.Fatalf("a second key of the same label: %v", err)
	}
}

// import-key-pair turns keys openssl writes into cosign's encrypted format:
// unmodified cosign decrypts the result to the very public key openssl
// derives from the original, and inputs that are no plain private key are
// refused with nothing written.
func TestImportKeyPair(t *testing.T) {
	cosign := cosigntest.Binary(t)
	withoutPasswordEnv(t)
	dir := t.TempDir()
	const password = "imported secret"
	t.Setenv("SIGNET_PASSWORD", password)
	openssl := func(t *testing.T, args ...string) []byte {
		t.Helper()
		out, err := exec.Command("openssl", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
		return out
	}
	for name, gen := range map[string][]string{
		"PKCS#8 P-256": {"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"},
		"SEC 1 P-384":  {"ecparam", "-genkey", "-name", "secp384r1", "-noout"},
		"PKCS#1 RSA":   {"genrsa", "-traditional", "3072"}, // the size comes last
		"Ed25519":      {"genpkey", "-algorithm", "ed25519"},
	} {
		t.Run(name, func(t *testing.T) {
			src := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".pem")
			prefix := strings.TrimSuffix(src, ".pem") + "-imported"
			openssl(t, append(append(gen[:1:1], "-out", src), gen[1:]...)...)
			want := openssl(t, "pkey", "-in", src, "-pubout")
			out, err := runCLI(t, "import-key-pair", "--key", src, "--output-key-prefix", prefix)
			if err != nil || !strings.Contains(out, "Private key written to "+prefix+".key") {
				t.Fatalf("import-key-pair: %v\n%s", err, out)
			}
			if pub, _ := os.ReadFile(prefix + ".pub"); !bytes.Equal(pub, want) {
				t.Fatalf("%s.pub:\n%s\nwant openssl's\n%s", prefix, pub, want)
			}
			if st, err := os.Stat(prefix + ".key"); err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("private key file: %v %v", st, err)
			}
			c := exec.Command(cosign, "public-key", "--key", prefix+".key")
			c.Env = append(os.Environ(), "COSIGN_PASSWORD="+password, "HOME="+dir)
			got, err := c.Output()
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("cosign public-key of the imported key: %v\n%s\nwant\n%s", err, got, want)
			}
		})
	}

	// Refusals: an already-encrypted key, a public key, a second import
	// over existing files. None writes anything.
	src := filepath.Join(dir, "PKCS#8-P-256.pem")
	for name, tc := range map[string]struct {
		key, prefix, want string
	}{
		"encrypted": {filepath.Join(dir, "PKCS#8-P-256-imported.key"), filepath.Join(dir, "again"), "already an encrypted key"},
		"public":    {filepath.Join(dir, "PKCS#8-P-256-imported.pub"), filepath.Join(dir, "again"), "not a private key"},
		"existing":  {src, filepath.Join(dir, "PKCS#8-P-256-imported"), "already exists"},
		"missing":   {filepath.Join(dir, "nope.pem"), filepath.Join(dir, "again"), "nope.pem"},
	} {
		if _, err := runCLI(t, "import-key-pair", "--key", tc.key, "--output-key-prefix", tc.prefix); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "again.key")); !os.IsNotExist(err) {
		t.Fatalf("a refused import wrote again.key: %v", err)
	}
}
