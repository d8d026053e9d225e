package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/signet-dev/signet/internal/browsertest"
	"github.com/signet-dev/signet/internal/cosigntest"
	"github.com/signet-dev/signet/internal/syncbuf"
)

// startCLI runs a command in the background, its stderr readable as it
// runs (where an interactive login prints what the user must do).
func startCLI(t *testing.T, args ...string) (*syncbuf.Buffer, <-chan cliResult) {
	t.Helper()
	var stderr syncbuf.Buffer
	done := make(chan cliResult, 1)
	go func() {
		var out bytes.Buffer
		err := execCLI(&out, &stderr, args...)
		done <- cliResult{out.String(), err}
	}()
	return &stderr, done
}

type cliResult struct {
	out string
	err error
}

// waitFor is the first submatch of re in what buf has printed, waiting up
// to 30 s for it.
func waitFor(t *testing.T, buf *syncbuf.Buffer, re *regexp.Regexp) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(buf.String()); m != nil {
			return m[1]
		}
	}
	t.Fatalf("nothing matching %v was printed:\n%s", re, buf.String())
	return ""
}

// withoutAmbientIdentity unsets what client/ambient would find first, so a
// test run inside a CI job still reaches the interactive login.
func withoutAmbientIdentity(t *testing.T) {
	for _, k := range []string{"SIGSTORE_ID_TOKEN", "GITHUB_ACTIONS", "ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "BUILDKITE_AGENT_ACCESS_TOKEN"} {
		t.Setenv(k, "")
	}
	for _, k := range []string{"SSH_CONNECTION", "SSH_TTY"} {
		t.Setenv(k, "")
	}
}

var (
	browserURL = regexp.MustCompile(`visit:\n\n  (\S+)\n`)
	deviceURL  = regexp.MustCompile(`visit\n\n  (\S+)\n\nand confirm the code`)
)

// Keyless signing with nobody's token: signet logs in with the dev issuer
// the pinned signing config names, in Chromium (the browser flow, the code
// coming back to signet's loopback listener) or with a code approved on
// the issuer's page (the device flow), and the bundle carries the identity
// typed into the form.
func TestInteractiveLogin(t *testing.T) {
	withoutAmbientIdentity(t)
	x := newPinned(t)
	browser := browsertest.New(t)
	// signet runs $BROWSER with the URL; `true` leaves the opening to the
	// test, which drives Chromium itself.
	t.Setenv("BROWSER", "true")
	blob := x.write("app.tar.gz", "signed after an interactive login")
	for _, tc := range []struct {
		flow, email string
		url         *regexp.Regexp
		page        string // what the browser shows at the end
	}{
		{"browser", "erin@example.com", browserURL, "You can close this tab"},
		{"device", "frank@example.com", deviceURL, "Signed in as frank@example.com"},
	} {
		t.Run(tc.flow, func(t *testing.T) {
			bundle := filepath.Join(x.dir, tc.flow+".sigstore.json")
			stderr, done := startCLI(t, "sign-blob", blob, "--bundle", bundle, "--yes", "--oidc-flow", tc.flow)
			browsertest.SignIn(t, browser, waitFor(t, stderr, tc.url), tc.email, tc.page)
			r := <-done
			if r.err != nil || !strings.Contains(r.out, "with a certificate for "+tc.email) {
				t.Fatalf("sign-blob: %v\n%s\n%s", r.err, r.out, stderr.String())
			}
			if !strings.Contains(stderr.String(), "Signed in with "+x.issuer) {
				t.Fatalf("stderr does not say where the identity came from:\n%s", stderr.String())
			}
			if out, err := runCLI(t, "verify-blob", blob, "--bundle", bundle, "--certificate-identity", tc.email, "--certificate-oidc-issuer", x.issuer); err != nil {
				t.Fatalf("verify-blob: %v\n%s", err, out)
			}
		})
	}

	// An image, as cosign sign would: the same login, the signature in the registry.
	t.Run("image", func(t *testing.T) {
		image := pushRandomImage(t, startRegistry(t, "referrers API"), "app:v1")
		stderr, done := startCLI(t, "sign", image, "--allow-http-registry", "--yes", "--oidc-flow", "device")
		browsertest.SignIn(t, browser, waitFor(t, stderr, deviceURL), "judy@example.com", "Signed in as judy@example.com")
		if r := <-done; r.err != nil {
			t.Fatalf("sign: %v\n%s", r.err, stderr.String())
		}
		if out, err := runCLI(t, "verify", image, "--allow-http-registry", "--certificate-identity", "judy@example.com", "--certificate-oidc-issuer", x.issuer); err != nil {
			t.Fatalf("verify: %v\n%s", err, out)
		}
	})

	// Denied in the browser: the program stops at once, saying so.
	t.Run("denied", func(t *testing.T) {
		stderr, done := startCLI(t, "sign-blob", blob, "--bundle", filepath.Join(x.dir, "denied.sigstore.json"), "--yes", "--oidc-flow", "browser")
		browsertest.Deny(t, browser, waitFor(t, stderr, browserURL), "Sign-in failed")
		if r := <-done; r.err == nil || !strings.Contains(r.err.Error(), "access_denied") {
			t.Fatalf("after a denial: %v", r.err)
		}
	})

	// Off a terminal, with no token and no --oidc-flow, nothing waits for
	// a person who is not there.
	if _, err := runCLI(t, "sign-blob", blob, "--bundle", filepath.Join(x.dir, "none.sigstore.json"), "--yes"); err == nil ||
		!strings.Contains(err.Error(), "off a terminal no login is started unless asked for with --oidc-flow browser|device") {
		t.Fatalf("off a terminal: %v", err)
	}
	if _, err := runCLI(t, "sign-blob", blob, "--bundle", filepath.Join(x.dir, "none.sigstore.json"), "--yes", "--oidc-flow", "carrier-pigeon"); err == nil ||
		!strings.Contains(err.Error(), `--oidc-flow "carrier-pigeon": use auto, browser or device`) {
		t.Fatalf("an unknown flow: %v", err)
	}
	if _, err := runCLI(t, "sign-blob", blob, "--bundle", filepath.Join(x.dir, "none.sigstore.json"), "--yes", "--oidc-flow", "device", "--oidc-issuer", "http://issuer.example.com"); err == nil ||
		!strings.Contains(err.Error(), "is not https") {
		t.Fatalf("a cleartext issuer: %v", err)
	}
}

