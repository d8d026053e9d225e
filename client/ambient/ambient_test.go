package ambient

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeCI stands in for the token endpoints of GitHub Actions and the
// Buildkite agent, which exist only inside those CI systems: it answers as
// they document, and only to the right credentials and audience.
func fakeCI(t *testing.T) *httptest.Server {
	t.Helper()
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/github/token":
			if r.Header.Get("Authorization") != "bearer gh-request-token" || r.URL.Query().Get("audience") != "sigstore" || r.URL.Query().Get("api-version") != "2.0" {
				http.Error(w, "bad GitHub request", http.StatusForbidden)
				return
			}
			json.NewEncoder(w).Encode(map[string]string{"value": "github.jwt.token"}) //nolint:errcheck
		case r.URL.Path == "/v3/jobs/job-7/oidc/tokens" && r.Method == http.MethodPost:
			var body struct{ Audience string }
			json.NewDecoder(r.Body).Decode(&body) //nolint:errcheck
			if r.Header.Get("Authorization") != "Token bk-agent-token" || body.Audience != "sigstore" {
				http.Error(w, "bad Buildkite request", http.StatusForbidden)
				return
			}
			json.NewEncoder(w).Encode(map[string]string{"token": "buildkite.jwt.token"}) //nolint:errcheck
		default:
			http.NotFound(w, r)
		}
	}))
}

func TestFind(t *testing.T) {
	ci := fakeCI(t)
	defer ci.Close()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "oidc-token")
	os.WriteFile(tokenFile, []byte("file.jwt.token\n"), 0o600) //nolint:errcheck
	github := map[string]string{"ACTIONS_ID_TOKEN_REQUEST_URL": ci.URL + "/github/token?api-version=2.0", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "gh-request-token"}
	buildkite := map[string]string{"BUILDKITE_AGENT_ACCESS_TOKEN": "bk-agent-token", "BUILDKITE_JOB_ID": "job-7", "BUILDKITE_AGENT_ENDPOINT": ci.URL + "/v3"}
	merge := func(ms ...map[string]string) map[string]string {
		out := map[string]string{}
		for _, m := range ms {
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	}
	cases := []struct {
		name       string
		env        map[string]string
		file       string
		source     string
		value, err string
	}{
		{"SIGSTORE_ID_TOKEN first", merge(github, map[string]string{"SIGSTORE_ID_TOKEN": "env.jwt.token"}), tokenFile, "SIGSTORE_ID_TOKEN", "env.jwt.token", ""},
		{"GitHub Actions", merge(github, buildkite), tokenFile, "GitHub Actions", "github.jwt.token", ""},
		{"Buildkite", buildkite, tokenFile, "Buildkite", "buildkite.jwt.token", ""},
		{"token file", nil, tokenFile, "token file " + tokenFile, "file.jwt.token", ""},
		{"nothing", nil, filepath.Join(dir, "absent"), "", "", "no ambient identity token"},
		{"GitHub refusing", merge(github, map[string]string{"ACTIONS_ID_TOKEN_REQUEST_TOKEN": "wrong"}), tokenFile, "", "", "GitHub Actions identity token: the token endpoint answered 403 Forbidden: bad GitHub request (does the job have permissions: id-token: write?)"},
		{"SIGSTORE_ID_TOKEN naming a file", map[string]string{"SIGSTORE_ID_TOKEN": tokenFile}, "", "SIGSTORE_ID_TOKEN (file " + tokenFile + ")", "file.jwt.token", ""},
		{"GitHub Actions without id-token permission", map[string]string{"GITHUB_ACTIONS": "true"}, tokenFile, "", "", "running in GitHub Actions without an OIDC token"},
		{"GitHub endpoint over plain HTTP", map[string]string{"ACTIONS_ID_TOKEN_REQUEST_URL": "http://token.example.com/x?a=1", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "t"}, tokenFile, "", "", "is not https"},
		{"Buildkite without a job", map[string]string{"BUILDKITE_AGENT_ACCESS_TOKEN": "bk-agent-token", "BUILDKITE_AGENT_ENDPOINT": ci.URL + "/v3"}, tokenFile, "", "", "BUILDKITE_JOB_ID is not set"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok, err := Find(context.Background(), Env{Getenv: func(k string) string { return c.env[k] }, TokenFile: c.file}, "sigstore")
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("Find = %+v, %v; want an error containing %q", tok, err, c.err)
				}
				return
			}
			if err != nil || tok.Source != c.source || tok.Value != c.value {
				t.Fatalf("Find = %+v, %v; want %s from %s", tok, err, c.value, c.source)
			}
		})
	}
}
