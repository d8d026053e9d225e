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
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	pb "github.com/sigstore/rekor-tiles/v2/pkg/generated/protobuf"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/signet-dev/signet/client"
	"github.com/signet-dev/signet/internal/db"
	"github.com/signet-dev/signet/internal/db/dbtest"
	"github.com/signet-dev/signet/internal/servertest"
	"github.com/signet-dev/signet/log/note"
	"github.com/signet-dev/signet/log/rekorapi/model"
)

func buildServer(t *testing.T) string {
	t.Helper()
	if _, err := db.FindBinDir(); err != nil {
		t.Skip(err)
	}
	return servertest.Build(t)
}

// startDev runs `signet-server dev` and returns it with its base URL.
func startDev(t *testing.T, bin, dataDir string) (*exec.Cmd, string) {
	t.Helper()
	cmd, base, _ := startDevWith(t, bin, dataDir)
	return cmd, base
}

// startDevWith runs `signet-server dev` on a free loopback port with extra
// flags (later ones win) and returns it with its base URL and banner. The
// environment's DATABASE_URL and SIGNET_* are left out: they would make dev
// use another database or refuse to start.
func startDevWith(t *testing.T, bin, dataDir string, extra ...string) (*exec.Cmd, string, string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"dev", "--listen", "127.0.0.1:0", "--data-dir", dataDir}, extra...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DATABASE_URL=") && !strings.HasPrefix(kv, "SIGNET_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	type banner struct{ base, text string }
	found := make(chan banner, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		re := regexp.MustCompile(`running \(dev mode\) at (https?://\S+)`)
		var b banner
		var text strings.Builder
		for sc.Scan() {
			text.WriteString(sc.Text() + "\n")
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				b.base = m[1]
			}
			if strings.HasPrefix(sc.Text(), "Press Ctrl-C") {
				b.text = text.String()
				found <- b
			}
		}
	}()
	select {
	case b := <-found:
		return cmd, b.base, b.text
	case <-time.After(90 * time.Second):
		cmd.Process.Kill()
		t.Fatal("dev server printed no banner within 90s")
	}
	return nil, "", ""
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
	assertHealthy(t, base)
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

// ackOf is the acknowledgement a 201 to a v1 append of the artifact with
// digest hash carries, and the checkpoint its proof is at.
func ackOf(resp *http.Response, body []byte, hash string) (acked, note.Checkpoint, error) {
	var le model.LogEntry
	if err := json.Unmarshal(body, &le); err != nil {
		return acked{}, note.Checkpoint{}, fmt.Errorf("201 with an unreadable body: %w", err)
	}
	id := resp.Header.Get("ETag")
	cp, err := note.ParseSigned(le[id].Verification.InclusionProof.Checkpoint)
	if err != nil {
		return acked{}, note.Checkpoint{}, fmt.Errorf("checkpoint of entry %s: %w", id, err)
	}
	return acked{id: id, hash: hash, index: le[id].LogIndex}, cp, nil
}

