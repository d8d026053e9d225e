package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/signet-dev/signet/client"
	"github.com/signet-dev/signet/internal/db"
	"github.com/signet-dev/signet/log/note"
	"github.com/signet-dev/signet/log/rekorapi/model"
)

func buildServer(t *testing.T) string {
	t.Helper()
	if _, err := db.FindBinDir(); err != nil {
		t.Skip(err)
	}
	bin := filepath.Join(t.TempDir(), "signet-server")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startDev runs `signet-server dev` and returns it with its base URL.
func startDev(t *testing.T, bin, dataDir string) (*exec.Cmd, string) {
	t.Helper()
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

// stopDev sends SIGTERM and checks that PostgreSQL went down with the server.
func stopDev(t *testing.T, cmd *exec.Cmd, dataDir string) {
	t.Helper()
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

// The dev-mode contract of ARCHITECTURE.md, on the real binary: managed
// PostgreSQL under the data directory, /healthz, generated keys kept across
// restarts, SIGTERM stopping everything including PostgreSQL.
func TestDevModeContract(t *testing.T) {
	bin := buildServer(t)
	dataDir := filepath.Join(t.TempDir(), "d")
	cmd, base := startDev(t, bin, dataDir)
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
	tufRoot1, _ := os.ReadFile(filepath.Join(dataDir, "tuf-root.json"))
	for _, f := range []string{"keys/log.pem", "keys/ca-chain.pem", "keys/tsa-chain.pem", "keys/ct.pem", "trusted_root.json", "signing_config.json", "keys/tuf-root.pem", "tuf-root.json"} {
		if _, err := os.Stat(filepath.Join(dataDir, f)); err != nil {
			t.Fatalf("dev mode did not keep %s in the data directory: %v", f, err)
		}
	}
	stopDev(t, cmd, dataDir)

	cmd, base = startDev(t, bin, dataDir)
	defer stopDev(t, cmd, dataDir)
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
	// A restart keeps the TUF root, so clients bootstrapped from the first
	// root.json keep working; the new port changed the URLs in the signing
	// config, so targets moved on to version 2.
	if tufRoot2, _ := os.ReadFile(filepath.Join(dataDir, "tuf-root.json")); len(tufRoot1) == 0 || string(tufRoot2) != string(tufRoot1) {
		t.Fatal("TUF root.json changed across restart")
	}
	for path, want := range map[string]int{"/tuf/2.targets.json": 200, "/tuf/2.root.json": 404} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("after restart GET %s = %d, want %d", path, resp.StatusCode, want)
		}
	}
}

// appendLoad runs workers that each call post(w, i) for i = 0, 1, ... until
// the returned stop is called; stop waits for them to finish.
func appendLoad(workers int, post func(w, i int)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				post(w, i)
			}
		}(w)
	}
	return func() { close(done); wg.Wait() }
}

type acked struct {
	id, hash string
	index    int64
}

// Kill -9 in the middle of a load run loses nothing that was acknowledged:
// after a restart every 201 entry is at its index with a valid proof and is
// found by search, every checkpoint seen before is consistent with the new
// one, and nothing is duplicated.
func TestKillDashNineLosesNothingAcknowledged(t *testing.T) {
	bin := buildServer(t)
	dataDir := filepath.Join(t.TempDir(), "d")
	cmd, base := startDev(t, bin, dataDir)
	ctx := context.Background()

	var mu sync.Mutex
	var acks []acked
	var checkpoints []note.Checkpoint
	stopLoad := appendLoad(8, func(w, i int) {
		p, hash := signedEntry(fmt.Sprintf("kill-9 %d %d", w, i))
		resp, err := http.Post(base+"/api/v1/log/entries", "application/json", bytes.NewReader(p))
		if err != nil {
			return // the server died under us: not acknowledged
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return
		}
		var le model.LogEntry
		if err := json.Unmarshal(body, &le); err != nil {
			t.Errorf("201 with an unreadable body: %v", err)
			return
		}
		id := resp.Header.Get("ETag")
		cp, err := note.Parse(strings.SplitN(le[id].Verification.InclusionProof.Checkpoint, "\n\n", 2)[0] + "\n")
		if err != nil {
			t.Errorf("checkpoint: %v", err)
			return
		}
		mu.Lock()
		acks = append(acks, acked{id: id, hash: hash, index: le[id].LogIndex})
		checkpoints = append(checkpoints, cp)
		mu.Unlock()
	})
	time.Sleep(3 * time.Second)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait() //nolint:errcheck
	stopLoad()
	if len(acks) < 20 {
		t.Fatalf("only %d appends acknowledged before the kill; the test needs load", len(acks))
	}

	cmd, base = startDev(t, bin, dataDir)
	defer stopDev(t, cmd, dataDir)
	lc := client.NewLog(base)
	info, latest, err := lc.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for _, a := range acks {
		e, err := lc.GetByIndex(ctx, a.index) // verifies proof, checkpoint and SET
		if err != nil {
			t.Fatalf("acknowledged entry %s at index %d after the restart: %v", a.id, a.index, err)
		}
		if e.ID != a.id {
			t.Fatalf("index %d holds %s, acknowledged as %s", a.index, e.ID, a.id)
		}
		if seen[a.index] {
			t.Fatalf("index %d acknowledged twice", a.index)
		}
		seen[a.index] = true
		ids, err := lc.Search(ctx, model.SearchIndex{Hash: a.hash})
		if err != nil || len(ids) != 1 || ids[0] != a.id {
			t.Fatalf("search for acknowledged entry %s after the restart: %v %v", a.id, ids, err)
		}
	}
	for _, cp := range checkpoints {
		if err := lc.Consistency(ctx, cp.Size, latest.Size, cp.RootHash, latest.RootHash); err != nil {
			t.Fatalf("checkpoint of size %d from before the kill is not consistent with size %d: %v", cp.Size, latest.Size, err)
		}
	}
	if info.TreeSize < int64(len(acks)) {
		t.Fatalf("tree size %d is smaller than the %d acknowledged entries", info.TreeSize, len(acks))
	}
	t.Logf("%d appends acknowledged before kill -9; tree size after restart %d", len(acks), info.TreeSize)
}

