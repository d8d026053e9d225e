package server_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// cosignBinary finds an unmodified cosign (make cosign installs v3.0.6).
func cosignBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("cosign"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", "cosign")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("cosign not installed (make cosign installs it)")
	return ""
}

// Unmodified cosign signs a blob keyless against this instance (our CA with
// an embedded SCT, our log, our TSA, from the signing config we serve) and
// verifies it with the trusted root we serve; a tampered blob fails.
func TestCosignSignAndVerifyBlobKeyless(t *testing.T) {
	cosign := cosignBinary(t)
	inst := newFixture(t).startDev(t)
	dir := t.TempDir()
	blob := filepath.Join(dir, "blob")
	os.WriteFile(blob, []byte("signed by unmodified cosign"), 0o644) //nolint:errcheck
	bundle := filepath.Join(dir, "blob.sigstore.json")
	data := inst.srv.DataDir()
	run := func(args ...string) (string, error) {
		cmd := exec.Command(cosign, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "HOME="+dir) // no cached TUF root from elsewhere
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
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
