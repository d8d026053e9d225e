package main

import (
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gname "github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// startDockerRegistry runs Debian's docker-registry (distribution 2.8: no
// referrers API, so signatures go through the referrers tag) on a free
// port with its storage in the test's directory, and returns host:port.
func startDockerRegistry(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Fatal("docker-registry not installed: run make deps (apt-get install docker-registry)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yml")
	os.WriteFile(cfg, []byte("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: "+dir+"/data\n  delete:\n    enabled: true\nhttp:\n  addr: "+addr+"\n"), 0o644) //nolint:errcheck
	cmd := exec.Command(bin, "serve", cfg)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() }) //nolint:errcheck
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
		if i == 200 {
			t.Fatalf("docker-registry did not come up on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pushRandomImage puts a random image at host/repo:tag and returns its
// digest reference.
func pushRandomImage(t *testing.T, host, repoTag string) string {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := gname.ParseReference(host+"/"+repoTag, gname.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return ref.Context().Digest(d.String()).String()
}

// Images signed by signet verify with unmodified cosign and signet, and
// images cosign signs verify with signet, keyless and with keys, in a
// registry with the OCI referrers API and in one without (the referrers
// tag fallback); annotations, identities and keys are checked.
func TestImageSignaturesInteroperateWithCosign(t *testing.T) {
	x := newInterop(t)
	base, issuer, trustedRoot, signingConfig, dir, mustCosign := x.base, x.issuer, x.trustedRoot, x.signingConfig, x.dir, x.mustCosign
	t.Setenv("COSIGN_PASSWORD", "pw")
	if _, err := runCLI(t, "generate-key-pair", "--output-key-prefix", filepath.Join(dir, "signet")); err != nil {
		t.Fatal(err)
	}
	mustCosign("generate-key-pair", "--output-key-prefix", "cosign")
	var ve *verifyError

	for _, mode := range []string{"referrers API", "referrers tag fallback", "Debian docker-registry"} {
		t.Run(mode, func(t *testing.T) {
			host := startRegistry(t, mode)
			keyless := func(args ...string) []string {
				return append(args, "--certificate-identity", "alice@example.com", "--certificate-oidc-issuer", issuer)
			}

			// signet signs keyless, by tag, with an annotation.
			image := pushRandomImage(t, host, "app:v1")
			tagged := host + "/app:v1"
			if _, err := runCLI(t, keyless("verify", image, "--allow-http-registry")...); !errors.As(err, &ve) || !strings.Contains(err.Error(), "no Sigstore signature") {
				t.Fatalf("verify of an unsigned image: %v", err)
			}
			out, err := runCLI(t, "sign", tagged, "--allow-http-registry", "--yes", "-a", "release=v1", "--identity-token", devToken(t, base, "alice@example.com"))
			if err != nil || !strings.Contains(out, "with a certificate for alice@example.com") {
				t.Fatalf("signet sign: %v\n%s", err, out)
			}
			mustCosign(keyless("verify", "--allow-http-registry", "--trusted-root", trustedRoot, "-a", "release=v1", image)...)
			out, err = runCLI(t, keyless("verify", tagged, "--allow-http-registry", "-a", "release=v1")...)
			if err != nil || !strings.Contains(out, "Verified OK: "+image) || !strings.Contains(out, "signed by alice@example.com") {
				t.Fatalf("signet verify: %v\n%s", err, out)
			}
			// A policy that cannot be applied is a usage error (exit 1),
			// whatever the image holds.
			if _, err := runCLI(t, "verify", image, "--allow-http-registry", "--certificate-identity", "alice@example.com"); err == nil || errors.As(err, &ve) || !strings.Contains(err.Error(), "say whose signature to expect") {
				t.Fatalf("verify without an issuer: %v, want exit 1 naming what is missing", err)
			}
			for what, args := range map[string][]string{
				"another annotation value": keyless("verify", image, "--allow-http-registry", "-a", "release=v2"),
				"another identity":         {"verify", image, "--allow-http-registry", "--certificate-identity", "mallory@example.com", "--certificate-oidc-issuer", issuer},
				"a key":                    {"verify", image, "--allow-http-registry", "--key", filepath.Join(dir, "signet.pub")},
			} {
				if _, err := runCLI(t, args...); !errors.As(err, &ve) {
					t.Errorf("%s: %v, want exit 3", what, err)
				}
			}

			// cosign signs keyless, signet verifies.
			other := pushRandomImage(t, host, "other:v1")
			mustCosign("sign", "--yes", "--allow-http-registry", "--signing-config", signingConfig, "--trusted-root", trustedRoot,
				"--identity-token", devToken(t, base, "alice@example.com"), other)
			if out, err := runCLI(t, keyless("verify", other, "--allow-http-registry")...); err != nil {
				t.Fatalf("signet verify of cosign's signature: %v\n%s", err, out)
			}

			// Attestations: signet attests and cosign verifies, cosign attests
			// and signet verifies; the signature is not taken for one, nor
			// an attestation for a signature.
			predicate := filepath.Join(dir, "predicate.json")
			os.WriteFile(predicate, []byte(`{"buildDefinition":{"buildType":"https://example.com/build/v1"},"runDetails":{"builder":{"id":"https://ci.example.com"}}}`), 0o644) //nolint:errcheck
			if out, err := runCLI(t, "attest", image, "--allow-http-registry", "--yes", "--predicate", predicate, "--type", "slsaprovenance1", "--identity-token", devToken(t, base, "alice@example.com")); err != nil {
				t.Fatalf("signet attest: %v\n%s", err, out)
			}
			mustCosign(keyless("verify-attestation", "--allow-http-registry", "--trusted-root", trustedRoot, "--type", "slsaprovenance1", image)...)
			mustCosign("attest", "--yes", "--allow-http-registry", "--signing-config", signingConfig, "--trusted-root", trustedRoot,
				"--identity-token", devToken(t, base, "alice@example.com"), "--predicate", predicate, "--type", "custom", other)
			if out, err := runCLI(t, keyless("verify-attestation", other, "--allow-http-registry")...); err != nil || !strings.Contains(out, "Verified OK") {
				t.Fatalf("signet verify-attestation of cosign's attestation: %v\n%s", err, out)
			}
			if _, err := runCLI(t, keyless("verify-attestation", image, "--allow-http-registry", "--type", "spdxjson")...); !errors.As(err, &ve) {
				t.Fatalf("verify-attestation with another type: %v, want exit 3", err)
			}
			// The image now has a signature and an attestation: verify still
			// finds its signature, and only it.
			if out, err := runCLI(t, keyless("verify", image, "--allow-http-registry", "-a", "release=v1")...); err != nil || strings.Count(out, "signed by") != 1 {
				t.Fatalf("verify beside an attestation: %v\n%s", err, out)
			}

			// --recursive signs a multi-platform index and each platform's
			// manifest; without it only the index is signed.
			idx, err := random.Index(256, 1, 2)
			if err != nil {
				t.Fatal(err)
			}
			idxRef, _ := gname.ParseReference(host+"/multi:v1", gname.Insecure)
			if err := remote.WriteIndex(idxRef, idx); err != nil {
				t.Fatal(err)
			}
			im, _ := idx.IndexManifest()
			idxDigest, _ := idx.Digest()
			child := host + "/multi@" + im.Manifests[0].Digest.String()
			token := devToken(t, base, "alice@example.com")
			if _, err := runCLI(t, "sign", host+"/multi:v1", "--allow-http-registry", "--yes", "--identity-token", token); err != nil {
				t.Fatal(err)
			}
			if _, err := runCLI(t, keyless("verify", child, "--allow-http-registry")...); !errors.As(err, &ve) {
				t.Fatalf("a platform manifest verified after signing the index alone: %v", err)
			}
			if _, err := runCLI(t, "sign", host+"/multi:v1", "--allow-http-registry", "--yes", "--recursive", "--bundle", filepath.Join(dir, "one.json"), "--identity-token", token); err == nil || !strings.Contains(err.Error(), "--bundle keeps one bundle") {
				t.Fatalf("--recursive with --bundle: %v", err)
			}
			out, err = runCLI(t, "sign", host+"/multi:v1", "--allow-http-registry", "--yes", "--recursive", "--identity-token", token)
			if err != nil || strings.Count(out, "Signed ") != 3 {
				t.Fatalf("sign --recursive: %v\n%s", err, out)
			}
			for _, ref := range []string{child, host + "/multi@" + im.Manifests[1].Digest.String(), host + "/multi@" + idxDigest.String()} {
				mustCosign(keyless("verify", "--allow-http-registry", "--trusted-root", trustedRoot, ref)...)
			}

			// Keys: each tool's key signs, the other verifies.
			keyed := pushRandomImage(t, host, "keyed:v1")
			if out, err := runCLI(t, "sign", keyed, "--allow-http-registry", "--yes", "--key", filepath.Join(dir, "signet.key")); err != nil {
				t.Fatalf("signet sign --key: %v\n%s", err, out)
			}
			mustCosign("verify", "--allow-http-registry", "--trusted-root", trustedRoot, "--key", "signet.pub", keyed)
			mustCosign("sign", "--yes", "--allow-http-registry", "--signing-config", signingConfig, "--trusted-root", trustedRoot, "--key", "cosign.key", keyed)
			if out, err := runCLI(t, "verify", keyed, "--allow-http-registry", "--key", filepath.Join(dir, "cosign.pub")); err != nil || !strings.Contains(out, "signed by the given key") {
				t.Fatalf("signet verify --key of cosign's signature: %v\n%s", err, out)
			}

			// cosign's legacy .sig tags, both ways, keyless and with a key.
			legacy := pushRandomImage(t, host, "legacy:v1")
			if out, err := runCLI(t, "sign", legacy, "--legacy-tags", "--allow-http-registry", "--yes", "-a", "team=infra", "--identity-token", devToken(t, base, "alice@example.com")); err != nil {
				t.Fatalf("signet sign --legacy-tags: %v\n%s", err, out)
			}
			mustCosign(keyless("verify", "--allow-http-registry", "--trusted-root", trustedRoot, "-a", "team=infra", legacy)...)
			if out, err := runCLI(t, keyless("verify", legacy, "--allow-http-registry", "-a", "team=infra")...); err != nil || !strings.Contains(out, "(legacy .sig tag)") {
				t.Fatalf("signet verify of its legacy signature: %v\n%s", err, out)
			}
			if _, err := runCLI(t, keyless("verify", legacy, "--allow-http-registry", "-a", "team=web")...); !errors.As(err, &ve) {
				t.Fatalf("legacy signature with another annotation: %v, want exit 3", err)
			}
			legacyByCosign := pushRandomImage(t, host, "legacy-cosign:v1")
			mustCosign("sign", "--yes", "--allow-http-registry", "--new-bundle-format=false", "--use-signing-config=false",
				"--fulcio-url", base, "--rekor-url", base, "--timestamp-server-url", base+"/api/v1/timestamp", "--trusted-root", trustedRoot,
				"--identity-token", devToken(t, base, "alice@example.com"), legacyByCosign)
			if out, err := runCLI(t, keyless("verify", legacyByCosign, "--allow-http-registry")...); err != nil || !strings.Contains(out, "(legacy .sig tag)") {
				t.Fatalf("signet verify of cosign's legacy signature: %v\n%s", err, out)
			}
			mustCosign("sign", "--yes", "--allow-http-registry", "--new-bundle-format=false", "--use-signing-config=false",
				"--rekor-url", base, "--trusted-root", trustedRoot, "--key", "cosign.key", legacyByCosign)
			if out, err := runCLI(t, "verify", legacyByCosign, "--allow-http-registry", "--key", filepath.Join(dir, "cosign.pub")); err != nil {
				t.Fatalf("signet verify --key of cosign's legacy key signature: %v\n%s", err, out)
			}
			if out, err := runCLI(t, "sign", legacy, "--legacy-tags", "--allow-http-registry", "--yes", "--key", filepath.Join(dir, "signet.key")); err != nil {
				t.Fatalf("signet sign --legacy-tags --key: %v\n%s", err, out)
			}
			mustCosign("verify", "--allow-http-registry", "--trusted-root", trustedRoot, "--key", "signet.pub", legacy)
			// Legacy attestations (.att), both ways.
			if out, err := runCLI(t, "attest", legacy, "--legacy-tags", "--allow-http-registry", "--yes", "--predicate", predicate, "--type", "slsaprovenance1", "--identity-token", devToken(t, base, "alice@example.com")); err != nil {
				t.Fatalf("signet attest --legacy-tags: %v\n%s", err, out)
			}
			mustCosign(keyless("verify-attestation", "--allow-http-registry", "--trusted-root", trustedRoot, "--type", "slsaprovenance1", legacy)...)
			if out, err := runCLI(t, keyless("verify-attestation", legacy, "--allow-http-registry", "--type", "slsaprovenance1")...); err != nil || !strings.Contains(out, "(legacy .att tag)") {
				t.Fatalf("signet verify-attestation of its legacy attestation: %v\n%s", err, out)
			}
			mustCosign("attest", "--yes", "--allow-http-registry", "--new-bundle-format=false", "--use-signing-config=false",
				"--fulcio-url", base, "--rekor-url", base, "--timestamp-server-url", base+"/api/v1/timestamp", "--trusted-root", trustedRoot,
				"--identity-token", devToken(t, base, "alice@example.com"), "--predicate", predicate, "--type", "custom", legacyByCosign)
			if out, err := runCLI(t, keyless("verify-attestation", legacyByCosign, "--allow-http-registry")...); err != nil || !strings.Contains(out, "(legacy .att tag)") {
				t.Fatalf("signet verify-attestation of cosign's legacy attestation: %v\n%s", err, out)
			}
			if _, err := runCLI(t, keyless("verify-attestation", legacyByCosign, "--allow-http-registry", "--type", "spdxjson")...); !errors.As(err, &ve) {
				t.Fatalf("legacy attestation of another type: %v, want exit 3", err)
			}
		})
	}
}
