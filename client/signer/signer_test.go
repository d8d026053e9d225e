package signer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signet-dev/signet/client/keyfile"
)

// Keys open by what names them: a provider for its URI scheme (a KMS
// would plug in here), an encrypted file with its password, a plain file;
// a KMS scheme without a provider is refused saying so, not read as a
// file name.
func TestOpen(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	enc, err := keyfile.Encrypt(key, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	encPath := filepath.Join(dir, "cosign.key")
	os.WriteFile(encPath, enc, 0o600) //nolint:errcheck

	var asked []string
	o := Opener{
		// A provider as a KMS one would be: the scheme's URIs to a signer.
		Providers: map[string]Provider{"testkms": ProviderFunc(func(uri string) (crypto.Signer, error) {
			if uri != "testkms://keys/release" {
				return nil, errors.New("no such key")
			}
			return key, nil
		})},
		Password: func(p string) ([]byte, error) { asked = append(asked, p); return []byte("pw"), nil },
	}
	for _, ref := range []string{"testkms://keys/release", encPath} {
		got, err := o.Open(ref)
		if err != nil || !key.PublicKey.Equal(got.Public()) {
			t.Fatalf("%s: %v", ref, err)
		}
	}
	if len(asked) != 1 || asked[0] != encPath {
		t.Fatalf("passwords asked for %v, want only %s", asked, encPath)
	}
	for ref, want := range map[string]string{
		"testkms://keys/other":        "the testkms key: no such key",
		"awskms:///alias/release":     "awskms:// keys need a KMS provider",
		"hashivault://release":        "hashivault:// keys need a KMS provider",
		filepath.Join(dir, "missing"): "missing",
	} {
		if _, err := o.Open(ref); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error saying %q", ref, err, want)
		}
	}
	// A Windows-style or relative path with a colon is a file, not a scheme.
	if _, err := (Opener{}).Open(filepath.Join(dir, "c:key")); err == nil || strings.Contains(err.Error(), "provider") {
		t.Fatalf("a path with a colon: %v", err)
	}
}