// PostgreSQL restarting under load: requests in flight fail with 5xx (never
// hang, never a false 201), and the server recovers by itself once the
// database is back.
func TestDatabaseRestartUnderLoad(t *testing.T) {
	bin := buildServer(t)
	dataDir := filepath.Join(t.TempDir(), "d")
	cmd, base := startDev(t, bin, dataDir)
	defer stopDev(t, cmd, dataDir)
	ctx := context.Background()
	httpClient := &http.Client{Timeout: 60 * time.Second}

	type outcome struct {
		status int
		took   time.Duration
		at     time.Time
	}
	var mu sync.Mutex
	var outcomes []outcome
	var acks []acked
	stopLoad := appendLoad(4, func(w, i int) {
		p, hash := signedEntry(fmt.Sprintf("pg-restart %d %d", w, i))
		start := time.Now()
		resp, err := httpClient.Post(base+"/api/v1/log/entries", "application/json", bytes.NewReader(p))
		o := outcome{status: -1, took: time.Since(start), at: time.Now()}
		if err == nil {
			io.Copy(io.Discard, resp.Body) //nolint:errcheck
			resp.Body.Close()
			o.status = resp.StatusCode
		}
		mu.Lock()
		outcomes = append(outcomes, o)
		if o.status == http.StatusCreated {
			acks = append(acks, acked{id: resp.Header.Get("ETag"), hash: hash})
		}
		mu.Unlock()
		if o.status != http.StatusCreated {
			time.Sleep(50 * time.Millisecond)
		}
	})
	time.Sleep(time.Second)
	// Adopt the server's PostgreSQL and stop it, then start it again.
	cluster, err := db.StartCluster(ctx, filepath.Join(dataDir, "postgres"), discardLogger(), db.ClusterOptions{SharedBuffersMB: 128})
	if err != nil {
		t.Fatal(err)
	}
	if err := cluster.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	time.Sleep(2 * time.Second)
	if _, err := db.StartCluster(ctx, filepath.Join(dataDir, "postgres"), discardLogger(), db.ClusterOptions{SharedBuffersMB: 128}); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	time.Sleep(4 * time.Second)
	stopLoad()

	var failedDuring, createdAfter int
	for _, o := range outcomes {
		if o.took > 35*time.Second {
			t.Fatalf("a request took %s: requests must fail fast, not hang", o.took)
		}
		switch {
		case o.status >= 500 && o.at.After(down) && o.at.Before(up.Add(time.Second)):
			failedDuring++
		case o.status == http.StatusCreated && o.at.After(up.Add(time.Second)):
			createdAfter++
		case o.status != http.StatusCreated && o.status < 500:
			t.Fatalf("unexpected status %d", o.status)
		}
	}
	if failedDuring == 0 {
		t.Fatal("no request failed while PostgreSQL was down")
	}
	if createdAfter == 0 {
		t.Fatal("the server did not recover after PostgreSQL came back")
	}
	lc := client.NewLog(base)
	for _, a := range acks {
		if _, err := lc.GetByUUID(ctx, a.id); err != nil {
			t.Fatalf("acknowledged entry %s is missing: %v", a.id, err)
		}
	}
	t.Logf("%d requests failed while the database was down, %d created after it returned", failedDuring, createdAfter)
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// signedEntry is a hashedrekord proposal over a unique artifact, signed by
// its own P-256 key, and the artifact's hex digest.
func signedEntry(label string) ([]byte, string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	digest := sha256.Sum256([]byte(fmt.Sprintf("%s %d", label, time.Now().UnixNano())))
	sig, _ := ecdsa.SignASN1(rand.Reader, key, digest[:])
	p, _ := client.HashedRekord("sha256", digest[:], sig, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	return p, hex.EncodeToString(digest[:])
}
