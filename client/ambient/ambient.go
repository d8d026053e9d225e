// Package ambient finds the OIDC identity token a CI job or a workload
// already has, so keyless signing there needs no token passed by hand. The
// sources are cosign's (its providers), tried in this fixed order, and a
// token says where it came from:
//
//  1. SIGSTORE_ID_TOKEN (GitLab CI's id_tokens, or set by hand): a JWT, or
//     the path of a file holding one
//  2. GitHub Actions: the job's token endpoint (ACTIONS_ID_TOKEN_REQUEST_URL
//     and _TOKEN, with `permissions: id-token: write`)
//  3. Buildkite: the agent's API (BUILDKITE_AGENT_ACCESS_TOKEN, BUILDKITE_JOB_ID,
//     BUILDKITE_AGENT_ENDPOINT)
//  4. a token file at /var/run/sigstore/cosign/oidc-token: a Kubernetes
//     projected service-account token, or a SPIFFE JWT-SVID written by
//     spiffe-helper, mounted where cosign looks for one
package ambient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/signet-dev/signet/internal/loopback"
)

// DefaultTokenFile is where a mounted token is looked for (cosign's path).
const DefaultTokenFile = "/var/run/sigstore/cosign/oidc-token"

// maxResponse bounds what a token endpoint may send.
const maxResponse = 64 << 10

// ErrNone is no ambient token anywhere.
var ErrNone = errors.New("no ambient identity token: not in GitHub Actions or Buildkite, SIGSTORE_ID_TOKEN unset, no token file")

// Token is an identity token and where it came from.
type Token struct {
	Source string
	Value  string
}

// Env is what the sources read; the zero value reads the process's.
type Env struct {
	Getenv    func(string) string
	HTTP      *http.Client
	TokenFile string
}

// Find returns the first token a source has, for audience (Sigstore's is
// "sigstore"). A source that is present but fails is an error naming it,
// not a reason to try the next: a CI job meant to sign as itself must not
// sign as something else.
func Find(ctx context.Context, e Env, audience string) (Token, error) {
	if e.Getenv == nil {
		e.Getenv = os.Getenv
	}
	if e.HTTP == nil {
		e.HTTP = http.DefaultClient
	}
	if e.TokenFile == "" {
		e.TokenFile = DefaultTokenFile
	}
	if v := strings.TrimSpace(e.Getenv("SIGSTORE_ID_TOKEN")); v != "" {
		if strings.Count(v, ".") == 2 {
			return Token{Source: "SIGSTORE_ID_TOKEN", Value: v}, nil
		}
		tok, err := readTokenFile(v)
		if err != nil {
			return Token{}, fmt.Errorf("SIGSTORE_ID_TOKEN is neither a JWT nor a readable token file: %w", err)
		}
		return Token{Source: "SIGSTORE_ID_TOKEN (file " + v + ")", Value: tok}, nil
	}
	u, t := e.Getenv("ACTIONS_ID_TOKEN_REQUEST_URL"), e.Getenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
	if e.Getenv("GITHUB_ACTIONS") == "true" && (u == "" || t == "") {
		// Not a reason to try the next source: the job would sign as
		// whatever else the runner has (a pod's service account).
		return Token{}, errors.New("running in GitHub Actions without an OIDC token (ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN): give the job permissions: id-token: write, or pass --identity-token")
	}
	if u != "" && t != "" {
		v, err := gitHub(ctx, e.HTTP, u, t, audience)
		if err != nil {
			return Token{}, fmt.Errorf("GitHub Actions identity token: %w (does the job have permissions: id-token: write?)", err)
		}
		return Token{Source: "GitHub Actions", Value: v}, nil
	}
	if t := e.Getenv("BUILDKITE_AGENT_ACCESS_TOKEN"); t != "" {
		endpoint := e.Getenv("BUILDKITE_AGENT_ENDPOINT")
		if endpoint == "" {
			endpoint = "https://agent.buildkite.com/v3"
		}
		v, err := buildkite(ctx, e.HTTP, endpoint, t, e.Getenv("BUILDKITE_JOB_ID"), audience)
		if err != nil {
			return Token{}, fmt.Errorf("Buildkite identity token: %w", err)
		}
		return Token{Source: "Buildkite", Value: v}, nil
	}
	v, err := readTokenFile(e.TokenFile)
	switch {
	case err == nil:
		return Token{Source: "token file " + e.TokenFile, Value: v}, nil
	case !errors.Is(err, os.ErrNotExist):
		return Token{}, fmt.Errorf("token file: %w", err)
	}
	return Token{}, ErrNone
}

// readTokenFile reads a token file: bounded, trimmed, not empty.
func readTokenFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxResponse+1))
	switch {
	case err != nil:
		return "", err
	case len(data) > maxResponse:
		return "", fmt.Errorf("%s is larger than %d bytes: not a token", path, maxResponse)
	}
	v := strings.TrimSpace(string(data))
	if v == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return v, nil
}

// gitHub asks the job's token endpoint: GET <url>&audience=A with the
// request token as bearer; the answer is {"value": JWT}.
func gitHub(ctx context.Context, client *http.Client, requestURL, requestToken, audience string) (string, error) {
	if err := loopback.RequireTLS("ACTIONS_ID_TOKEN_REQUEST_URL", requestURL); err != nil {
		return "", err
	}
	u, err := url.Parse(requestURL)
	if err != nil {
		return "", fmt.Errorf("ACTIONS_ID_TOKEN_REQUEST_URL: %w", err)
	}
	q := u.Query()
	q.Set("audience", audience)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "bearer "+requestToken)
	var out struct {
		Value string `json:"value"`
	}
	if err := call(client, req, &out); err != nil {
		return "", err
	}
	if out.Value == "" {
		return "", errors.New(`the token endpoint's answer has no "value"`)
	}
	return out.Value, nil
}

// buildkite asks the agent API: POST <endpoint>/jobs/<job>/oidc/tokens
// {"audience": A} with the agent's token; the answer is {"token": JWT}.
func buildkite(ctx context.Context, client *http.Client, endpoint, agentToken, job, audience string) (string, error) {
	if job == "" {
		return "", errors.New("BUILDKITE_JOB_ID is not set")
	}
	if err := loopback.RequireTLS("BUILDKITE_AGENT_ENDPOINT", endpoint); err != nil {
		return "", err
	}
	body, _ := json.Marshal(map[string]string{"audience": audience})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(endpoint, "/")+"/jobs/"+url.PathEscape(job)+"/oidc/tokens", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Token "+agentToken)
	req.Header.Set("Content-Type", "application/json")
	var out struct {
		Token string `json:"token"`
	}
	if err := call(client, req, &out); err != nil {
		return "", err
	}
	if out.Token == "" {
		return "", errors.New(`the agent's answer has no "token"`)
	}
	return out.Token, nil
}

func call(client *http.Client, req *http.Request, out any) error {
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	switch {
	case err != nil:
		return err
	case len(data) > maxResponse:
		return fmt.Errorf("the token endpoint sent more than %d bytes", maxResponse)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("the token endpoint answered %s: %s", resp.Status, bytes.TrimSpace(data[:min(len(data), 200)]))
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("the token endpoint's answer: %w", err)
	}
	return nil
}
