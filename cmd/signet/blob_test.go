package main

import (
	"crypto/elliptic"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signet-dev/signet/ca/devoidc"
	"github.com/signet-dev/signet/ca/identity"
	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/internal/cosigntest"
	"github.com/signet-dev/signet/internal/db/dbtest"
	"github.com/signet-dev/signet/internal/keys"
	"github.com/signet-dev/signet/internal/keys/softhsmtest"
	"github.com/signet-dev/signet/internal/oidctest"
)

// devToken asks a dev instance's OIDC issuer for a token for email.
func devToken(t *testing.T, base, email string) string {
	t.Helper()
	resp, err := http.Get(base + devoidc.Path + "/token?email=" + email)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		IDToken string `json:"id_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.IDToken == "" {
		t.Fatalf("dev token: %v", err)
	}
	return out.IDToken
}

// interop is a dev instance pinned with signet init (SIGNET_CONFIG_DIR set
// for the test), a scratch directory, and unmodified cosign run in it with
// HOME and TUF_ROOT there, so no trust cached elsewhere is used.
type interop struct {
	t                                                     *testing.T
	cosign, base, issuer, trustedRoot, signingConfig, dir string
}

func newInterop(t *testing.T, mutate ...func(*config.Config)) *interop {
	t.Helper()
	cosign := cosigntest.Binary(t)
	x := newPinned(t, mutate...)
	x.cosign = cosign
	return x
}

// newPinned is newInterop without cosign, for tests of signet alone.
func newPinned(t *testing.T, mutate ...func(*config.Config)) *interop {
	t.Helper()
	x := &interop{t: t, dir: t.TempDir()}
	withoutPasswordEnv(t)
	x.base, _ = startDevAt(t, "127.0.0.1:0", dbtest.NewURL(t), t.TempDir(), mutate...)
	cfgDir := t.TempDir()
	if out, err := runCLI(t, "--config-dir", cfgDir, "--server", x.base, "init", "--root-sha256", rootSHA(t, x.base)); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	t.Setenv("SIGNET_CONFIG_DIR", cfgDir)
	x.trustedRoot, x.signingConfig = filepath.Join(cfgDir, trustedRootFile), filepath.Join(cfgDir, signingConfigFile)
	x.issuer = x.base + devoidc.Path
	return x
}

// write puts body in the scratch directory and returns its path.
func (x *interop) write(name, body string) string {
	x.t.Helper()
	p := filepath.Join(x.dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		x.t.Fatal(err)
	}
	return p
}

// mustCosign runs cosign in the scratch directory and fails the test if
// cosign does.
func (x *interop) mustCosign(args ...string) {
	x.t.Helper()
	c := exec.Command(x.cosign, args...)
	c.Dir = x.dir
	c.Env = append(os.Environ(), "HOME="+x.dir, "TUF_ROOT="+filepath.Join(x.dir, "tuf-cache"))
	if out, err := c.CombinedOutput(); err != nil {
		x.t.Fatalf("cosign %v: %v\n%s", args, err, out)
	}
}

// Blob bundles go both ways between signet and unmodified cosign, keyless
// and with key files, and signet refuses what does not verify with exit 3.
func TestBlobBundlesInteroperateWithCosign(t *testing.T) {
	x := newInterop(t)
	base, issuer, trustedRoot, signingConfig, dir, write := x.base, x.issuer, x.trustedRoot, x.signingConfig, x.dir, x.write
	blob := write("app.tar.gz", "release bits")
	other := write("other.tar.gz", "other bits")
	const password = "pw"
	t.Setenv("COSIGN_PASSWORD", password)
	runCosign := x.mustCosign
	var ve *verifyError

	// Keyless: signet signs, cosign and signet verify.
	bySignet := filepath.Join(dir, "by-signet.sigstore.json")
	if _, err := runCLI(t, "sign-blob", blob, "--bundle", bySignet, "--identity-token", devToken(t, base, "alice@example.com")); err == nil || !strings.Contains(err.Error(), "pass --yes") {
		t.Fatalf("signing without --yes off a terminal: %v", err)
	}
	out, err := runCLI(t, "sign-blob", blob, "--bundle", bySignet, "--yes", "--identity-token", devToken(t, base, "alice@example.com"))
	if err != nil || !strings.Contains(out, "with a certificate for alice@example.com, logged at index") {
		t.Fatalf("signet sign-blob: %v\n%s", err, out)
	}
	runCosign("verify-blob", "--trusted-root", trustedRoot, "--bundle", bySignet,
		"--certificate-identity", "alice@example.com", "--certificate-oidc-issuer", issuer, blob)
	out, err = runCLI(t, "verify-blob", blob, "--bundle", bySignet, "--certificate-identity", "alice@example.com", "--certificate-oidc-issuer", issuer)
	if err != nil || !strings.Contains(out, "Verified OK: "+blob+" signed by alice@example.com (issuer "+issuer+") at ") {
		t.Fatalf("signet verify-blob: %v\n%s", err, out)
	}

	// A keyless signature with no trusted time (its log entry and
	// timestamp removed) cannot show it was made within the certificate's
	// 10 minutes: refused, as cosign does.
	var doc map[string]any
	raw, _ := os.ReadFile(bySignet)
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	vm := doc["verificationMaterial"].(map[string]any)
	delete(vm, "tlogEntries")
	delete(vm, "timestampVerificationData")
	untimed, _ := json.Marshal(doc)
	untimedPath := write("untimed.sigstore.json", string(untimed))
	if _, err := runCLI(t, "verify-blob", blob, "--bundle", untimedPath, "--certificate-identity", "alice@example.com", "--certificate-oidc-issuer", issuer); !errors.As(err, &ve) {
		t.Fatalf("a signature with no trusted time: %v, want exit 3", err)
	}

	// Keyless: cosign signs, signet verifies.
	byCosign := filepath.Join(dir, "by-cosign.sigstore.json")
	runCosign("sign-blob", "--yes", "--signing-config", signingConfig, "--trusted-root", trustedRoot,
		"--identity-token", devToken(t, base, "bob@example.com"), "--bundle", byCosign, blob)
	if out, err := runCLI(t, "verify-blob", blob, "--bundle", byCosign, "--certificate-identity", "bob@example.com", "--certificate-oidc-issuer", issuer, "--offline"); err != nil {
		t.Fatalf("signet verify-blob of cosign's bundle: %v\n%s", err, out)
	}

	// Refusals: exit 3 with the reason.
	for name, args := range map[string][]string{
		"another file":      {"verify-blob", other, "--bundle", bySignet, "--certificate-identity", "alice@example.com", "--certificate-oidc-issuer", issuer},
		"another identity":  {"verify-blob", blob, "--bundle", bySignet, "--certificate-identity", "mallory@example.com", "--certificate-oidc-issuer", issuer},
		"another issuer":    {"verify-blob", blob, "--bundle", bySignet, "--certificate-identity", "alice@example.com", "--certificate-oidc-issuer", "https://accounts.example.com"},
		"not a bundle":      {"verify-blob", blob, "--bundle", other, "--certificate-identity", "alice@example.com", "--certificate-oidc-issuer", issuer},
		"keyless as keyed":  {"verify-blob", blob, "--bundle", bySignet, "--key", write("stray.pub", "")},
		"identity required": {"verify-blob", blob, "--bundle", bySignet},
	} {
		_, err := runCLI(t, args...)
		switch name {
		case "keyless as keyed", "identity required":
			if err == nil || errors.As(err, &ve) {
				t.Errorf("%s: %v, want a usage error (exit 1)", name, err)
			}
		default:
			if !errors.As(err, &ve) {
				t.Errorf("%s: %v, want exit 3", name, err)
			}
		}
	}

	// With keys: each tool's key file signs, the other tool verifies.
	if _, err := runCLI(t, "generate-key-pair", "--output-key-prefix", filepath.Join(dir, "signet")); err != nil {
		t.Fatal(err)
	}
	keyed := filepath.Join(dir, "keyed-by-signet.sigstore.json")
	if out, err := runCLI(t, "sign-blob", blob, "--bundle", keyed, "--key", filepath.Join(dir, "signet.key"), "--yes"); err != nil || !strings.Contains(out, "with a key, logged at index") {
		t.Fatalf("signet sign-blob --key: %v\n%s", err, out)
	}
	runCosign("verify-blob", "--trusted-root", trustedRoot, "--bundle", keyed, "--key", "signet.pub", blob)
	if out, err := runCLI(t, "verify-blob", blob, "--bundle", keyed, "--key", filepath.Join(dir, "signet.pub")); err != nil || !strings.Contains(out, "signed by the given key") {
		t.Fatalf("signet verify-blob --key: %v\n%s", err, out)
	}
	runCosign("generate-key-pair", "--output-key-prefix", "cosign")
	keyedByCosign := filepath.Join(dir, "keyed-by-cosign.sigstore.json")
	runCosign("sign-blob", "--yes", "--signing-config", signingConfig, "--trusted-root", trustedRoot, "--key", "cosign.key", "--bundle", keyedByCosign, blob)
	if out, err := runCLI(t, "verify-blob", blob, "--bundle", keyedByCosign, "--key", filepath.Join(dir, "cosign.pub")); err != nil {
		t.Fatalf("signet verify-blob of cosign's key-signed bundle: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "verify-blob", blob, "--bundle", keyedByCosign, "--key", filepath.Join(dir, "signet.pub")); !errors.As(err, &ve) {
		t.Fatalf("verifying with the wrong key: %v, want exit 3", err)
	}
	// Each tool signs with the key file the other made.
	signetWithCosignKey := filepath.Join(dir, "signet-with-cosign-key.sigstore.json")
	if out, err := runCLI(t, "sign-blob", blob, "--bundle", signetWithCosignKey, "--key", filepath.Join(dir, "cosign.key"), "--yes"); err != nil {
		t.Fatalf("signet sign-blob with cosign's key file: %v\n%s", err, out)
	}
	runCosign("verify-blob", "--trusted-root", trustedRoot, "--bundle", signetWithCosignKey, "--key", "cosign.pub", blob)
	cosignWithSignetKey := filepath.Join(dir, "cosign-with-signet-key.sigstore.json")
	runCosign("sign-blob", "--yes", "--signing-config", signingConfig, "--trusted-root", trustedRoot, "--key", "signet.key", "--bundle", cosignWithSignetKey, blob)
	if out, err := runCLI(t, "verify-blob", blob, "--bundle", cosignWithSignetKey, "--key", filepath.Join(dir, "signet.pub")); err != nil {
		t.Fatalf("signet verify-blob of cosign signing with signet's key file: %v\n%s", err, out)
	}

	// A key that stays in a PKCS#11 token (SoftHSM2) signs; cosign verifies
	// with the public key signet reads from the token.
	tk := softhsmtest.Setup(t)
	uri := tk.URI("signet-cli")
	if _, err := keys.GeneratePKCS11Key(uri, elliptic.P256(), keys.Options{}); err != nil {
		t.Fatal(err)
	}
	hsmPub := filepath.Join(dir, "hsm.pub")
	if _, err := runCLI(t, "public-key", "--key", uri, "--outfile", hsmPub); err != nil {
		t.Fatalf("public-key of a PKCS#11 key: %v", err)
	}
	byToken := filepath.Join(dir, "by-token.sigstore.json")
	if out, err := runCLI(t, "sign-blob", blob, "--bundle", byToken, "--key", uri, "--yes"); err != nil {
		t.Fatalf("sign-blob with a PKCS#11 key: %v\n%s", err, out)
	}
	runCosign("verify-blob", "--trusted-root", trustedRoot, "--bundle", byToken, "--key", "hsm.pub", blob)
}

// Blob attestations go both ways with unmodified cosign, and a wrong
// predicate type or file exits 3.
func TestBlobAttestationsInteroperateWithCosign(t *testing.T) {
	x := newInterop(t)
	base, issuer, trustedRoot, signingConfig, dir, write := x.base, x.issuer, x.trustedRoot, x.signingConfig, x.dir, x.write
	blob := write("app.tar.gz", "release bits")
	other := write("other.tar.gz", "other bits")
	predicate := write("provenance.json", `{"buildDefinition":{"buildType":"https://example.com/build/v1","externalParameters":{}},"runDetails":{"builder":{"id":"https://example.com/builder"}}}`)
	runCosign := x.mustCosign
	var ve *verifyError

	bySignet := filepath.Join(dir, "by-signet.intoto.json")
	out, err := runCLI(t, "attest-blob", blob, "--predicate", predicate, "--type", "slsaprovenance1", "--bundle", bySignet, "--yes", "--identity-token", devToken(t, base, "alice@example.com"))
	if err != nil || !strings.Contains(out, "(attestation https://slsa.dev/provenance/v1) with a certificate for alice@example.com") {
		t.Fatalf("signet attest-blob: %v\n%s", err, out)
	}
	runCosign("verify-blob-attestation", "--trusted-root", trustedRoot, "--bundle", bySignet, "--type", "slsaprovenance1",
		"--certificate-identity", "alice@example.com", "--certificate-oidc-issuer", issuer, blob)
	if out, err := runCLI(t, "verify-blob-attestation", blob, "--bundle", bySignet, "--type", "slsaprovenance1", "--certificate-identity", "alice@example.com", "--certificate-oidc-issuer", issuer); err != nil || !strings.Contains(out, "Verified OK") {
		t.Fatalf("signet verify-blob-attestation: %v\n%s", err, out)
	}

	byCosign := filepath.Join(dir, "by-cosign.intoto.json")
	runCosign("attest-blob", "--yes", "--signing-config", signingConfig, "--trusted-root", trustedRoot, "--identity-token", devToken(t, base, "bob@example.com"),
		"--predicate", predicate, "--type", "custom", "--bundle", byCosign, blob)
	if out, err := runCLI(t, "verify-blob-attestation", blob, "--bundle", byCosign, "--certificate-identity", "bob@example.com", "--certificate-oidc-issuer", issuer); err != nil {
		t.Fatalf("signet verify-blob-attestation of cosign's custom attestation: %v\n%s", err, out)
	}

	plain := filepath.Join(dir, "plain.sigstore.json")
	if _, err := runCLI(t, "sign-blob", blob, "--bundle", plain, "--yes", "--identity-token", devToken(t, base, "alice@example.com")); err != nil {
		t.Fatal(err)
	}
	_, err = runCLI(t, "verify-blob-attestation", blob, "--bundle", plain, "--certificate-identity", "alice@example.com", "--certificate-oidc-issuer", issuer)
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), "holds a signature, not an attestation") {
		t.Fatalf("a plain signature as an attestation: %v", err)
	}
	for name, args := range map[string][]string{
		"another type":   {"verify-blob-attestation", blob, "--bundle", bySignet, "--type", "spdxjson", "--certificate-identity", "alice@example.com", "--certificate-oidc-issuer", issuer},
		"another file":   {"verify-blob-attestation", other, "--bundle", bySignet, "--type", "slsaprovenance1", "--certificate-identity", "alice@example.com", "--certificate-oidc-issuer", issuer},
		"custom as slsa": {"verify-blob-attestation", blob, "--bundle", byCosign, "--type", "slsaprovenance1", "--certificate-identity", "bob@example.com", "--certificate-oidc-issuer", issuer},
	} {
		if _, err := runCLI(t, args...); !errors.As(err, &ve) {
			t.Errorf("%s: %v, want exit 3", name, err)
		}
	}
	if _, err := runCLI(t, "attest-blob", blob, "--predicate", predicate, "--type", "no such type", "--bundle", filepath.Join(dir, "x.json"), "--yes"); err == nil || !strings.Contains(err.Error(), "neither one of custom") {
		t.Fatalf("unknown --type: %v", err)
	}
}

// The GitHub Actions claim flags check what the CA's github-actions preset
// (Fulcio's profile) puts in the certificate, as cosign's do.
func TestGitHubWorkflowClaims(t *testing.T) {
	idp := oidctest.New(t)
	x := newInterop(t, func(c *config.Config) {
		c.CA.Issuers = append(c.CA.Issuers, identity.IssuerConfig{URL: idp.URL, Type: identity.TypeCIProvider, CIProvider: "github-actions"})
	})
	dir := x.dir
	blob := filepath.Join(dir, "app.tar.gz")
	os.WriteFile(blob, []byte("built in CI"), 0o644) //nolint:errcheck
	bundlePath := filepath.Join(dir, "app.sigstore.json")
	token := idp.Token(t, map[string]any{
		"sub": "repo:octo/app:ref:refs/tags/v1", "job_workflow_ref": "octo/app/.github/workflows/release.yml@refs/tags/v1",
		"job_workflow_sha": "abc", "sha": "abc", "event_name": "push", "repository": "octo/app", "workflow": "release",
		"ref": "refs/tags/v1", "runner_environment": "github-hosted", "repository_id": "123", "repository_owner": "octo",
		"repository_owner_id": "9", "repository_visibility": "public", "workflow_ref": "octo/app/.github/workflows/release.yml@refs/tags/v1",
		"workflow_sha": "abc", "run_id": "42", "run_attempt": "1",
	})
	if out, err := runCLI(t, "sign-blob", blob, "--bundle", bundlePath, "--yes", "--identity-token", token); err != nil {
		t.Fatalf("sign-blob with a GitHub Actions token: %v\n%s", err, out)
	}
	policy := []string{"--bundle", bundlePath, "--certificate-identity-regexp", "^https://github.com/octo/app/", "--certificate-oidc-issuer", idp.URL,
		"--certificate-github-workflow-repository", "octo/app", "--certificate-github-workflow-ref", "refs/tags/v1",
		"--certificate-github-workflow-trigger", "push", "--certificate-github-workflow-sha", "abc", "--certificate-github-workflow-name", "release"}
	if out, err := runCLI(t, append([]string{"verify-blob", blob}, policy...)...); err != nil {
		t.Fatalf("verify-blob with the workflow's claims: %v\n%s", err, out)
	}
	x.mustCosign(append(append([]string{"verify-blob", "--trusted-root", x.trustedRoot}, policy...), blob)...)
	var ve *verifyError
	for flag, wrong := range map[string]string{
		"--certificate-github-workflow-repository": "octo/other", "--certificate-github-workflow-ref": "refs/heads/main",
		"--certificate-github-workflow-trigger": "pull_request", "--certificate-github-workflow-sha": "def", "--certificate-github-workflow-name": "nightly",
	} {
		args := []string{"verify-blob", blob, "--bundle", bundlePath, "--certificate-identity-regexp", "^https://github.com/octo/app/", "--certificate-oidc-issuer", idp.URL, flag, wrong}
		if _, err := runCLI(t, args...); !errors.As(err, &ve) {
			t.Errorf("%s %s: %v, want exit 3", flag, wrong, err)
		}
	}
}
