package jar_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signet-dev/signet/types"
	"github.com/signet-dev/signet/types/internal/rekorref"
	"github.com/signet-dev/signet/types/jar"
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
	for name, tc := range map[string]struct {
		archive []byte
		want    string
	}{
		"an entry changed":        {tamperedEntry, "does not verify"},
		"another signer's block":  {swappedBlock, "does not verify"},
		"unsigned":                {unsigned.Bytes(), "does not verify"},
		"256 MiB of zeros inside": {bomb.Bytes(), "decompress to more than"},
		"not a zip":               {[]byte("hello"), "not a zip archive"},
	} {
		_, err := reg.ParseInsertable(context.Background(), proposal(t, tc.archive))
		var ve *types.ValidationError
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a validation error saying %q", name, err, tc.want)
		}
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
		if err != nil && !errors.As(err, &ve) {
			t.Fatalf("not a validation error: %v", err)
		}
	})
}
