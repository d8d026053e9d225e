package jar_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sassoftware/relic/v8/lib/pkcs7"

	"github.com/signet-dev/signet/types"
	"github.com/signet-dev/signet/types/internal/rekorref"
	"github.com/signet-dev/signet/types/jar"
	"github.com/signet-dev/signet/types/pki"
)

// signedJAR builds a jar with the JDK's jar tool and signs it with
// jarsigner and a fresh key of keyalg (RSA or EC) from keytool.
func signedJAR(t testing.TB, keyalg string, files map[string]string) []byte {
	t.Helper()
	dir := t.TempDir()
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	for name, content := range files {
		p := filepath.Join(dir, "src", name)
		os.MkdirAll(filepath.Dir(p), 0o755)     //nolint:errcheck
		os.WriteFile(p, []byte(content), 0o644) //nolint:errcheck
	}
	jarPath, ks := filepath.Join(dir, "app.jar"), filepath.Join(dir, "ks.p12")
	run("jar", "cf", jarPath, "-C", filepath.Join(dir, "src"), ".")
	run("keytool", "-genkeypair", "-alias", "release", "-keyalg", keyalg, "-dname", "CN=Release, O=Example, EMAILADDRESS=release@example.com",
		"-keystore", ks, "-storetype", "PKCS12", "-storepass", "changeit", "-validity", "2")
	run("jarsigner", "-keystore", ks, "-storepass", "changeit", jarPath, "release")
	run("jarsigner", "-verify", jarPath)
	b, _ := os.ReadFile(jarPath)
	return b
}

func proposal(t testing.TB, archive []byte) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"apiVersion": "0.0.1", "kind": "jar", "spec": map[string]any{"archive": map[string]any{"content": archive}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var files = map[string]string{"com/example/App.class": "not really bytecode", "com/example/hello.txt": "hello\n"}

// The leaf and Rekor's index keys are Rekor 1.5's for archives jarsigner
// signs with RSA and EC keys; the signer's certificate is indexed too.
func TestMatchesRekor(t *testing.T) {
	reg := types.NewRegistry(jar.Kind())
	for _, alg := range []string{"RSA", "EC"} {
		t.Run(alg, func(t *testing.T) {
			archive := signedJAR(t, alg, files)
			e, err := reg.ParseInsertable(context.Background(), proposal(t, archive))
			if err != nil {
				t.Fatal(err)
			}
			var leaf struct {
				Spec struct {
					Signature struct {
						PublicKey struct{ Content []byte } `json:"publicKey"`
					} `json:"signature"`
				} `json:"spec"`
			}
			json.Unmarshal(e.Canonical(), &leaf) //nolint:errcheck
			if !bytes.Contains(leaf.Spec.Signature.PublicKey.Content, []byte("BEGIN CERTIFICATE")) {
				t.Fatalf("leaf %s", e.Canonical())
			}
			rekorref.MatchesWithExtraKeys(t, reg, proposal(t, archive), e.IndexKeys()[2])
		})
	}
}

// rewrite copies a jar, changing the entries edit returns new content for.
func rewrite(t *testing.T, archive []byte, edit func(name string, content []byte) []byte) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(archive), int64(len(archive)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, f := range zr.File {
		r, _ := f.Open()
		content, _ := io.ReadAll(r)
		r.Close()
		w, _ := zw.Create(f.Name)
		w.Write(edit(f.Name, content)) //nolint:errcheck
	}
	zw.Close() //nolint:errcheck
	return out.Bytes()
}

func TestRefusals(t *testing.T) {
	reg := types.NewRegistry(jar.Kind())
	archive := signedJAR(t, "RSA", files)
	// Another signer's block over another archive's .SF.
	other := signedJAR(t, "RSA", map[string]string{"com/example/hello.txt": "another archive\n"})
	otherBlock := func() []byte {
		zr, _ := zip.NewReader(bytes.NewReader(other), int64(len(other)))
		for _, f := range zr.File {
			if strings.HasSuffix(f.Name, ".RSA") {
				r, _ := f.Open()
				b, _ := io.ReadAll(r)
				return b
			}
		}
		return nil
	}()
	tamperedEntry := rewrite(t, archive, func(name string, c []byte) []byte {
		if name == "com/example/hello.txt" {
			return []byte("goodbye\n")
		}
		return c
	})
	swappedBlock := rewrite(t, archive, func(name string, c []byte) []byte {
		if strings.HasSuffix(name, ".RSA") {
			return otherBlock
		}
		return c
	})
	var unsigned bytes.Buffer
	zw := zip.NewWriter(&unsigned)
	w, _ := zw.Create("META-INF/MANIFEST.MF")
	w.Write([]byte("Manifest-Version: 1.0\r\n\r\n")) //nolint:errcheck
	zw.Close()                                       //nolint:errcheck
	var bomb bytes.Buffer
	zw = zip.NewWriter(&bomb)
	w, _ = zw.Create("big.bin")
	w.Write(make([]byte, jar.MaxUncompressed+1)) //nolint:errcheck
	zw.Close()                                   //nolint:errcheck
	var smallBomb bytes.Buffer
	zw = zip.NewWriter(&smallBomb)
	w, _ = zw.Create("zeros.bin")
	w.Write(make([]byte, 1<<20)) //nolint:errcheck
	zw.Close()                   //nolint:errcheck
	for name, tc := range map[string]struct {
		archive []byte
		want    string
	}{
		"an entry changed":        {tamperedEntry, "does not verify"},
		"another signer's block":  {swappedBlock, "does not verify"},
		"unsigned":                {unsigned.Bytes(), "does not verify"},
		"256 MiB of zeros inside": {bomb.Bytes(), "decompress to more than"},
		"1 MiB of zeros, 32x":     {smallBomb.Bytes(), "32 times the archive"},
		"not a zip":               {[]byte("hello"), "not a zip archive"},
	} {
		_, err := reg.ParseInsertable(context.Background(), proposal(t, tc.archive))
		var ve *types.ValidationError
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a validation error saying %q", name, err, tc.want)
		}
	}
}

