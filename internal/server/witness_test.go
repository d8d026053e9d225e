package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/rekor-tiles/v2/pkg/client/write"
	fnote "github.com/transparency-dev/formats/note"
	xnote "golang.org/x/mod/sumdb/note"

	"github.com/signet-dev/signet/client"
	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/internal/keys"
	"github.com/signet-dev/signet/internal/syncbuf"
	"github.com/signet-dev/signet/internal/witnesstest"
	"github.com/signet-dev/signet/log/note"
)

// The v1 log and the CT log, both ECDSA-signed, witnessed by a witness
// that reads ECDSA log keys (transparency-dev's omniwitness, run for
// real): after a restart with log.witness and ct.witness set, each log's
// tiles serve its checkpoint cosigned by the witness, which
// transparency-dev/formats' verifiers accept with the log's key (the
// verifier key the server logs) and the witness's; the v1 API's
// signedTreeHead stays the log's alone, as Rekor clients expect.
func TestWitnessedV1AndCTLogs(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	data := t.TempDir()
	sameDir := func(c *config.Config) { c.DataDir = data }
	var logs0 syncbuf.Buffer
	inst := f.startDevLogging(t, &logs0, sameDir)
	signer := newSigner(t)
	body, _, _ := signer.hashedRekord(t, []byte("witnessed v1 entry"), nil)
	if _, err := inst.client.Upload(ctx, body); err != nil {
		t.Fatal(err)
	}
	certKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := client.NewCA(inst.http.URL).SigningCertificate(ctx, inst.devToken("email=ct@example.com"), certKey); err != nil {
		t.Fatal(err)
	}
	// What the witness's operator is told of each log, from the lines the
	// server logs at start-up: its origin and its key as a verifier key.
	type logOf struct{ tree, origin, vkey string }
	active := func(log string) string {
		var index struct{ Active string }
		if err := json.Unmarshal(inst.get("/tiles/"+log, 200), &index); err != nil {
			t.Fatal(err)
		}
		return index.Active
	}
	logs := map[string]logOf{}
	for name, msg := range map[string]string{"rekor": "transparency log ready", "ct": "CT log ready"} {
		origin, vkey := startupAttr(t, logs0.String(), msg, "origin"), startupAttr(t, logs0.String(), msg, "verifier_key")
		cp := string(inst.get("/tiles/"+name+"/"+active(name)+"/checkpoint", 200))
		if !strings.HasPrefix(cp, origin+"\n") {
			t.Fatalf("%s: start-up logged origin %q, its checkpoint is\n%s", name, origin, cp)
		}
		logs[name] = logOf{tree: active(name), origin: origin, vkey: vkey}
	}
	inst.stop()

	w := witnesstest.StartOmniwitness(t, "omni.example",
		witnesstest.OmniLog{Origin: logs["rekor"].origin, VKey: logs["rekor"].vkey},
		witnesstest.OmniLog{Origin: logs["ct"].origin, VKey: logs["ct"].vkey})
	witnessed := config.Witness{Witnesses: []config.WitnessEndpoint{{URL: w.URL, Key: w.VKey}}, TimeoutSeconds: 5, IntervalSeconds: 1}
	inst = f.startDev(t, sameDir, func(c *config.Config) { c.Log.Witness, c.CT.Witness = witnessed, witnessed })

	witnessV, err := fnote.NewVerifierForCosignatureV1(w.VKey)
	if err != nil {
		t.Fatal(err)
	}
	// A second v1 entry: the next round proves its checkpoint consistent
	// with the one omniwitness cosigned.
	body, _, _ = signer.hashedRekord(t, []byte("second witnessed v1 entry"), nil)
	if _, err := inst.client.Upload(ctx, body); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"rekor": "\n2\n", "ct": "\n1\n"}
	for name, l := range logs {
		logV, err := fnote.NewVerifier(l.vkey)
		if err != nil {
			t.Fatalf("%s's verifier key %q: %v", name, l.vkey, err)
		}
		cosigned := inst.getUntil(t, "/tiles/"+name+"/"+l.tree+"/checkpoint", func(code int, body string) bool {
			return code == 200 && strings.Count(body, "\u2014 ") == 2 && strings.HasPrefix(body, l.origin+want[name])
		})
		n, err := xnote.Open([]byte(cosigned), xnote.VerifierList(logV, witnessV))
		if err != nil || len(n.Sigs) != 2 || !strings.HasPrefix(n.Text, l.origin+want[name]) {
			t.Fatalf("%s's cosigned checkpoint does not verify with the log's and the witness's keys: %v\n%s", name, err, cosigned)
		}
	}
	if _, cp, err := inst.client.Info(ctx); err != nil || cp.Size != 2 {
		t.Fatalf("the v1 API's signed tree head, one signature as Rekor's: %v (size %d)", err, cp.Size)
	}
}

