package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-dev/signet/ca/devoidc"
	"github.com/signet-dev/signet/internal/db/dbtest"
	"github.com/signet-dev/signet/internal/keys"

	"github.com/signet-dev/signet/internal/syncbuf"
)

// monitorLines runs signet monitor once and returns its JSON lines.
func monitorLines(t *testing.T, server string, args ...string) ([]map[string]any, error) {
	t.Helper()
	out, err := runCLI(t, append([]string{"--server", server, "monitor", "--once"}, args...)...)
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if jerr := json.Unmarshal([]byte(l), &m); jerr != nil {
			t.Fatalf("monitor printed %q: %v", l, jerr)
		}
		lines = append(lines, m)
	}
	return lines, err
}

// signet monitor follows the log from its state: entries signed by a
// watched identity are reported once, others never; the same matches come
// through tiles and, where a server has none, through the API; a log whose
// history differs from what was seen, or a tampered entry, is an alert and
// exit 3.
func TestMonitor(t *testing.T) {
	withoutPasswordEnv(t)
	base, _ := startDevAt(t, "127.0.0.1:0", dbtest.NewURL(t), t.TempDir())
	cfgDir := t.TempDir()
	if out, err := runCLI(t, "--config-dir", cfgDir, "--server", base, "init", "--root-sha256", rootSHA(t, base)); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	t.Setenv("SIGNET_CONFIG_DIR", cfgDir)
	dir := t.TempDir()
	sign := func(email, content string) {
		t.Helper()
		blob := filepath.Join(dir, content)
		os.WriteFile(blob, []byte(content), 0o644) //nolint:errcheck
		if out, err := runCLI(t, "sign-blob", blob, "--bundle", blob+".sigstore.json", "--yes", "--identity-token", devToken(t, base, email)); err != nil {
			t.Fatalf("sign-blob as %s: %v\n%s", email, err, out)
		}
	}
	sign("alice@example.com", "one")
	sign("bob@example.com", "two")
	sign("Alice@Example.com", "three")

	// The CT log holds the precertificates of the same three signings, once
	// it has integrated them (SCTs are promised within the merge delay).
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var sth struct {
			TreeSize int `json:"tree_size"`
		}
		if resp, err := http.Get(base + "/ct/v1/get-sth"); err == nil {
			json.NewDecoder(resp.Body).Decode(&sth) //nolint:errcheck
			resp.Body.Close()
		}
		if sth.TreeSize >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the CT log has %d entries after 20 s", sth.TreeSize)
		}
	}
	ctWatch := filepath.Join(dir, "ct-watch.yaml")
	os.WriteFile(ctWatch, []byte("emails: [bob@example.com]\n"), 0o600) //nolint:errcheck
	ctLines, err := monitorLines(t, base, "--log", "ct", "--watch", ctWatch, "--state", filepath.Join(dir, "ct-state.json"))
	if err != nil || len(ctLines) != 1 || ctLines[0]["kind"] != "precert" || ctLines[0]["log_index"] != float64(1) {
		t.Fatalf("following the CT log: %v %v", err, ctLines)
	}
	if signers := ctLines[0]["signers"].([]any); signers[0].(map[string]any)["oidc_issuer"] != base+devoidc.Path {
		t.Errorf("CT match signer %v", signers)
	}
	if again, err := monitorLines(t, base, "--log", "ct", "--watch", ctWatch, "--state", filepath.Join(dir, "ct-state.json")); err != nil || len(again) != 0 {
		t.Fatalf("the CT log followed again: %v %v", err, again)
	}

	watch := filepath.Join(dir, "watch.yaml")
	os.WriteFile(watch, []byte("emails: [alice@example.com]\noidc_issuers: [https://nobody.example.com]\n"), 0o600) //nolint:errcheck
	state := filepath.Join(dir, "state.json")
	lines, err := monitorLines(t, base, "--watch", watch, "--state", state)
	if err != nil || len(lines) != 2 {
		t.Fatalf("first pass: %v, %d lines: %v", err, len(lines), lines)
	}
	for i, want := range []float64{0, 2} {
		signers := lines[i]["signers"].([]any)
		emails := signers[0].(map[string]any)["emails"].([]any)
		if lines[i]["log_index"] != want || lines[i]["kind"] != "hashedrekord" || !strings.EqualFold(emails[0].(string), "alice@example.com") ||
			signers[0].(map[string]any)["oidc_issuer"] != base+devoidc.Path {
			t.Errorf("match %d: %v", i, lines[i])
		}
	}
	// Resumed from the state: nothing new, nothing printed; a new entry once.
	if lines, err := monitorLines(t, base, "--watch", watch, "--state", state); err != nil || len(lines) != 0 {
		t.Fatalf("second pass: %v %v", err, lines)
	}
	sign("alice@example.com", "four")
	sign("carol@example.com", "five")
	if lines, err := monitorLines(t, base, "--watch", watch, "--state", state); err != nil || len(lines) != 1 || lines[0]["log_index"] != float64(3) {
		t.Fatalf("after two more entries: %v %v", err, lines)
	}

	// A server without tiles: not followed (exit 1, no alert); the API alone
	// cannot prove an entry is in the checked tree.
	target, _ := url.Parse(base)
	noTiles := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/tiles/") {
			http.NotFound(w, r)
			return
		}
		httputil.NewSingleHostReverseProxy(target).ServeHTTP(w, r)
	}))
	defer noTiles.Close()
	var ve *verifyError
	if _, err := monitorLines(t, noTiles.URL, "--watch", watch, "--state", filepath.Join(dir, "api-state.json")); err == nil || errors.As(err, &ve) || !strings.Contains(err.Error(), "serves no tiles") {
		t.Fatalf("a server without tiles: %v", err)
	}

	// A tampered entry bundle: the entry is not the tree's leaf.
	tampering := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.Path, "/tile/entries/") {
			httputil.NewSingleHostReverseProxy(target).ServeHTTP(w, r)
			return
		}
		resp, err := http.Get(base + r.URL.Path)
		if err != nil {
			t.Error(err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		w.Write(bytes.Replace(body, []byte(`"hashedrekord"`), []byte(`"hashedrekorD"`), 1)) //nolint:errcheck
	}))
	defer tampering.Close()
	lines, err = monitorLines(t, tampering.URL, "--watch", watch, "--state", filepath.Join(dir, "tampered.json"))
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), "entry 0") || len(lines) != 1 || lines[0]["alert"] != "log_not_consistent" {
		t.Fatalf("tampered bundle: %v %v", err, lines)
	}

	// A history other than the one seen: the state's root no longer fits.
	raw, _ := os.ReadFile(state)
	var st logState
	json.Unmarshal(raw, &st) //nolint:errcheck
	for k, v := range st.Logs {
		v.Size, v.RootHash = 2, strings.Repeat("ab", 32)
		st.Logs[k] = v
	}
	forged, _ := json.Marshal(st)
	os.WriteFile(state, forged, 0o600) //nolint:errcheck
	lines, err = monitorLines(t, base, "--watch", watch, "--state", state)
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), "history was rewritten") || len(lines) != 1 || lines[0]["alert"] != "log_not_consistent" {
		t.Fatalf("rewritten history: %v %v", err, lines)
	}

	// A watch list that names nothing, or misspells a key, is refused.
	os.WriteFile(watch, []byte("email: [alice@example.com]\n"), 0o600) //nolint:errcheck
	if _, err := monitorLines(t, base, "--watch", watch, "--state", state); err == nil || !strings.Contains(err.Error(), "field email not found") {
		t.Fatalf("misspelt watch list: %v", err)
	}
}

