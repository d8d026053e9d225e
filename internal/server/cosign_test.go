package server_test

import (
	"context"
	"encoding/base64"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/signet-dev/signet/internal/cosigntest"
	"github.com/signet-dev/signet/log/rekorapi/model"
)

// cosignIn runs cosign in dir with HOME and TUF_ROOT there, so no TUF root
// cached elsewhere (such as the public instance's) is used.
func cosignIn(cosign, dir string) func(args ...string) (string, error) {
	return func(args ...string) (string, error) {
		cmd := exec.Command(cosign, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "HOME="+dir, "TUF_ROOT="+filepath.Join(dir, "tuf-cache"))
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
}

// Unmodified cosign signs a blob keyless against this instance (our CA with
// an embedded SCT, our log, our TSA, from the signing config we serve) and
// verifies it with the trusted root we serve; a tampered blob fails.
func TestCosignSignAndVerifyBlobKeyless(t *testing.T) {
	cosign := cosigntest.Binary(t)
	inst := newFixture(t).startDev(t)
	dir := t.TempDir()
	blob := filepath.Join(dir, "blob")
	os.WriteFile(blob, []byte("signed by unmodified cosign"), 0o644) //nolint:errcheck
	bundle := filepath.Join(dir, "blob.sigstore.json")
	data := inst.srv.DataDir()
	run := cosignIn(cosign, dir)
	out, err := run("sign-blob", "--yes",
		"--signing-config", filepath.Join(data, "signing_config.json"),
		"--trusted-root", filepath.Join(data, "trusted_root.json"),
		"--identity-token", inst.devToken("email=cosign@example.com"),
		"--bundle", bundle, blob)
	if err != nil {
		t.Fatalf("cosign sign-blob: %v\n%s", err, out)
	}
	verify := func(file string) (string, error) {
		return run("verify-blob", "--trusted-root", filepath.Join(data, "trusted_root.json"), "--bundle", bundle,
			"--certificate-identity", "cosign@example.com", "--certificate-oidc-issuer", inst.srv.DevIssuer().URL(), file)
	}
	if out, err := verify(blob); err != nil || !strings.Contains(out, "Verified OK") {
		t.Fatalf("cosign verify-blob: %v\n%s", err, out)
	}
	tampered := filepath.Join(dir, "tampered")
	os.WriteFile(tampered, []byte("not what was signed"), 0o644) //nolint:errcheck
	if out, err := verify(tampered); err == nil {
		t.Fatalf("cosign verified a tampered blob:\n%s", out)
	}
}

// cosign bootstrapped from our TUF repository (`cosign initialize --mirror
// --root`) needs no trust files: it finds the signing config and trusted
// root through TUF, as it does against the public instance.
func TestCosignUsesTheTUFRepository(t *testing.T) {
	cosign := cosigntest.Binary(t)
	inst := newFixture(t).startDev(t)
	dir := t.TempDir()
	blob := filepath.Join(dir, "blob")
	os.WriteFile(blob, []byte("trust from TUF"), 0o644) //nolint:errcheck
	bundle := filepath.Join(dir, "blob.sigstore.json")
	run := cosignIn(cosign, dir)
	if out, err := run("initialize", "--mirror", inst.http.URL+"/tuf", "--root", filepath.Join(inst.srv.DataDir(), "tuf-root.json")); err != nil {
		t.Fatalf("cosign initialize: %v\n%s", err, out)
	}
	if out, err := run("sign-blob", "--yes", "--identity-token", inst.devToken("email=tuf@example.com"), "--bundle", bundle, blob); err != nil {
		t.Fatalf("cosign sign-blob: %v\n%s", err, out)
	}
	out, err := run("verify-blob", "--bundle", bundle, "--certificate-identity", "tuf@example.com",
		"--certificate-oidc-issuer", inst.srv.DevIssuer().URL(), blob)
	if err != nil || !strings.Contains(out, "Verified OK") {
		t.Fatalf("cosign verify-blob: %v\n%s", err, out)
	}
	// Without `cosign initialize`: the mirror and initial root from the
	// environment, in a fresh cache.
	fresh := t.TempDir()
	cmd := exec.Command(cosign, "verify-blob", "--bundle", bundle, "--certificate-identity", "tuf@example.com",
		"--certificate-oidc-issuer", inst.srv.DevIssuer().URL(), blob)
	cmd.Dir = fresh
	cmd.Env = append(os.Environ(), "HOME="+fresh, "TUF_ROOT="+filepath.Join(fresh, "tuf-cache"),
		"TUF_MIRROR="+inst.http.URL+"/tuf", "TUF_ROOT_JSON="+filepath.Join(inst.srv.DataDir(), "tuf-root.json"))
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Verified OK") {
		t.Fatalf("cosign verify-blob with TUF_MIRROR and TUF_ROOT_JSON: %v\n%s", err, out)
	}
	var fetched []string
	filepath.Walk(filepath.Join(fresh, "tuf-cache"), func(p string, _ os.FileInfo, _ error) error { //nolint:errcheck
		if strings.HasSuffix(p, "trusted_root.json") {
			fetched = append(fetched, p)
		}
		return nil
	})
	if len(fetched) != 1 || !strings.Contains(fetched[0], strings.ReplaceAll(strings.TrimPrefix(inst.http.URL, "http://"), ":", "-")) {
		t.Fatalf("cosign did not fetch the trusted root from our mirror with TUF_MIRROR set: %v", fetched)
	}
}

