package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signet-dev/signet/client"
	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/internal/db/dbtest"
	"github.com/signet-dev/signet/internal/keys"
	"github.com/signet-dev/signet/internal/server"
)

// startDevAt runs a dev server on addr over dataDir and dbURL, so a test can
// restart "the same instance"; mutate adjusts its configuration.
func startDevAt(t *testing.T, addr, dbURL, dataDir string, mutate ...func(*config.Config)) (base string, stop func()) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.Hostname, cfg.Database.URL, cfg.DataDir = "signet.test", dbURL, dataDir
	cfg.PublicURL = "http://" + l.Addr().String()
	for _, m := range mutate {
		m(&cfg)
	}
	srv, err := server.New(context.Background(), cfg, server.Options{Dev: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	hs := &httptest.Server{Listener: l, Config: &http.Server{Handler: srv.Handler()}}
	hs.Start()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			hs.Close()
			srv.Close(context.Background())
		}
	}
	t.Cleanup(stop)
	return hs.URL, stop
}

func uploadSigned(t *testing.T, base string, artifact string) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	uploadWith(t, base, k, artifact)
}

// uploadWith logs a hashedrekord entry of artifact signed by k.
func uploadWith(t *testing.T, base string, k *ecdsa.PrivateKey, artifact string) {
	t.Helper()
	digest := sha256.Sum256([]byte(artifact))
	sig, _ := ecdsa.SignASN1(rand.Reader, k, digest[:])
	der, _ := x509.MarshalPKIXPublicKey(k.Public())
	p, err := client.HashedRekord("sha256", digest[:], sig, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.NewLog(base).Upload(context.Background(), p); err != nil {
		t.Fatal(err)
	}
}

// An auditor's `signet log info` follows a log key rotation: the tree it
// watched is now frozen, and its final checkpoint must extend what was seen.
func TestLogInfoFollowsAKeyRotation(t *testing.T) {
	dbURL, dataDir := dbtest.NewURL(t), t.TempDir()
	base, stop := startDevAt(t, "127.0.0.1:0", dbURL, dataDir)
	addr := strings.TrimPrefix(base, "http://")
	state := filepath.Join(t.TempDir(), "state.json")
	info := func() string {
		t.Helper()
		out, err := runCLI(t, "--server", base, "log", "info", "--state", state)
		if err != nil {
			t.Fatalf("signet log info: %v\n%s", err, out)
		}
		return out
	}
	uploadSigned(t, base, "one")
	if out := info(); !strings.Contains(out, "first time this log is seen") {
		t.Fatalf("first info: %s", out)
	}
	uploadSigned(t, base, "two")
	stop()

	keyPath := filepath.Join(dataDir, "keys", "log.pem")
	os.Remove(keyPath) //nolint:errcheck
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err := keys.WriteFile(keyPath, k, nil); err != nil {
		t.Fatal(err)
	}
	startDevAt(t, addr, dbURL, dataDir)
	uploadSigned(t, base, "three")

	out := info()
	if !strings.Contains(out, "was frozen by a key rotation at size 2: consistent with the checkpoint of size 1") {
		t.Fatalf("info after the rotation does not prove the frozen tree: %s", out)
	}
	var st logState
	data, _ := os.ReadFile(state)
	if err := json.Unmarshal(data, &st); err != nil || len(st.Logs) != 2 {
		t.Fatalf("state after rotation: %s %v", data, err)
	}
	if out := info(); strings.Contains(out, "frozen") || !strings.Contains(out, "unchanged since") {
		t.Fatalf("the frozen tree was proved again: %s", out)
	}
	// Entries of either tree are fetched and verified with their tree's key.
	for _, idx := range []string{"0", "2"} {
		if out, err := runCLI(t, "--server", base, "log", "get", "--log-index", idx); err != nil {
			t.Fatalf("signet log get --log-index %s after rotation: %v\n%s", idx, err, out)
		}
	}
}
