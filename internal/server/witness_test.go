package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	xnote "golang.org/x/mod/sumdb/note"

	"github.com/signet-dev/signet/client"
	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/internal/syncbuf"
	"github.com/signet-dev/signet/internal/witnesstest"
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
		var cosigned string
		for deadline := time.Now().Add(30 * time.Second); ; {
			resp, err := http.Get(inst.http.URL + "/tiles/" + name + "/" + l.tree + "/checkpoint")
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.Count(string(raw), "\u2014 ") == 2 && strings.HasPrefix(string(raw), l.origin+want[name]) {
				cosigned = string(raw)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no cosigned checkpoint after 30 s; last answer %d %q", name, resp.StatusCode, raw)
			}
			time.Sleep(200 * time.Millisecond)
		}
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
