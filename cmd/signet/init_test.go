package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func rootSHA(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/tuf/1.root.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

func TestInitPinsTheInstanceThroughTUF(t *testing.T) {
	base := devServer(t)
	dir := t.TempDir()

	// A wrong fingerprint pins nothing.
	_, err := runCLI(t, "--config-dir", dir, "--server", base, "init", "--root-sha256", strings.Repeat("0", 64))
	var ve *verifyError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), "nothing was pinned") {
		t.Fatalf("init with a wrong root digest: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("a refused init wrote %d files", len(entries))
	}
	if _, err := runCLI(t, "--config-dir", dir, "--server", base, "init"); err == nil || !strings.Contains(err.Error(), "no instance is pinned in "+dir+" yet") {
		t.Fatalf("init without a root of trust and nothing pinned: %v", err)
	}

	out, err := runCLI(t, "--config-dir", dir, "--server", base, "init", "--root-sha256", rootSHA(t, base))
	if err != nil || !strings.Contains(out, "Pinned "+base) || !strings.Contains(out, "1 log(s), 1 CA(s), 1 CT log(s), 1 TSA(s)") {
		t.Fatalf("init: %v\n%s", err, out)
	}
	for file, path := range map[string]string{trustedRootFile: "/api/v1/trust/trusted_root.json", signingConfigFile: "/api/v1/trust/signing_config.json"} {
		got, _ := os.ReadFile(filepath.Join(dir, file))
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(got) == 0 || string(got) != string(want) {
			t.Errorf("pinned %s differs from %s", file, path)
		}
	}

	// signet init alone refreshes the pinned instance, from the root pinned
	// first, and --server's help then names the pinned instance.
	os.Remove(filepath.Join(dir, signingConfigFile)) //nolint:errcheck
	if out, err := runCLI(t, "--config-dir", dir, "init"); err != nil || !strings.Contains(out, "Pinned "+base) {
		t.Fatalf("init refresh: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, signingConfigFile)); err != nil {
		t.Fatalf("the refresh did not fetch the signing config again: %v", err)
	}
	t.Setenv("SIGNET_CONFIG_DIR", dir)
	if def := newRootCommand(io.Discard, io.Discard).PersistentFlags().Lookup("server").DefValue; def != base {
		t.Fatalf("--server defaults to %q in help, want the pinned %q", def, base)
	}
	if _, err := runCLI(t, "--config-dir", dir, "--server", "http://elsewhere.example", "init"); err == nil || !strings.Contains(err.Error(), "is not the pinned instance") {
		t.Fatalf("refreshing another server: %v", err)
	}
	pinned, _ := os.ReadFile(filepath.Join(dir, tufRootFile))
	os.WriteFile(filepath.Join(dir, tufRootFile), append(pinned, ' '), 0o644) //nolint:errcheck
	if _, err := runCLI(t, "--config-dir", dir, "init"); !errors.As(err, &ve) || !strings.Contains(err.Error(), "it was changed") {
		t.Fatalf("refresh from a modified pinned root: %v", err)
	}
	os.WriteFile(filepath.Join(dir, tufRootFile), pinned, 0o644) //nolint:errcheck

	// A root.json from the operator works the same way.
	resp, err := http.Get(base + "/tuf/1.root.json")
	if err != nil {
		t.Fatal(err)
	}
	rootJSON, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	rootFile := filepath.Join(t.TempDir(), "root.json")
	os.WriteFile(rootFile, rootJSON, 0o644) //nolint:errcheck
	if out, err := runCLI(t, "--config-dir", t.TempDir(), "--server", base, "init", "--root", rootFile); err != nil || !strings.Contains(out, "Pinned") {
		t.Fatalf("init --root: %v\n%s", err, out)
	}

	// Later commands default to the pinned server and its log key.
	out, err = runCLI(t, "--config-dir", dir, "--output", "json", "log", "info", "--state", filepath.Join(dir, "state.json"))
	if err != nil {
		t.Fatalf("log info against the pinned instance: %v", err)
	}
	var info map[string]any
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("log info output %q: %v", out, err)
	}

	// Timestamps verify against the pinned TSA chain without --chain.
	artifact := filepath.Join(dir, "a.txt")
	os.WriteFile(artifact, []byte("pinned"), 0o644) //nolint:errcheck
	tsr := filepath.Join(dir, "a.tsr")
	if out, err := runCLI(t, "--config-dir", dir, "timestamp", "request", "--artifact", artifact, "--out", tsr); err != nil {
		t.Fatalf("timestamp request: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "--config-dir", dir, "timestamp", "verify", "--artifact", artifact, "--tsr", tsr); err != nil || !strings.Contains(out, "OK:") {
		t.Fatalf("timestamp verify with the pinned chain: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "--config-dir", t.TempDir(), "--server", base, "timestamp", "verify", "--artifact", artifact, "--tsr", tsr); err == nil || !strings.Contains(err.Error(), "--chain is required") {
		t.Fatalf("verify with nothing pinned: %v", err)
	}

	// The pinned key is really used: pinning another instance's trust
	// material for this server makes the checkpoint fail to verify.
	other := devServer(t)
	otherDir := t.TempDir()
	if out, err := runCLI(t, "--config-dir", otherDir, "--server", other, "init", "--root-sha256", rootSHA(t, other)); err != nil {
		t.Fatalf("init other: %v\n%s", err, out)
	}
	foreign, _ := os.ReadFile(filepath.Join(otherDir, trustedRootFile))
	os.WriteFile(filepath.Join(dir, trustedRootFile), foreign, 0o644) //nolint:errcheck
	if _, err := runCLI(t, "--config-dir", dir, "log", "info", "--state", filepath.Join(dir, "state2.json")); !errors.As(err, &ve) || !strings.Contains(err.Error(), "signed by key") {
		t.Fatalf("log info with a foreign pinned key: %v", err)
	}
	if _, err := runCLI(t, "--config-dir", dir, "timestamp", "verify", "--artifact", artifact, "--tsr", tsr); !errors.As(err, &ve) {
		t.Fatalf("timestamp verify against a foreign pinned TSA: %v", err)
	}
}