// withEntry copies a jar with one more entry, placed first or last.
func withEntry(t *testing.T, archive []byte, name string, content []byte, first bool) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(archive), int64(len(archive)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	add := func() {
		w, _ := zw.Create(name)
		w.Write(content) //nolint:errcheck
	}
	if first {
		add()
	}
	for _, f := range zr.File {
		r, _ := f.Open()
		c, _ := io.ReadAll(r)
		r.Close()
		w, _ := zw.Create(f.Name)
		w.Write(c) //nolint:errcheck
	}
	if !first {
		add()
	}
	zw.Close() //nolint:errcheck
	return out.Bytes()
}

func block(t *testing.T, archive []byte) []byte {
	t.Helper()
	zr, _ := zip.NewReader(bytes.NewReader(archive), int64(len(archive)))
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, ".RSA") || strings.HasSuffix(f.Name, ".EC") {
			r, _ := f.Open()
			b, _ := io.ReadAll(r)
			return b
		}
	}
	t.Fatal("no block")
	return nil
}

// What the review found: an entry the manifest does not list was logged as
// signed, and another signer's block placed first in the archive was
// logged as its signer.
func TestOnlyWhatTheSignatureCovers(t *testing.T) {
	reg := types.NewRegistry(jar.Kind())
	archive := signedJAR(t, "RSA", files)
	alice := signedJAR(t, "EC", map[string]string{"alice.txt": "Alice's own archive\n"})
	for name, tc := range map[string]struct {
		archive []byte
		want    string
	}{
		"an unsigned class":            {withEntry(t, archive, "com/example/Evil.class", []byte("evil"), false), "Evil.class is not in the manifest"},
		"an unsigned versioned class":  {withEntry(t, archive, "META-INF/versions/9/com/example/App.class", []byte("evil"), false), "is not in the manifest"},
		"two entries of one name":      {withEntry(t, archive, "com/example/hello.txt", []byte("evil"), false), "two entries named"},
		"an unsigned file in META-INF": {withEntry(t, archive, "META-INF/Evil.class", []byte("evil"), false), "META-INF/Evil.class is not in the manifest"},
		"a directory with content":     {dirWithContent(t, archive), "directory entry com/evil/ has content"},
	} {
		_, err := reg.ParseInsertable(context.Background(), proposal(t, tc.archive))
		var ve *types.ValidationError
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a validation error saying %q", name, err, tc.want)
		}
	}
	// Alice's block first, under a name with no .SF: the archive's own
	// signer is logged, not Alice.
	borrowed := withEntry(t, archive, "META-INF/AAA.RSA", block(t, alice), true)
	e, err := reg.ParseInsertable(context.Background(), proposal(t, borrowed))
	if err != nil {
		t.Fatal(err)
	}
	own, _ := reg.ParseInsertable(context.Background(), proposal(t, archive))
	certOf := func(leaf []byte) string {
		var l struct {
			Spec struct {
				Signature struct {
					PublicKey struct{ Content []byte } `json:"publicKey"`
				} `json:"signature"`
			} `json:"spec"`
		}
		json.Unmarshal(leaf, &l) //nolint:errcheck
		return string(l.Spec.Signature.PublicKey.Content)
	}
	if certOf(e.Canonical()) != certOf(own.Canonical()) {
		t.Error("a borrowed block's certificate was logged as the signer")
	}
}

