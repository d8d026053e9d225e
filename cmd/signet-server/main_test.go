package main

import (
	"bufio"
	"context"
	"crypto"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/signet-dev/signet/client"
	"github.com/signet-dev/signet/internal/db"
)

// The dev-mode contract of ARCHITECTURE.md, on the real binary: managed
// PostgreSQL under the data directory, /healthz, generated keys kept across
// restarts, SIGTERM stopping everything including PostgreSQL.
func TestDevModeContract(t *testing.T) {
	if _, err := db.FindBinDir(); err != nil {
		t.Skip(err)
	}
	bin := filepath.Join(t.TempDir(), "signet-server")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dataDir := filepath.Join(t.TempDir(), "d")

	start := func() (*exec.Cmd, string) {
		cmd := exec.Command(bin, "dev", "--listen", "127.0.0.1:0", "--data-dir", dataDir)
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		found := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(stdout)
			re := regexp.MustCompile(`running \(dev mode\) at (http://\S+)`)
			for sc.Scan() {
				if m := re.FindStringSubmatch(sc.Text()); m != nil {
					found <- m[1]
				}
			}
		}()
		select {
		case base := <-found:
			return cmd, base
		case <-time.After(90 * time.Second):
			cmd.Process.Kill()
			t.Fatal("dev server printed no banner within 90s")
		}
		return nil, ""
	}
	stop := func(cmd *exec.Cmd) {
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("dev server exited with %v after SIGTERM", err)
			}
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			t.Fatal("dev server did not stop within 60s of SIGTERM")
		}
		if _, err := os.Stat(filepath.Join(dataDir, "postgres", "postmaster.pid")); !os.IsNotExist(err) {
			t.Fatalf("PostgreSQL still running after SIGTERM (postmaster.pid: %v)", err)
		}
	}

	cmd, base := start()
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "ok" {
		t.Fatalf("/healthz = %d %q", resp.StatusCode, body)
	}
	lc := client.NewLog(base)
	info1, _, err := lc.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	key1, _ := lc.PublicKey(context.Background())
	if _, err := os.Stat(filepath.Join(dataDir, "keys", "log.pem")); err != nil {
		t.Fatalf("dev key not kept in the data directory: %v", err)
	}
	stop(cmd)

	cmd, base = start()
	defer stop(cmd)
	lc = client.NewLog(base)
	info2, _, err := lc.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	key2, _ := lc.PublicKey(context.Background())
	if info2.TreeID != info1.TreeID {
		t.Fatalf("tree changed across restart: %s then %s", info1.TreeID, info2.TreeID)
	}
	if !key2.(interface{ Equal(crypto.PublicKey) bool }).Equal(key1) {
		t.Fatal("dev log key changed across restart")
	}
}
