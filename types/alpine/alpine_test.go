package alpine_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/signet-dev/signet/internal/apkbuild"
	"github.com/signet-dev/signet/types"
	"github.com/signet-dev/signet/types/alpine"
	"github.com/signet-dev/signet/types/internal/rekorref"
)

func proposal(t testing.TB, apk, key []byte) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"apiVersion": "0.0.1", "kind": "alpine", "spec": map[string]any{
		"package": map[string]any{"content": apk}, "publicKey": map[string]any{"content": key}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The leaf (package hash, .PKGINFO fields as Rekor's ini reading gives
// them, the key) and index keys are Rekor 1.5's.
func TestMatchesRekor(t *testing.T) {
	reg := types.NewRegistry(alpine.Kind())
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	for name, tweak := range map[string]func(string) string{
		"as abuild makes it": nil,
		"comments, spaces and quotes": func(s string) string {
			return strings.Replace(s, "pkgdesc = says hello", "; a comment\npkgdesc=\"says hello\"\n  replaces = hello-old", 1)
		},
	} {
		t.Run(name, func(t *testing.T) {
			b := mustBuild(t, key, tweak)
			e := rekorref.Matches(t, reg, proposal(t, b.APK, b.PubPEM))
			if !strings.Contains(string(e.Canonical()), `"pkgname":"hello"`) || strings.Contains(string(e.Canonical()), "usr/bin") {
				t.Errorf("leaf %s", e.Canonical())
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	reg := types.NewRegistry(alpine.Kind())
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	good := mustBuild(t, key, nil)
	otherKey := mustBuild(t, other, nil).PubPEM
	wrongData := append(append([]byte(nil), good.APK...), 0)
	badHash := mustBuild(t, key, func(s string) string { return s + "datahash = 00\n" })
	manyLines := mustBuild(t, key, func(s string) string { return s + strings.Repeat("depend = x\n", 3000) })
	// A control stream that decompresses to more than the bound.
	bomb := apkbuild.GzipTar([][2]string{{".PKGINFO", strings.Repeat("x", alpine.MaxControlStream+1)}}, true)
	sigOnly := apkbuild.GzipTar([][2]string{{".SIGN.RSA.k.rsa.pub", "sig"}}, true)
	for name, tc := range map[string]struct {
		apk, key []byte
		want     string
	}{
		"another key":               {good.APK, otherKey, "does not verify"},
		"data changed":              {wrongData, good.PubPEM, "does not match .PKGINFO's datahash"},
		"datahash not sha256":       {badHash.APK, badHash.PubPEM, "datahash is not a SHA-256"},
		"a gzip bomb of control":    {append(sigOnly, bomb...), good.PubPEM, "decompresses to more than"},
		"not gzip":                  {[]byte("not an apk"), good.PubPEM, "not an .apk"},
		"a .PKGINFO of 3,000 lines": {manyLines.APK, manyLines.PubPEM, "more than 2048"},
		"unsigned":                  {append(apkbuild.GzipTar([][2]string{{"README", "x"}}, true), apkbuild.GzipTar([][2]string{{".PKGINFO", "pkgname = x\n"}}, true)...), good.PubPEM, "no signature in the package"},
	} {
		_, err := reg.ParseInsertable(context.Background(), proposal(t, tc.apk, tc.key))
		var ve *types.ValidationError
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a validation error saying %q", name, err, tc.want)
		}
	}
}

// Whatever bytes arrive as a package, parsing answers an entry or a
// validation error, and never panics.
func FuzzParse(f *testing.F) {
	key, _ := rsa.GenerateKey(rand.Reader, 1024)
	b := mustBuild(f, key, nil)
	f.Add(b.APK)
	reg := types.NewRegistry(alpine.Kind())
	f.Fuzz(func(t *testing.T, apk []byte) {
		_, err := reg.ParseInsertable(context.Background(), proposal(t, apk, b.PubPEM))
		var ve *types.ValidationError
		if err != nil && (!errors.As(err, &ve) || errors.Is(err, types.ErrParserPanic)) {
			t.Fatalf("not a validation error, or a parser panic: %v", err)
		}
	})
}

func mustBuild(t testing.TB, key *rsa.PrivateKey, tweak func(string) string) apkbuild.Package {
	t.Helper()
	p, err := apkbuild.Build(key, tweak)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
