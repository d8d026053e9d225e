package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signet-dev/signet/internal/db/dbtest"
)

func TestMain(m *testing.M) {
	// No test reads or writes the user's real pinned instance.
	dir, err := os.MkdirTemp("", "signet-config")
	if err != nil {
		panic(err)
	}
	os.Setenv("SIGNET_CONFIG_DIR", dir) //nolint:errcheck
	dbtest.Main(m)
}

func devServer(t *testing.T) string {
	t.Helper()
	base, _ := startDevAt(t, "127.0.0.1:0", dbtest.NewURL(t), t.TempDir())
	return base
}

// runCLI runs signet with args and returns what it wrote to stdout.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := execCLI(&out, io.Discard, args...)
	return out.String(), err
}

// execCLI runs signet's root command with args.
func execCLI(stdout, stderr io.Writer, args ...string) error {
	cmd := newRootCommand(stdout, stderr)
	cmd.SetArgs(args)
	return cmd.Execute()
}

func TestTimestampRequestAndVerify(t *testing.T) {
	base := devServer(t)
	dir := t.TempDir()
	artifact := filepath.Join(dir, "release.tar.gz")
	os.WriteFile(artifact, []byte("release bits"), 0o644) //nolint:errcheck
	tsr := filepath.Join(dir, "release.tsr")
	out, err := runCLI(t, "--server", base, "timestamp", "request", "--artifact", artifact, "--out", tsr, "--hash", "sha384")
	if err != nil || !strings.Contains(out, "timestamped at") {
		t.Fatalf("request: %v %s", err, out)
	}
	resp, _ := http.Get(base + "/api/v1/timestamp/certchain")
	chainPEM, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	chain := filepath.Join(dir, "chain.pem")
	os.WriteFile(chain, chainPEM, 0o644) //nolint:errcheck

	out, err = runCLI(t, "timestamp", "verify", "--artifact", artifact, "--tsr", tsr, "--chain", chain, "-o", "json")
	var res map[string]any
	if err != nil || json.Unmarshal([]byte(out), &res) != nil || res["verified"] != true {
		t.Fatalf("verify: %v %s", err, out)
	}
	other := filepath.Join(dir, "other")
	os.WriteFile(other, []byte("tampered bits"), 0o644) //nolint:errcheck
	_, err = runCLI(t, "timestamp", "verify", "--artifact", other, "--tsr", tsr, "--chain", chain)
	var ve *verifyError
	if !errors.As(err, &ve) {
		t.Fatalf("verifying another file: %v, want a verification failure (exit 3)", err)
	}
	if _, err := runCLI(t, "timestamp", "request", "--artifact", artifact); err == nil || !strings.Contains(err.Error(), `"out" not set`) {
		t.Fatalf("missing --out: %v", err)
	}
	if _, err := runCLI(t, "--server", base, "timestamp", "request", "--artifact", artifact, "--out", tsr, "--hash", "md5"); err == nil || !strings.Contains(err.Error(), "sha256, sha384 or sha512") {
		t.Fatalf("bad hash: %v", err)
	}
}