// startupAttr is attribute key of the first log line whose message is msg,
// unquoted as slog's text handler writes it.
func startupAttr(t *testing.T, logs, msg, key string) string {
	t.Helper()
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, "msg="+strconv.Quote(msg)) && !strings.Contains(line, "msg="+msg+" ") {
			continue
		}
		m := regexp.MustCompile(` ` + key + `=("(?:[^"\\]|\\.)*"|\S+)`).FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("the %q line has no %s: %s", msg, key, line)
		}
		if v, err := strconv.Unquote(m[1]); err == nil {
			return v
		}
		return m[1]
	}
	t.Fatalf("no %q line in the server's log:\n%s", msg, logs)
	return ""
}

// A key rotation freezes the witnessed v2 tree at a size the witness
// cosigned: the frozen tree's tiles keep serving that cosigned checkpoint,
// not one signed by the log alone.
func TestFrozenTreeKeepsItsCosignatures(t *testing.T) {
	f := newFixture(t)
	data := t.TempDir()
	keyPath := filepath.Join(t.TempDir(), "log-v2.pem")
	newKey := func() ed25519.PublicKey {
		pub, key, _ := ed25519.GenerateKey(rand.Reader)
		os.Remove(keyPath) //nolint:errcheck
		if err := keys.WriteFile(keyPath, key, nil); err != nil {
			t.Fatal(err)
		}
		return pub
	}
	pub := newKey()
	vkey, err := note.VerifierKey("127.0.0.1", pub)
	if err != nil {
		t.Fatal(err)
	}
	w := witnesstest.Start(t, "witness.example")
	w.AddLog(t, "127.0.0.1", vkey)
	v2 := func(c *config.Config) {
		c.DataDir = data
		c.Log.V2.Enabled = true
		c.Log.V2.Signer = keys.FileURI(keyPath, keys.PasswordSource{})
		c.Log.V2.Witness.Witnesses = []config.WitnessEndpoint{{URL: w.URL, Key: w.VKey}}
	}
	inst := f.startDev(t, v2)
	clientKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	writer, err := write.NewWriter(inst.http.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := writer.Add(t.Context(), v2Request(t, clientKey, []byte("before the rotation"))); err != nil {
		t.Fatal(err)
	}
	tree := strconv.FormatInt(inst.srv.LogV2().TreeID(), 10)
	cosigned := inst.getUntil(t, "/checkpoint", func(code int, body string) bool {
		return code == 200 && strings.HasPrefix(body, "127.0.0.1\n1\n")
	})
	inst.stop()

	newKey() // dev mode rotates to a changed key by itself
	inst = f.startDev(t, func(c *config.Config) { v2(c); c.Log.V2.Witness = config.Witness{} })
	if got := strconv.FormatInt(inst.srv.LogV2().TreeID(), 10); got == tree {
		t.Fatal("the key change did not rotate the v2 log")
	}
	if got := inst.get("/tiles/rekor-v2/"+tree+"/checkpoint", 200); string(got) != cosigned {
		t.Fatalf("the frozen tree serves\n%s\nnot its cosigned checkpoint\n%s", got, cosigned)
	}
}

// getUntil GETs path until done says its answer is the one awaited (the
// witnessing rounds run every second), and returns that answer's body;
// the test fails after 30 s, naming the last answer.
func (i *instance) getUntil(t *testing.T, path string, done func(code int, body string) bool) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get(i.http.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if done(resp.StatusCode, string(raw)) {
			return string(raw)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: still %d %q after 30 s", path, resp.StatusCode, raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
