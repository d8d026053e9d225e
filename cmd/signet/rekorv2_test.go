package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signet-dev/signet/internal/config"
)

// With the Rekor v2 log enabled, the signing config lists it and signet
// (sigstore-go) signs through it: a blob and an image, keyless and with a
// key; signet and unmodified cosign verify each.
func TestSignetThroughRekorV2(t *testing.T) {
	x := newInterop(t, func(c *config.Config) { c.Log.V2.Enabled = true })
	blob := x.write("app.tar.gz", "release bits through v2")
	bundle := filepath.Join(x.dir, "v2.sigstore.json")
	out, err := runCLI(t, "sign-blob", blob, "--bundle", bundle, "--yes", "--identity-token", devToken(t, x.base, "alice@example.com"))
	if err != nil || !strings.Contains(out, "with a certificate for alice@example.com") {
		t.Fatalf("sign-blob: %v\n%s", err, out)
	}
	raw, _ := os.ReadFile(bundle)
	if !strings.Contains(string(raw), `"version": "0.0.2"`) && !strings.Contains(string(raw), `"version":"0.0.2"`) {
		t.Fatalf("the bundle's entry is not a v2 one:\n%s", raw)
	}
	x.mustCosign("verify-blob", "--trusted-root", x.trustedRoot, "--bundle", bundle,
		"--certificate-identity", "alice@example.com", "--certificate-oidc-issuer", x.issuer, blob)
	if out, err := runCLI(t, "verify-blob", blob, "--bundle", bundle, "--certificate-identity", "alice@example.com", "--certificate-oidc-issuer", x.issuer); err != nil {
		t.Fatalf("verify-blob: %v\n%s", err, out)
	}

	t.Setenv("SIGNET_PASSWORD", "pw")
	if _, err := runCLI(t, "generate-key-pair", "--output-key-prefix", filepath.Join(x.dir, "release")); err != nil {
		t.Fatal(err)
	}
	image := pushRandomImage(t, startRegistry(t, "referrers API"), "app:v1")
	for _, args := range [][]string{
		{"sign", image, "--allow-http-registry", "--yes", "--identity-token", devToken(t, x.base, "alice@example.com")},
		{"sign", image, "--allow-http-registry", "--yes", "--key", filepath.Join(x.dir, "release.key")},
	} {
		if out, err := runCLI(t, args...); err != nil {
			t.Fatalf("signet %v: %v\n%s", args, err, out)
		}
	}
	x.mustCosign("verify", "--allow-http-registry", "--trusted-root", x.trustedRoot,
		"--certificate-identity", "alice@example.com", "--certificate-oidc-issuer", x.issuer, image)
	x.mustCosign("verify", "--allow-http-registry", "--trusted-root", x.trustedRoot, "--key", "release.pub", image)
	if out, err := runCLI(t, "verify", image, "--allow-http-registry", "--key", filepath.Join(x.dir, "release.pub")); err != nil {
		t.Fatalf("signet verify --key: %v\n%s", err, out)
	}
}

// signet monitor --log rekor-v2 follows the Rekor v2 log as tiles: its
// checkpoint verified with the pinned trusted root's v2 key and its signed
// origin the instance's hostname, each hashedrekord 0.0.2 entry's signer
// (certificate or key) matched; a second pass reports nothing new.
func TestMonitorRekorV2(t *testing.T) {
	x := newPinned(t, func(c *config.Config) { c.Log.V2.Enabled = true })
	for _, email := range []string{"alice@example.com", "bob@example.com"} {
		blob := x.write(email+".txt", "signed by "+email)
		if out, err := runCLI(t, "sign-blob", blob, "--bundle", blob+".sigstore.json", "--yes", "--identity-token", devToken(t, x.base, email)); err != nil {
			t.Fatalf("sign-blob: %v\n%s", err, out)
		}
	}
	watch := x.write("watch.yaml", "emails: [bob@example.com]\n")
	state := filepath.Join(x.dir, "state.json")
	lines, err := monitorLines(t, x.base, "--log", "rekor-v2", "--watch", watch, "--state", state)
	if err != nil || len(lines) != 1 || lines[0]["log_index"] != float64(1) || lines[0]["kind"] != "hashedrekord" {
		t.Fatalf("following the v2 log: %v %v", err, lines)
	}
	signer := lines[0]["signers"].([]any)[0].(map[string]any)
	if emails := signer["emails"].([]any); emails[0] != "bob@example.com" || signer["oidc_issuer"] != x.issuer {
		t.Fatalf("signer %v", signer)
	}
	if again, err := monitorLines(t, x.base, "--log", "rekor-v2", "--watch", watch, "--state", state); err != nil || len(again) != 0 {
		t.Fatalf("followed again: %v %v", err, again)
	}
	// Several logs in one run, each under its own names in one state file.
	both := filepath.Join(x.dir, "both.json")
	lines, err = monitorLines(t, x.base, "--log", "rekor,rekor-v2", "--watch", watch, "--state", both)
	if err != nil || len(lines) != 1 || lines[0]["log_index"] != float64(1) {
		t.Fatalf("following rekor and rekor-v2: %v %v", err, lines)
	}
	raw, _ := os.ReadFile(both)
	if !strings.Contains(string(raw), `"rekor-v2 `+x.base) || !strings.Contains(string(raw), `"`+x.base+` `) {
		t.Fatalf("the state does not name both logs:\n%s", raw)
	}
	pub, _ := http.Get(x.base + "/api/v1/log/publicKey")
	keyPEM, _ := io.ReadAll(pub.Body)
	pub.Body.Close()
	if _, err := monitorLines(t, x.base, "--log", "rekor,ct", "--log-key", x.write("x.pub", string(keyPEM)), "--watch", watch, "--state", both); err == nil || !strings.Contains(err.Error(), "--log-key pins one log's key") {
		t.Fatalf("--log-key with two logs: %v", err)
	}
}