func TestLogCommands(t *testing.T) {
	base := devServer(t)
	dir := t.TempDir()
	path := func(n string) string { return filepath.Join(dir, n) }
	must := func(args ...string) string {
		t.Helper()
		out, err := runCLI(t, append([]string{"--server", base}, args...)...)
		if err != nil {
			t.Fatalf("signet %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	// A signature made with openssl, as an operator would.
	for _, c := range [][]string{
		{"ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", path("key.pem")},
		{"ec", "-in", path("key.pem"), "-pubout", "-out", path("pub.pem")},
	} {
		if out, err := exec.Command("openssl", c...).CombinedOutput(); err != nil {
			t.Fatalf("openssl: %v %s", err, out)
		}
	}
	os.WriteFile(path("release.tar.gz"), []byte("release bits for the log"), 0o644) //nolint:errcheck
	if out, err := exec.Command("openssl", "dgst", "-sha256", "-sign", path("key.pem"), "-out", path("release.sig"), path("release.tar.gz")).CombinedOutput(); err != nil {
		t.Fatalf("openssl dgst: %v %s", err, out)
	}
	resp, _ := http.Get(base + "/api/v1/log/publicKey")
	logKey, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	os.WriteFile(path("log.pub"), logKey, 0o644) //nolint:errcheck

	state := path("state.json")
	if out := must("log", "info", "--state", state); !strings.Contains(out, "first time this log is seen") {
		t.Fatalf("first info: %s", out)
	}
	out := must("log", "upload", "--artifact", path("release.tar.gz"), "--signature", path("release.sig"), "--public-key", path("pub.pem"), "--log-key", path("log.pub"))
	if !strings.Contains(out, "logged") || !strings.Contains(out, "Index:           0") {
		t.Fatalf("upload: %s", out)
	}
	if out := must("log", "upload", "--artifact", path("release.tar.gz"), "--signature", path("release.sig"), "--public-key", path("pub.pem")); !strings.Contains(out, "already in the log") {
		t.Fatalf("second upload: %s", out)
	}
	entryJSON := must("log", "get", "--log-index", "0", "--output", "json")
	os.WriteFile(path("entry.json"), []byte(entryJSON), 0o644) //nolint:errcheck
	if out := must("log", "verify", "--entry", path("entry.json"), "--log-key", path("log.pub")); !strings.Contains(out, "OK: entry") {
		t.Fatalf("verify: %s", out)
	}
	tampered := strings.Replace(entryJSON, `"integratedTime":`, `"integratedTime":1`, 1)
	os.WriteFile(path("tampered.json"), []byte(tampered), 0o644) //nolint:errcheck
	if _, err := runCLI(t, "log", "verify", "--entry", path("tampered.json"), "--log-key", path("log.pub")); err == nil {
		t.Fatal("a tampered entry verified")
	} else if _, ok := err.(*verifyError); !ok {
		t.Fatalf("tampered entry: %v, want a verification failure (exit 3)", err)
	}
	var le map[string]json.RawMessage
	json.Unmarshal([]byte(entryJSON), &le) //nolint:errcheck
	var uuid string
	for k := range le {
		uuid = k
	}
	if out := must("log", "get", "--uuid", uuid); !strings.Contains(out, "hashedrekord 0.0.1") {
		t.Fatalf("get by uuid: %s", out)
	}
	sum := sha256.Sum256([]byte("release bits for the log"))
	if out := must("log", "search", "--sha", hex.EncodeToString(sum[:])); strings.TrimSpace(out) != uuid {
		t.Fatalf("search by sha: %q, want %s", out, uuid)
	}
	if out := must("log", "search", "--public-key", path("pub.pem"), "--sha", hex.EncodeToString(sum[:]), "--operator", "and"); strings.TrimSpace(out) != uuid {
		t.Fatalf("search by key and sha: %q", out)
	}
	if out := must("log", "info", "--state", state); !strings.Contains(out, "consistent with the checkpoint of size 0") {
		t.Fatalf("second info: %s", out)
	}
	// A forged state (another root at the same size) is reported as a fork.
	data, _ := os.ReadFile(state)
	var st map[string]map[string]map[string]any
	json.Unmarshal(data, &st) //nolint:errcheck
	for _, v := range st["logs"] {
		v["root_hash"] = strings.Repeat("ab", 32)
	}
	data, _ = json.Marshal(st)
	os.WriteFile(state, data, 0o600) //nolint:errcheck
	if _, err := runCLI(t, "--server", base, "log", "info", "--state", state); err == nil || !strings.Contains(err.Error(), "forked") {
		t.Fatalf("forged state: %v", err)
	}
	_, err := runCLI(t, "--server", base, "log", "consistency", "--from", "1", "--from-root", strings.Repeat("00", 32))
	var ve *verifyError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), strings.Repeat("00", 32)) || strings.Contains(err.Error(), "[") {
		t.Fatalf("consistency against a wrong old root: %v, want exit 3 with both roots in hex", err)
	}
}

// What a new user ran into: group commands that accepted any word, a
// server URL without a scheme, a refused connection reported as "does
// not verify", a failed proof printed as Go byte slices.
func TestCLIContract(t *testing.T) {
	var ve *verifyError
	_, err := runCLI(t, "log", "uplaod")
	if err == nil || errors.As(err, &ve) || !strings.Contains(err.Error(), `unknown command "uplaod" for "signet log"`) || !strings.Contains(err.Error(), `did you mean "upload"`) {
		t.Fatalf("signet log uplaod: %v", err)
	}
	if out, err := runCLI(t, "timestamp"); err != nil || !strings.Contains(out, "signet timestamp request --artifact") {
		t.Fatalf("signet timestamp alone: %v, help %q", err, out)
	}
	if _, err := runCLI(t, "--server", "localhost:8080", "log", "info"); err == nil || !strings.Contains(err.Error(), `did you mean https://localhost:8080?`) {
		t.Fatalf("--server without a scheme: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	for _, args := range [][]string{{"log", "info"}, {"log", "get", "--log-index", "0"}, {"log", "consistency", "--from", "1", "--from-root", strings.Repeat("00", 32)}} {
		_, err := runCLI(t, append([]string{"--server", closed}, args...)...)
		if err == nil || errors.As(err, &ve) || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("%v against a closed port: %v, want exit 1 (could not run), not 3", args, err)
		}
	}
}