// Kill -9 in the middle of a load run loses nothing that was acknowledged:
// after a restart every 201 entry is at its index with a valid proof and is
// found by search, every checkpoint seen before is consistent with the new
// one, and nothing is duplicated. The Rekor v2 log takes half the load:
// each of its acknowledged entries, sent again, is answered 409 with the
// index it was acknowledged at.
func TestKillDashNineLosesNothingAcknowledged(t *testing.T) {
	bin := buildServer(t)
	dataDir := filepath.Join(t.TempDir(), "d")
	v2cfg := filepath.Join(t.TempDir(), "v2.yaml")
	os.WriteFile(v2cfg, []byte("log:\n  v2:\n    enabled: true\n"), 0o644) //nolint:errcheck
	cmd, base, _ := startDevWith(t, bin, dataDir, "--config", v2cfg)
	ctx := context.Background()

	var mu sync.Mutex
	var acks []acked
	var checkpoints []note.Checkpoint
	type ackedV2 struct {
		body  []byte
		index string
	}
	var acksV2 []ackedV2
	stopLoad := appendLoad(8, func(w, i int) {
		if w%2 == 1 {
			body := signedEntryV2(t, fmt.Sprintf("kill-9 v2 %d %d", w, i))
			resp, err := http.Post(base+"/api/v2/log/entries", "application/json", bytes.NewReader(body))
			if err != nil {
				return
			}
			out, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				return
			}
			var e struct {
				LogIndex string `json:"logIndex"`
			}
			if err := json.Unmarshal(out, &e); err != nil {
				t.Errorf("v2 201 with an unreadable body: %v", err)
				return
			}
			mu.Lock()
			acksV2 = append(acksV2, ackedV2{body: body, index: e.LogIndex})
			mu.Unlock()
			return
		}
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
		a, cp, err := ackOf(resp, body, hash)
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		acks = append(acks, a)
		checkpoints = append(checkpoints, cp)
		mu.Unlock()
	})
	time.Sleep(3 * time.Second)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait() //nolint:errcheck
	stopLoad()
	if len(acks) < 20 || len(acksV2) < 20 {
		t.Fatalf("only %d v1 and %d v2 appends acknowledged before the kill; the test needs load", len(acks), len(acksV2))
	}

	cmd, base, _ = startDevWith(t, bin, dataDir, "--config", v2cfg)
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
	for _, a := range acksV2 {
		resp, err := http.Post(base+"/api/v2/log/entries", "application/json", bytes.NewReader(a.body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusConflict || resp.Header.Get("X-Log-Index") != a.index {
			t.Fatalf("a v2 entry acknowledged at index %s, sent again after the restart: %d, index %q", a.index, resp.StatusCode, resp.Header.Get("X-Log-Index"))
		}
	}
	t.Logf("%d v1 and %d v2 appends acknowledged before kill -9; v1 tree size after restart %d", len(acks), len(acksV2), info.TreeSize)
}

// PostgreSQL killed under load (SIGKILL of the postmaster): requests in
// flight fail with 5xx (never hang, never a false 201), the server restarts
// PostgreSQL by itself and appends succeed again.
func TestDatabaseKilledUnderLoad(t *testing.T) {
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
		p, hash := signedEntry(fmt.Sprintf("pg-kill %d %d", w, i))
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
	pgDir := filepath.Join(dataDir, "postgres")
	killed, ok := livePostmaster(pgDir)
	if !ok {
		t.Fatal("no live postmaster under the dev data directory")
	}
	if err := syscall.Kill(killed, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	// Nobody but the server's supervisor starts it again.
	deadline := down.Add(3 * time.Minute)
	for {
		if pid, ok := livePostmaster(pgDir); ok && pid != killed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server did not restart PostgreSQL after its postmaster was killed")
		}
		time.Sleep(100 * time.Millisecond)
	}
	up := time.Now()
	createdSince := func(since time.Time) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, o := range outcomes {
			if o.status == http.StatusCreated && o.at.After(since) {
				n++
			}
		}
		return n
	}
	for createdSince(up.Add(time.Second)) == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
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
	t.Logf("%d requests failed while the database was down, %d created after the server restarted it", failedDuring, createdAfter)
}

// livePostmaster reads the PID in dataDir's postmaster.pid and reports
// whether that process exists.
func livePostmaster(dataDir string) (int, bool) {
	raw, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	first, _, _ := strings.Cut(string(raw), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, syscall.Kill(pid, 0) == nil
}

// runDev runs `signet-server dev` in this process with a context that is
// already cancelled: a refusal returns before anything starts, and a dev
// server that is not refused fails on the cancelled context at start-up
// instead of running, so a test of a refusal fails rather than hangs.
func runDev(t *testing.T, args ...string) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	root := newRootCommand()
	root.SetArgs(append([]string{"dev", "--data-dir", filepath.Join(t.TempDir(), "d")}, args...))
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	return root.ExecuteContext(ctx)
}

// clearConfigEnv empties the variables config.Load reads, so a case sees
// only what it sets.
func clearConfigEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k == "DATABASE_URL" || strings.HasPrefix(k, "SIGNET_") {
			t.Setenv(k, "")
		}
	}
}

