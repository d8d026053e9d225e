package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/internal/db/dbtest"
	"github.com/signet-dev/signet/internal/server"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func devServer(t *testing.T) string {
	t.Helper()
	hs := httptest.NewUnstartedServer(nil)
	cfg := config.Defaults()
	cfg.Hostname = "signet.test"
	cfg.Database.URL = dbtest.NewURL(t)
	cfg.DataDir = t.TempDir()
	cfg.PublicURL = "http://" + hs.Listener.Addr().String()
	srv, err := server.New(context.Background(), cfg, server.Options{Dev: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	hs.Config.Handler = srv.Handler()
	hs.Start()
	t.Cleanup(func() { hs.Close(); srv.Close(context.Background()) })
	return hs.URL
}

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRootCommand(&out, &errOut)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
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
