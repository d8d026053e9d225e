package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signet-dev/signet/internal/db/dbtest"
)

// In a GitHub Actions job, keyless signing finds the job's identity token
// by itself and says where it came from.
func TestSignBlobWithGitHubActionsToken(t *testing.T) {
	withoutPasswordEnv(t)
	base, _ := startDevAt(t, "127.0.0.1:0", dbtest.NewURL(t), t.TempDir())
	cfgDir := t.TempDir()
	if out, err := runCLI(t, "--config-dir", cfgDir, "--server", base, "init", "--root-sha256", rootSHA(t, base)); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	t.Setenv("SIGNET_CONFIG_DIR", cfgDir)
	// A fake of the job's token endpoint, which exists only inside a GitHub
	// Actions runner: it answers as GitHub documents, with a token of the
	// dev issuer, and only to the request token and audience sigstore.
	token := devToken(t, base, "ci@example.com")
	gh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "bearer job-request-token" || r.URL.Query().Get("audience") != "sigstore" {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"value": token}) //nolint:errcheck
	}))
	defer gh.Close()
	t.Setenv("SIGSTORE_ID_TOKEN", "")
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_URL", gh.URL+"/token?api-version=2.0")
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "job-request-token")

	dir := t.TempDir()
	blob := filepath.Join(dir, "release.tar.gz")
	os.WriteFile(blob, []byte("built in CI"), 0o644) //nolint:errcheck
	var out, errOut bytes.Buffer
	if err := execCLI(&out, &errOut, "sign-blob", blob, "--bundle", blob+".sigstore.json", "--yes"); err != nil || !strings.Contains(out.String(), "with a certificate for ci@example.com") {
		t.Fatalf("sign-blob in a GitHub Actions job: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	if !strings.Contains(errOut.String(), "Using the identity token from GitHub Actions.") {
		t.Errorf("stderr does not name the token's source:\n%s", errOut.String())
	}

	// Without id-token permission the endpoint refuses: an error naming
	// GitHub Actions, not a fall-back to another identity.
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "wrong")
	if _, err := runCLI(t, "sign-blob", blob, "--bundle", blob+".2.sigstore.json", "--yes"); err == nil || !strings.Contains(err.Error(), "GitHub Actions identity token") || !strings.Contains(err.Error(), "id-token: write") {
		t.Fatalf("a refused GitHub token request: %v", err)
	}
}