// After a key rotation, the monitor finishes the frozen tree (its entries
// after the last pass) and goes on with the new one, log indexes
// continuing across both.
func TestMonitorFollowsAKeyRotation(t *testing.T) {
	dbURL, dataDir := dbtest.NewURL(t), t.TempDir()
	base, stop := startDevAt(t, "127.0.0.1:0", dbURL, dataDir)
	addr := strings.TrimPrefix(base, "http://")
	watched, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(watched.Public())
	sum := sha256.Sum256(spki)
	upload := func(k *ecdsa.PrivateKey, artifact string) { t.Helper(); uploadWith(t, base, k, artifact) }
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	dir := t.TempDir()
	watch, state := filepath.Join(dir, "watch.yaml"), filepath.Join(dir, "state.json")
	os.WriteFile(watch, []byte("key_sha256: ["+hex.EncodeToString(sum[:])+"]\n"), 0o600) //nolint:errcheck
	indexes := func() []float64 {
		t.Helper()
		lines, err := monitorLines(t, base, "--watch", watch, "--state", state)
		if err != nil {
			t.Fatalf("monitor: %v %v", err, lines)
		}
		var out []float64
		for _, l := range lines {
			out = append(out, l["log_index"].(float64))
		}
		return out
	}
	upload(watched, "one")
	upload(other, "two")
	if got := indexes(); len(got) != 1 || got[0] != 0 {
		t.Fatalf("first pass: %v", got)
	}
	upload(watched, "three") // index 2, in the tree about to be frozen
	stop()
	keyPath := filepath.Join(dataDir, "keys", "log.pem")
	os.Remove(keyPath) //nolint:errcheck
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err := keys.WriteFile(keyPath, k, nil); err != nil {
		t.Fatal(err)
	}
	startDevAt(t, addr, dbURL, dataDir)
	upload(other, "four")   // index 3, the new tree's first
	upload(watched, "five") // index 4
	if got := indexes(); len(got) != 2 || got[0] != 2 || got[1] != 4 {
		t.Fatalf("after the rotation: %v, want 2 (frozen tree) and 4 (new tree)", got)
	}
	if got := indexes(); len(got) != 0 {
		t.Fatalf("a pass with nothing new: %v", got)
	}
}