// Unmodified cosign logs in against the dev issuer (the signing config
// names it) in its three ways: the browser flow (xdg-open is a stand-in
// on PATH that hands the URL to the test's Chromium), the same flow with
// no browser to open (cosign prints the URL and reads the code the
// issuer's page shows), and the device flow. signet verifies each bundle.
func TestCosignInteractiveLogin(t *testing.T) {
	cosign := cosigntest.Binary(t)
	x := newPinned(t)
	browser := browsertest.New(t)
	blob := x.write("app.tar.gz", "signed by cosign after an interactive login")
	opener := t.TempDir()
	opened := filepath.Join(opener, "opened-url")
	if err := os.WriteFile(filepath.Join(opener, "xdg-open"), []byte("#!/bin/sh\nprintf '%s' \"$1\" > "+opened+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	openedURL := func(*syncbuf.Buffer) string {
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if u, err := os.ReadFile(opened); err == nil && len(u) > 0 {
				return string(u)
			}
		}
		t.Fatal("cosign did not open a browser")
		return ""
	}
	for _, tc := range []struct {
		name, flow, path, email, page string
		url                           func(out *syncbuf.Buffer) string
	}{
		{"browser", "normal", opener + ":" + os.Getenv("PATH"), "grace@example.com", "authentication successful", openedURL},
		{"no browser", "normal", t.TempDir(), "ivan@example.com", "Paste this code", func(out *syncbuf.Buffer) string {
			return waitFor(t, out, regexp.MustCompile(`Go to the following link in a browser:\s+(\S+)`))
		}},
		{"device, an image", "device", os.Getenv("PATH"), "heidi@example.com", "Signed in as heidi@example.com", func(out *syncbuf.Buffer) string {
			return waitFor(t, out, regexp.MustCompile(`Enter the verification code \S+ in your browser at: (\S+)`))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bundle := filepath.Join(x.dir, strings.ReplaceAll(tc.name, " ", "-")+".sigstore.json")
			args := []string{"sign-blob", "--bundle", bundle, blob}
			image := ""
			if strings.HasSuffix(tc.name, "an image") {
				image = pushRandomImage(t, startRegistry(t, "referrers API"), "app:v1")
				args = []string{"sign", "--allow-http-registry", image}
			}
			c := exec.Command(cosign, append([]string{args[0], "--yes", "--signing-config", x.signingConfig, "--trusted-root", x.trustedRoot,
				"--oidc-disable-ambient-providers", "--fulcio-auth-flow", tc.flow}, args[1:]...)...)
			c.Dir = x.dir
			c.Env = append(os.Environ(), "HOME="+x.dir, "TUF_ROOT="+filepath.Join(x.dir, "tuf-cache"), "PATH="+tc.path)
			var out syncbuf.Buffer
			c.Stdout, c.Stderr = &out, &out
			stdin, err := c.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- c.Wait() }()
			text := browsertest.SignIn(t, browser, tc.url(&out), tc.email, tc.page)
			if tc.name == "no browser" {
				code := regexp.MustCompile(`[A-Z2-7]{26}`).FindString(text)
				if code == "" {
					t.Fatalf("no code on the page:\n%s", text)
				}
				stdin.Write([]byte(code + "\n")) //nolint:errcheck
			}
			stdin.Close()
			if err := <-done; err != nil {
				t.Fatalf("cosign sign-blob --fulcio-auth-flow %s: %v\n%s", tc.flow, err, out.String())
			}
			verify := []string{"verify-blob", blob, "--bundle", bundle}
			if image != "" {
				verify = []string{"verify", image, "--allow-http-registry"}
			}
			out2, err := runCLI(t, append(verify, "--certificate-identity", tc.email, "--certificate-oidc-issuer", x.issuer)...)
			if err != nil || !strings.Contains(out2, "Verified OK") {
				t.Fatalf("signet %s of cosign's signature: %v\n%s", verify[0], err, out2)
			}
		})
	}
}