// writeConfig writes yaml to a config file and returns the --config flag
// naming it (no flag for empty yaml).
func writeConfig(t *testing.T, yaml string) []string {
	t.Helper()
	if yaml == "" {
		return nil
	}
	path := filepath.Join(t.TempDir(), "signet.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"--config", path}
}

// dev refuses a configuration with production keys, issuers or database,
// whether from the file or the environment, and names each such setting.
func TestDevRefusesProductionConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		env  map[string]string
		want []string
	}{
		{name: "database.url in the file", yaml: "database:\n  url: postgres://signet@db.example.com/signet\n",
			want: []string{"database.url is set in "}},
		{name: "DATABASE_URL", env: map[string]string{"DATABASE_URL": "postgres://signet@db.example.com/signet"},
			want: []string{"database.url is set by the environment"}},
		{name: "SIGNET_DATABASE_URL", env: map[string]string{"SIGNET_DATABASE_URL": "postgres://signet@db.example.com/signet"},
			want: []string{"database.url is set by the environment"}},
		{name: "CA key and chain", yaml: "ca:\n  signer: file:///etc/signet/ca.pem\n  chain: /etc/signet/ca-chain.pem\n",
			want: []string{"ca.signer is set in ", "ca.chain is set in "}},
		{name: "real OIDC issuers", yaml: "ca:\n  issuers:\n    - url: https://accounts.google.com\n      type: email\n      client_id: sigstore\n",
			want: []string{"ca.issuers is set in "}},
		{name: "log key", yaml: "log:\n  signer: file:///etc/signet/log.pem\n", want: []string{"log.signer is set in "}},
		{name: "TSA key from the environment", env: map[string]string{"SIGNET_TSA_SIGNER": "file:///etc/signet/tsa.pem"},
			want: []string{"timestamp.signer is set by the environment"}},
		{name: "CT key", yaml: "ct:\n  signer: file:///etc/signet/ct.pem\n", want: []string{"ct.signer is set in "}},
		{name: "TUF keys", yaml: "tuf:\n  targets_signer: file:///etc/signet/targets.pem\n  timestamp_signer: file:///etc/signet/ts.pem\n",
			want: []string{"tuf.targets_signer is set in ", "tuf.timestamp_signer is set in "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearConfigEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			err := runDev(t, append(writeConfig(t, tc.yaml), "--listen", "127.0.0.1:0")...)
			if err == nil {
				t.Fatal("dev started with a production configuration")
			}
			for _, want := range append(tc.want, "refuses a production configuration", "signet-server run", "--allow-production-config") {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}

// dev refuses to be reachable from other machines: a listen address or
// public_url that is not loopback, from flags, file or environment.
func TestDevRefusesNonLoopbackAddress(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		yaml string
		env  map[string]string
		want string
	}{
		{name: "0.0.0.0", args: []string{"--listen", "0.0.0.0:0"}, want: "0.0.0.0 means every interface"},
		{name: "empty host", args: []string{"--listen", ":0"}, want: "empty host means every interface"},
		{name: "IPv6 any", args: []string{"--listen", "[::]:0"}, want: ":: means every interface"},
		{name: "LAN address", args: []string{"--listen", "192.0.2.7:0"}, want: "192.0.2.7 is not a loopback address"},
		{name: "host name", args: []string{"--listen", "signet.example.com:0"}, want: "name other than localhost"},
		{name: "SIGNET_LISTEN", env: map[string]string{"SIGNET_LISTEN": "0.0.0.0:8080"}, want: "listen on 0.0.0.0:8080"},
		{name: "listen in the file", yaml: "listen: 0.0.0.0:8080\n", want: "listen on 0.0.0.0:8080"},
		{name: "public_url in the file", args: []string{"--listen", "127.0.0.1:0"}, yaml: "public_url: https://signet.example.com\n",
			want: "public_url https://signet.example.com"},
		{name: "SIGNET_PUBLIC_URL", args: []string{"--listen", "127.0.0.1:0"}, env: map[string]string{"SIGNET_PUBLIC_URL": "http://10.1.2.3:8080"},
			want: "10.1.2.3 is not a loopback address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearConfigEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			err := runDev(t, append(writeConfig(t, tc.yaml), tc.args...)...)
			if err == nil {
				t.Fatal("dev started on a non-loopback address")
			}
			for _, want := range []string{tc.want, "--listen-anywhere", "certificates for any identity"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}

func TestLoopbackListen(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:8080", "127.1.2.3:0", "[::1]:0", "localhost:0", "LocalHost:9", "[::ffff:127.0.0.1]:0"} {
		if err := loopbackListen(addr); err != nil {
			t.Errorf("loopbackListen(%q) = %v, want loopback", addr, err)
		}
	}
	for _, addr := range []string{"0.0.0.0:8080", ":8080", "[::]:0", "10.0.0.1:0", "[2001:db8::1]:0", "example.com:0", "localhost.example.com:0", "8080", ""} {
		if err := loopbackListen(addr); err == nil {
			t.Errorf("loopbackListen(%q) accepted a non-loopback address", addr)
		}
	}
}

// With --allow-production-config dev starts with a production setting (here
// a database of its own) and says so in the banner.
func TestDevAllowProductionConfig(t *testing.T) {
	bin := buildServer(t)
	dataDir := filepath.Join(t.TempDir(), "d")
	args := writeConfig(t, "database:\n  url: "+dbtest.NewURL(t)+"\n")
	cmd, base, banner := startDevWith(t, bin, dataDir, append(args, "--allow-production-config")...)
	defer stopDev(t, cmd, dataDir)
	if want := "!!! WARNING: production settings in dev mode (--allow-production-config): database.url is set in "; !strings.Contains(banner, want) {
		t.Errorf("banner does not warn %q:\n%s", want, banner)
	}
	assertHealthy(t, base)
	if _, err := os.Stat(filepath.Join(dataDir, "postgres")); !os.IsNotExist(err) {
		t.Errorf("dev started a managed PostgreSQL instead of using database.url (%v)", err)
	}
}

// With --listen-anywhere dev listens on every interface and the banner
// warns that anyone who can reach it gets certificates.
func TestDevListenAnywhere(t *testing.T) {
	bin := buildServer(t)
	dataDir := filepath.Join(t.TempDir(), "d")
	cmd, base, banner := startDevWith(t, bin, dataDir, "--listen", "0.0.0.0:0", "--listen-anywhere")
	defer stopDev(t, cmd, dataDir)
	if want := "!!! WARNING: listening on 0.0.0.0:0 (--listen-anywhere): anyone who can reach this port can get certificates for any identity"; !strings.Contains(banner, want) {
		t.Errorf("banner does not warn %q:\n%s", want, banner)
	}
	// Go names a dual-stack listener on every interface [::].
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsUnspecified() {
		t.Fatalf("base URL %s: not listening on every interface", base)
	}
	assertHealthy(t, "http://"+net.JoinHostPort("127.0.0.1", u.Port()))
}

// The default data directory, ./.signet, is relative: dev mode starts on
// it, and starts again on what it made.
func TestDevRelativeDataDir(t *testing.T) {
	bin := buildServer(t)
	t.Chdir(t.TempDir())
	for range 2 {
		cmd, base, _ := startDevWith(t, bin, "./.signet")
		assertHealthy(t, base)
		stopDev(t, cmd, "./.signet")
	}
	if _, err := os.Stat(filepath.Join(".signet", "keys", "ca-chain.pem")); err != nil {
		t.Fatal(err)
	}
}

func assertHealthy(t *testing.T, base string) {
	t.Helper()
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "ok" {
		t.Fatalf("/healthz = %d %q", resp.StatusCode, body)
	}
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

// signedEntryV2 is a Rekor v2 CreateEntryRequest for a fresh key.
func signedEntryV2(t *testing.T, label string) []byte {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	digest := sha256.Sum256([]byte(fmt.Sprintf("%s %d", label, time.Now().UnixNano())))
	sig, _ := ecdsa.SignASN1(rand.Reader, key, digest[:])
	body, err := protojson.Marshal(&pb.CreateEntryRequest{Spec: &pb.CreateEntryRequest_HashedRekordRequestV002{HashedRekordRequestV002: &pb.HashedRekordRequestV002{
		Digest: digest[:],
		Signature: &pb.Signature{Content: sig, Verifier: &pb.Verifier{
			Verifier:   &pb.Verifier_PublicKey{PublicKey: &pb.PublicKey{RawBytes: der}},
			KeyDetails: protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256,
		}},
	}}})
	if err != nil {
		t.Error(err)
	}
	return body
}

// The metrics listener serves Go's profiles only when metrics.pprof asks.
func TestMetricsListenerServesProfilesOnlyWhenAsked(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "metrics here\n") }) //nolint:errcheck
	for _, withPprof := range []bool{false, true} {
		srv := httptest.NewServer(newMetricsServer(metrics, withPprof).Handler)
		get := func(path string) (int, string) {
			t.Helper()
			resp, err := http.Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(body)
		}
		if code, body := get("/metrics"); code != 200 || body != "metrics here\n" {
			t.Errorf("pprof %v: /metrics = %d %q", withPprof, code, body)
		}
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/pprof/cmdline"} {
			code, body := get(path)
			if withPprof && (code != 200 || body == "") || !withPprof && code != 404 {
				t.Errorf("pprof %v: %s = %d (%d bytes)", withPprof, path, code, len(body))
			}
		}
		if code, body := get("/debug/pprof/goroutine?debug=1"); withPprof && !strings.Contains(body, "goroutine profile") {
			t.Errorf("the goroutine profile reads %d %.80q", code, body)
		}
		srv.Close()
	}
}