// --webhook gets every JSON line (a pass whose POST fails is made again,
// matches and all); --metrics-listen serves the monitor's progress while
// it follows with --interval.
func TestMonitorWebhookAndMetrics(t *testing.T) {
	withoutPasswordEnv(t)
	base, _ := startDevAt(t, "127.0.0.1:0", dbtest.NewURL(t), t.TempDir())
	watched, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(watched.Public())
	sum := sha256.Sum256(spki)
	for i := 0; i < 2; i++ {
		uploadWith(t, base, watched, fmt.Sprintf("hook %d", i))
	}
	dir := t.TempDir()
	watch, state := filepath.Join(dir, "watch.yaml"), filepath.Join(dir, "state.json")
	os.WriteFile(watch, []byte("key_sha256: ["+hex.EncodeToString(sum[:])+"]\n"), 0o600) //nolint:errcheck

	var mu sync.Mutex
	var posted []map[string]any
	failing := true
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if failing {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		var v map[string]any
		json.NewDecoder(r.Body).Decode(&v) //nolint:errcheck
		posted = append(posted, v)
	}))
	defer hook.Close()
	var ve *verifyError
	if _, err := monitorLines(t, base, "--watch", watch, "--state", state, "--webhook", hook.URL); err == nil || errors.As(err, &ve) || !strings.Contains(err.Error(), "503") {
		t.Fatalf("a webhook that is down: %v", err)
	}
	mu.Lock()
	failing = false
	mu.Unlock()
	lines, err := monitorLines(t, base, "--watch", watch, "--state", state, "--webhook", hook.URL)
	if err != nil || len(lines) != 2 || len(posted) != 2 || posted[0]["log_index"] != float64(0) || posted[1]["log_index"] != float64(1) {
		t.Fatalf("the pass made again: %v, %d lines, posted %v", err, len(lines), posted)
	}

	// Following with metrics, on a port the monitor picks and prints.
	var errOut syncbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		cmd := newRootCommand(io.Discard, &errOut)
		cmd.SetArgs([]string{"--server", base, "monitor", "--watch", watch, "--state", filepath.Join(dir, "follow.json"), "--interval", "100ms", "--metrics-listen", "127.0.0.1:0"})
		done <- cmd.ExecuteContext(ctx)
	}()
	var addr string
	for wait := time.Now().Add(20 * time.Second); addr == ""; time.Sleep(20 * time.Millisecond) {
		if m := regexp.MustCompile(`metrics at http://(\S+)/metrics`).FindStringSubmatch(errOut.String()); m != nil {
			addr = m[1]
		}
		select {
		case err := <-done:
			t.Fatalf("the monitor ended before serving metrics: %v\n%s", err, errOut.String())
		default:
		}
		if time.Now().After(wait) {
			t.Fatalf("no metrics address printed within 20 s:\n%s", errOut.String())
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			text := string(body)
			if strings.Contains(text, "signet_monitor_entries_checked_total 2") && strings.Contains(text, "signet_monitor_tree_size 2") &&
				strings.Contains(text, `signet_monitor_reports_total{kind="match"} 2`) && !strings.Contains(text, "signet_monitor_last_pass_timestamp_seconds 0\n") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics did not show the pass within 20 s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("following ended with %v", err)
	}
}

