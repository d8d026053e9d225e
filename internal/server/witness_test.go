package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	xnote "golang.org/x/mod/sumdb/note"

	"github.com/signet-dev/signet/client"
	"github.com/signet-dev/signet/internal/config"
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
	inst := f.startDev(t, sameDir)
	body, _, _ := newSigner(t).hashedRekord(t, []byte("witnessed v1 entry"), nil)
	if _, err := inst.client.Upload(ctx, body); err != nil {
		t.Fatal(err)
	}
	certKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := client.NewCA(inst.http.URL).SigningCertificate(ctx, inst.devToken("email=ct@example.com"), certKey); err != nil {
		t.Fatal(err)
	}
	// What the witness's operator is told of each log: its origin and its
	// key as a verifier key.
	type logOf struct{ tree, origin, vkey string }
	active := func(log string) string {
		var index struct{ Active string }
		if err := json.Unmarshal(inst.get("/tiles/"+log, 200), &index); err != nil {
			t.Fatal(err)
		}
		return index.Active
	}
	var ctKey struct {
		Ctlogs []struct {
			PublicKey struct{ RawBytes []byte } `json:"publicKey"`
		}
	}
	if err := json.Unmarshal(inst.get("/api/v1/trust/trusted_root.json", 200), &ctKey); err != nil || len(ctKey.Ctlogs) != 1 {
		t.Fatalf("trusted root: %v", err)
	}
	ctPub, err := x509.ParsePKIXPublicKey(ctKey.Ctlogs[0].PublicKey.RawBytes)
	if err != nil {
		t.Fatal(err)
	}
	logs := map[string]logOf{}
	for name, pub := range map[string]any{"rekor": inst.pub, "ct": ctPub} {
		tree := active(name)
		cp := string(inst.get("/tiles/"+name+"/"+tree+"/checkpoint", 200))
		origin, _, _ := strings.Cut(cp, "\n")
		vkey, err := note.VerifierKey(testHostname, pub)
		if err != nil {
			t.Fatal(err)
		}
		logs[name] = logOf{tree: tree, origin: origin, vkey: vkey}
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
			if resp.StatusCode == 200 && strings.Count(string(raw), "\u2014 ") == 2 {
				cosigned = string(raw)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no cosigned checkpoint after 30 s; last answer %d %q", name, resp.StatusCode, raw)
			}
			time.Sleep(200 * time.Millisecond)
		}
		n, err := xnote.Open([]byte(cosigned), xnote.VerifierList(logV, witnessV))
		if err != nil || len(n.Sigs) != 2 || !strings.HasPrefix(n.Text, l.origin+"\n1\n") {
			t.Fatalf("%s's cosigned checkpoint does not verify with the log's and the witness's keys: %v\n%s", name, err, cosigned)
		}
	}
	if _, cp, err := inst.client.Info(ctx); err != nil || cp.Size != 1 {
		t.Fatalf("the v1 API's signed tree head, one signature as Rekor's: %v (size %d)", err, cp.Size)
	}
}