// Whatever bytes arrive as an archive, parsing answers an entry or a
// validation error, and never panics.
func FuzzParse(f *testing.F) {
	archive, err := os.ReadFile("testdata/signed.jar")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(archive)
	reg := types.NewRegistry(jar.Kind())
	f.Fuzz(func(t *testing.T, archive []byte) {
		_, err := reg.ParseInsertable(context.Background(), proposal(t, archive))
		var ve *types.ValidationError
		if err != nil && (!errors.As(err, &ve) || errors.Is(err, types.ErrParserPanic)) {
			t.Fatalf("not a validation error, or a parser panic: %v", err)
		}
	})
}

// A signature block whose certificate holds an RSA key past types/pki's
// bound is refused before relic verifies with it (relic checks a failing
// RSA signature twice; a 512 Kib modulus cost 24 s).
func TestOversizedBlockKeysAreRefused(t *testing.T) {
	orig, err := os.ReadFile("testdata/signed.jar")
	if err != nil {
		t.Fatal(err)
	}
	bits := pki.MaxRSABits + 8
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), uint(bits)))
	n.SetBit(n, bits-1, 1).SetBit(n, 0, 1)
	archive := rewrite(t, orig, func(name string, content []byte) []byte {
		if !strings.HasSuffix(name, ".RSA") {
			return content
		}
		psd, err := pkcs7.Unmarshal(content)
		if err != nil {
			t.Fatal(err)
		}
		ca, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &rsa.PublicKey{N: n, E: 65537}, ca)
		if err != nil {
			t.Fatal(err)
		}
		psd.Content.Certificates = pkcs7.RawCertificates{asn1.RawValue{FullBytes: der}}
		out, err := psd.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return out
	})
	_, err = types.NewRegistry(jar.Kind()).ParseInsertable(context.Background(), proposal(t, archive))
	var ve *types.ValidationError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), "at most 8192 bits") {
		t.Fatalf("%v, want a refusal naming the bound", err)
	}
}

// dirWithContent copies a jar and adds a directory entry that holds bytes
// (archive/zip's writer will not write one): a file, renamed in place, the
// same length, in the local header and the central directory.
func dirWithContent(t *testing.T, archive []byte) []byte {
	t.Helper()
	return bytes.ReplaceAll(withEntry(t, archive, "com/evilX", []byte("evil"), false), []byte("com/evilX"), []byte("com/evil/"))
}