// A catch-up records its progress as it goes (--save-every): interrupted
// at entry 3 (a webhook that stops taking lines), the next run starts
// after the last save, not from the first entry, and the saved root is
// the log's (the rest of the pass proves consistency from it).
func TestMonitorSavesProgress(t *testing.T) {
	withoutPasswordEnv(t)
	base, _ := startDevAt(t, "127.0.0.1:0", dbtest.NewURL(t), t.TempDir())
	watched, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(watched.Public())
	sum := sha256.Sum256(spki)
	for i := 0; i < 5; i++ {
		uploadWith(t, base, watched, fmt.Sprintf("progress %d", i))
	}
	dir := t.TempDir()
	watch, state := filepath.Join(dir, "watch.yaml"), filepath.Join(dir, "state.json")
	os.WriteFile(watch, []byte("key_sha256: ["+hex.EncodeToString(sum[:])+"]\n"), 0o600) //nolint:errcheck
	var mu sync.Mutex
	var took []float64
	limit := 3 // lines the webhook takes before failing
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if len(took) >= limit {
			http.Error(w, "full", http.StatusServiceUnavailable)
			return
		}
		var v map[string]any
		json.NewDecoder(r.Body).Decode(&v) //nolint:errcheck
		took = append(took, v["log_index"].(float64))
	}))
	defer hook.Close()
	if _, err := monitorLines(t, base, "--watch", watch, "--state", state, "--webhook", hook.URL, "--save-every", "2"); err == nil {
		t.Fatal("the pass did not fail on the webhook")
	}
	mu.Lock()
	limit, took = 100, nil
	mu.Unlock()
	lines, err := monitorLines(t, base, "--watch", watch, "--state", state, "--webhook", hook.URL, "--save-every", "2")
	if err != nil {
		t.Fatal(err)
	}
	var indexes []float64
	for _, l := range lines {
		indexes = append(indexes, l["log_index"].(float64))
	}
	// A save after entries 0-1 (size 2); the line of entry 3 failed before
	// the next save, so the run resumes at entry 2.
	if fmt.Sprint(indexes) != "[2 3 4]" {
		t.Fatalf("resumed with %v, want [2 3 4]", indexes)
	}
}

// After a CT key rotation, --log ct finishes the frozen CT tree (its final
// checkpoint verified with the old key, which the trusted root keeps)
// before the new tree.
func TestMonitorCTFollowsAKeyRotation(t *testing.T) {
	withoutPasswordEnv(t)
	dbURL, dataDir := dbtest.NewURL(t), t.TempDir()
	base, stop := startDevAt(t, "127.0.0.1:0", dbURL, dataDir)
	addr := strings.TrimPrefix(base, "http://")
	pin := func() {
		t.Helper()
		cfgDir := t.TempDir()
		if out, err := runCLI(t, "--config-dir", cfgDir, "--server", base, "init", "--root-sha256", rootSHA(t, base)); err != nil {
			t.Fatalf("init: %v\n%s", err, out)
		}
		t.Setenv("SIGNET_CONFIG_DIR", cfgDir)
	}
	dir := t.TempDir()
	sign := func(email, content string) {
		t.Helper()
		blob := filepath.Join(dir, content)
		os.WriteFile(blob, []byte(content), 0o644) //nolint:errcheck
		if out, err := runCLI(t, "--server", base, "sign-blob", blob, "--bundle", blob+".sigstore.json", "--yes", "--identity-token", devToken(t, base, email)); err != nil {
			t.Fatalf("sign-blob as %s: %v\n%s", email, err, out)
		}
	}
	ctSize := func(want int) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			var sth struct {
				TreeSize int `json:"tree_size"`
			}
			if resp, err := http.Get(base + "/ct/v1/get-sth"); err == nil {
				json.NewDecoder(resp.Body).Decode(&sth) //nolint:errcheck
				resp.Body.Close()
			}
			if sth.TreeSize >= want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the CT tree has %d entries after 20 s, want %d", sth.TreeSize, want)
			}
		}
	}
	watch, state := filepath.Join(dir, "watch.yaml"), filepath.Join(dir, "state.json")
	os.WriteFile(watch, []byte("emails: [carol@example.com]\n"), 0o600) //nolint:errcheck
	emails := func() []string {
		t.Helper()
		lines, err := monitorLines(t, base, "--log", "ct", "--watch", watch, "--state", state)
		if err != nil {
			t.Fatalf("monitor --log ct: %v %v", err, lines)
		}
		var out []string
		for _, l := range lines {
			out = append(out, fmt.Sprint(l["tree_id"], ":", l["log_index"]))
		}
		return out
	}
	pin()
	sign("carol@example.com", "a")
	ctSize(1)
	if got := emails(); len(got) != 1 {
		t.Fatalf("first pass: %v", got)
	}
	sign("carol@example.com", "b") // in the tree about to be frozen
	ctSize(2)
	stop()
	keyPath := filepath.Join(dataDir, "keys", "ct.pem")
	os.Remove(keyPath) //nolint:errcheck
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err := keys.WriteFile(keyPath, k, nil); err != nil {
		t.Fatal(err)
	}
	startDevAt(t, addr, dbURL, dataDir)
	pin() // the trusted root now lists both CT keys
	sign("carol@example.com", "c")
	ctSize(1)
	got := emails()
	if len(got) != 2 || !strings.HasSuffix(got[0], ":1") || !strings.HasSuffix(got[1], ":0") || strings.Split(got[0], ":")[0] == strings.Split(got[1], ":")[0] {
		t.Fatalf("after the CT key rotation: %v, want the frozen tree's entry 1 then the new tree's entry 0", got)
	}
}