// Unmodified cosign signs a container image in a real OCI registry (go-
// containerregistry's, in-process) keyless against this instance, and
// verifies it with the trusted root we serve.
func TestCosignSignAndVerifyImageKeyless(t *testing.T) {
	cosign := cosigntest.Binary(t)
	inst := newFixture(t).startDev(t)
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(reg.URL, "http://")
	ref, err := name.ParseReference(host+"/signet/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()
	image := host + "/signet/app@" + digest.String()
	dir := t.TempDir()
	data := inst.srv.DataDir()
	run := cosignIn(cosign, dir)
	out, err := run("sign", "--yes", "--allow-insecure-registry",
		"--signing-config", filepath.Join(data, "signing_config.json"),
		"--trusted-root", filepath.Join(data, "trusted_root.json"),
		"--identity-token", inst.devToken("email=image@example.com"), image)
	if err != nil {
		t.Fatalf("cosign sign: %v\n%s", err, out)
	}
	// cosign v3 logs image signatures as dsse entries.
	e, err := inst.client.GetByIndex(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := base64.StdEncoding.DecodeString(e.Body)
	if !strings.Contains(string(body), `"kind":"dsse"`) {
		t.Fatalf("cosign's image signature was logged as %s, expected dsse", body[:60])
	}
	verify := func(identity string) (string, error) {
		return run("verify", "--allow-insecure-registry", "--trusted-root", filepath.Join(data, "trusted_root.json"),
			"--certificate-identity", identity, "--certificate-oidc-issuer", inst.srv.DevIssuer().URL(), image)
	}
	if out, err := verify("image@example.com"); err != nil {
		t.Fatalf("cosign verify: %v\n%s", err, out)
	}
	if out, err := verify("someone-else@example.com"); err == nil {
		t.Fatalf("cosign verified the image for another identity:\n%s", out)
	}
	// An in-toto attestation on the same image, and its verification.
	pred := filepath.Join(dir, "predicate.json")
	os.WriteFile(pred, []byte(`{"builder":{"id":"https://ci.example.com"},"buildType":"https://example.com/build/v1"}`), 0o644) //nolint:errcheck
	out, err = run("attest", "--yes", "--allow-insecure-registry", "--type", "slsaprovenance", "--predicate", pred,
		"--signing-config", filepath.Join(data, "signing_config.json"),
		"--trusted-root", filepath.Join(data, "trusted_root.json"),
		"--identity-token", inst.devToken("email=image@example.com"), image)
	if err != nil {
		t.Fatalf("cosign attest: %v\n%s", err, out)
	}
	out, err = run("verify-attestation", "--allow-insecure-registry", "--type", "slsaprovenance",
		"--trusted-root", filepath.Join(data, "trusted_root.json"),
		"--certificate-identity", "image@example.com", "--certificate-oidc-issuer", inst.srv.DevIssuer().URL(), image)
	if err != nil {
		t.Fatalf("cosign verify-attestation: %v\n%s", err, out)
	}
	// The attestation's subject (the image digest) is searchable in the log.
	ids, err := inst.client.Search(context.Background(), model.SearchIndex{Hash: digest.String()})
	if err != nil || len(ids) == 0 {
		t.Fatalf("searching the log for the image digest: %v %v", ids, err)
	}
}
