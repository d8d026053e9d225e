package main

import (
	"crypto/ed25519"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rtnote "github.com/sigstore/rekor-tiles/v2/pkg/note"
	rtverify "github.com/sigstore/rekor-tiles/v2/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
	fnote "github.com/transparency-dev/formats/note"

	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/internal/keys"
	"github.com/signet-dev/signet/internal/keys/softhsmtest"
	"github.com/signet-dev/signet/internal/witnesstest"
	"github.com/signet-dev/signet/log/note"
)

// A Rekor v2 log with an Ed25519 key held in a PKCS#11 token (SoftHSM2),
// witnessed by a real witness (litewitness):
//   - signet signs a blob through it and unmodified cosign verifies the
//     bundle with the served trusted root (sigstore-go finds the log by
//     the Ed25519 key's C2SP ID, which covers the hostname);
//   - /checkpoint then serves the checkpoint cosigned by the witness,
//     which rekor-tiles' own verifier accepts with the log's and the
//     witness's keys, and the tree's tile prefix serves the same;
//   - signet monitor --witness-key passes with that witness, and alerts
//     (checkpoint_not_witnessed, exit 3) when it asks for another witness
//     that never cosigned;
//   - the witness metrics count the cosignatures.
func TestWitnessedRekorV2(t *testing.T) {
	keyURI := softhsmtest.Setup(t).URI("log-v2")
	key, err := keys.GeneratePKCS11Ed25519Key(keyURI, keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public().(ed25519.PublicKey)
	const origin = "127.0.0.1" // the dev instance's public URL's hostname
	vkey, err := note.VerifierKey(origin, pub)
	if err != nil {
		t.Fatal(err)
	}
	w := witnesstest.Start(t, "witness.example")
	w.AddLog(t, origin, vkey)
	absent := witnesstest.Start(t, "absent.example") // never asked
	x := newInterop(t, func(c *config.Config) {
		c.Log.V2.Enabled = true
		c.Log.V2.Signer = keyURI
		c.Log.V2.Witness.Witnesses = []config.WitnessEndpoint{{URL: w.URL, Key: w.VKey}}
	})

	blob := x.write("witnessed.txt", "witnessed release")
	bundle := blob + ".sigstore.json"
	if out, err := runCLI(t, "sign-blob", blob, "--bundle", bundle, "--yes", "--identity-token", devToken(t, x.base, "alice@example.com")); err != nil {
		t.Fatalf("sign-blob through an Ed25519 v2 log: %v\n%s", err, out)
	}
	x.mustCosign("verify-blob", "--trusted-root", x.trustedRoot, "--bundle", bundle,
		"--certificate-identity", "alice@example.com", "--certificate-oidc-issuer", x.issuer, blob)

	// The witness cosigns within a few rounds (interval 1 s).
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(x.base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(raw)
	}
	var cosigned string
	for deadline := time.Now().Add(30 * time.Second); ; {
		code, body := get("/checkpoint")
		if code == http.StatusOK && strings.HasPrefix(body, origin+"\n1\n") {
			cosigned = body
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no cosigned checkpoint of size 1 after 30 s; last answer %d %q", code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	sv, err := signature.LoadVerifier(pub, 0)
	if err != nil {
		t.Fatal(err)
	}
	logVerifier, err := rtnote.NewNoteVerifier(origin, sv)
	if err != nil {
		t.Fatal(err)
	}
	witnessVerifier, err := fnote.NewVerifierForCosignatureV1(w.VKey)
	if err != nil {
		t.Fatal(err)
	}
	cp, n, err := rtverify.VerifyWitnessedCheckpoint(cosigned, logVerifier, witnessVerifier)
	if err != nil {
		t.Fatalf("rekor-tiles' verifier refuses the witnessed checkpoint: %v\n%s", err, cosigned)
	}
	if cp.Size != 1 || len(n.Sigs) != 2 || n.Sigs[1].Name != w.Name {
		t.Fatalf("witnessed checkpoint of size %d with signatures %+v", cp.Size, n.Sigs)
	}
	_, index := get("/tiles/rekor-v2")
	tree := strings.Split(strings.Split(index, `"active":"`)[1], `"`)[0]
	if code, body := get("/tiles/rekor-v2/" + tree + "/checkpoint"); code != 200 || body != cosigned {
		t.Fatalf("the tree's tile prefix serves %d %q, not the cosigned checkpoint", code, body)
	}
	if _, metrics := get("/metrics"); !strings.Contains(metrics, `signet_witness_requests_total{log="rekor-v2",result="cosigned",witness="witness.example"}`) ||
		!strings.Contains(metrics, `signet_witness_published_tree_size{log="rekor-v2"} 1`) {
		t.Fatal("/metrics lacks the witness metrics")
	}

	watch := x.write("watch.yaml", "emails: [alice@example.com]\n")
	lines, err := monitorLines(t, x.base, "--log", "rekor-v2", "--watch", watch, "--state", filepath.Join(x.dir, "ok.json"), "--witness-key", w.VKey)
	if err != nil || len(lines) != 1 || lines[0]["log_index"] != float64(0) {
		t.Fatalf("monitor with the witness's key: %v %v", err, lines)
	}
	lines, err = monitorLines(t, x.base, "--log", "rekor-v2", "--watch", watch, "--state", filepath.Join(x.dir, "quorum.json"),
		"--witness-key", w.VKey, "--witness-key", absent.VKey, "--witness-quorum", "1")
	if err != nil || len(lines) != 1 {
		t.Fatalf("monitor with quorum 1 of two witnesses: %v %v", err, lines)
	}
	lines, err = monitorLines(t, x.base, "--log", "rekor-v2", "--watch", watch, "--state", filepath.Join(x.dir, "absent.json"), "--witness-key", absent.VKey)
	var ve *verifyError
	if !errors.As(err, &ve) || len(lines) != 1 || lines[0]["alert"] != "checkpoint_not_witnessed" || !strings.Contains(err.Error(), "no valid cosignature by absent.example") {
		t.Fatalf("monitor asking for a witness that never cosigned: %v %v", err, lines)
	}
	// The CT log is not witnessed here: asking for the witness there alerts.
	lines, err = monitorLines(t, x.base, "--log", "ct", "--watch", watch, "--state", filepath.Join(x.dir, "ct.json"), "--witness-key", w.VKey)
	if !errors.As(err, &ve) || len(lines) != 1 || lines[0]["alert"] != "checkpoint_not_witnessed" || !strings.Contains(err.Error(), "ct tree") {
		t.Fatalf("monitor asking for cosignatures on the unwitnessed CT log: %v %v", err, lines)
	}
	if _, err := runCLI(t, "--server", x.base, "monitor", "--once", "--watch", watch, "--witness-key", w.VKey); err == nil || !strings.Contains(err.Error(), "follow it in a run of its own") {
		t.Fatalf("--witness-key with the v1 log (the default): %v", err)
	}
	if _, err := runCLI(t, "--server", x.base, "monitor", "--once", "--watch", watch, "--log", "rekor-v2", "--witness-quorum", "1"); err == nil || !strings.Contains(err.Error(), "--witness-quorum needs --witness-key") {
		t.Fatalf("--witness-quorum alone: %v", err)
	}
}