// The monitor reports identities signed by unmodified cosign as it does
// signet's, and none for others; a log that serves an older checkpoint of
// the same tree, properly signed by the same key, after a larger one was
// seen (a shrunk log) raises the consistency alert.
func TestMonitorCosignSignersAndAShrunkLog(t *testing.T) {
	x := newInterop(t)
	t.Setenv("COSIGN_PASSWORD", "")
	blob := x.write("by-cosign.txt", "signed by cosign")
	x.mustCosign("sign-blob", "--yes", "--signing-config", x.signingConfig, "--trusted-root", x.trustedRoot,
		"--identity-token", devToken(t, x.base, "carol@example.com"), "--bundle", blob+".sigstore.json", blob)
	// The checkpoint of the log at one entry, as signed then.
	resp, err := http.Get(x.base + "/api/v1/log")
	if err != nil {
		t.Fatal(err)
	}
	atOne, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, email := range []string{"dave@example.com", "eve@example.com"} {
		b := x.write(email, "signed by "+email)
		if out, err := runCLI(t, "sign-blob", b, "--bundle", b+".sigstore.json", "--yes", "--identity-token", devToken(t, x.base, email)); err != nil {
			t.Fatalf("sign-blob: %v\n%s", err, out)
		}
	}
	watch := x.write("watch.yaml", "emails: [carol@example.com, dave@example.com]\n")
	state := filepath.Join(x.dir, "state.json")
	lines, err := monitorLines(t, x.base, "--watch", watch, "--state", state)
	if err != nil || len(lines) != 2 {
		t.Fatalf("cosign's and signet's signers: %v %v", err, lines)
	}
	for i, want := range []string{"carol@example.com", "dave@example.com"} {
		signer := lines[i]["signers"].([]any)[0].(map[string]any)
		if emails := signer["emails"].([]any); emails[0] != want {
			t.Errorf("match %d: %v, want %s", i, signer, want)
		}
	}
	nobody := x.write("nobody.yaml", "emails: [nobody@example.com]\n")
	if lines, err := monitorLines(t, x.base, "--watch", nobody, "--state", filepath.Join(x.dir, "nobody.json")); err != nil || len(lines) != 0 {
		t.Fatalf("nobody watched: %v %v", err, lines)
	}

	// The same server, now answering with the log as it was at one entry.
	target, _ := url.Parse(x.base)
	shrunk := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/log" {
			w.Header().Set("Content-Type", "application/json")
			w.Write(atOne) //nolint:errcheck
			return
		}
		httputil.NewSingleHostReverseProxy(target).ServeHTTP(w, r)
	}))
	defer shrunk.Close()
	// The state names the server: the proxy takes its place in it.
	raw, _ := os.ReadFile(state)
	os.WriteFile(state, bytes.ReplaceAll(raw, []byte(x.base), []byte(shrunk.URL)), 0o600) //nolint:errcheck
	var ve *verifyError
	lines, err = monitorLines(t, shrunk.URL, "--watch", watch, "--state", state)
	if !errors.As(err, &ve) || len(lines) != 1 || lines[0]["alert"] != "log_not_consistent" || !strings.Contains(err.Error(), "shr") {
		t.Fatalf("a shrunk log: %v %v", err, lines)
	}
}
