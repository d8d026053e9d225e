package witnesstest_test

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/signet-dev/signet/internal/witnesstest"
)

// TestLitewitness has a real litewitness cosign a one-entry log's
// checkpoint, then refuse a second checkpoint of the same size with another
// root (a fork), and stop answering once stopped.
func TestLitewitness(t *testing.T) {
	began := time.Now()
	w := witnesstest.Start(t, "witness.example/test")
	t.Logf("litewitness answering at %s after %v", w.URL, time.Since(began))

	if w.Name != "witness.example/test" || !strings.HasPrefix(w.URL, "http://127.0.0.1:") {
		t.Fatalf("Name %q, URL %q", w.Name, w.URL)
	}
	witnessVerifier := cosignatureVerifier(t, w)
	if _, err := note.NewVerifier(w.VKey); err == nil {
		t.Fatal("x/mod's note.NewVerifier took a cosignature/v1 (0x04) vkey")
	}

	const origin = "log.example/witnesstest"
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	logSigner, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	w.AddLog(t, origin, vkey)

	checkpoint := func(s note.Signer, origin string, root tlog.Hash) []byte {
		t.Helper()
		msg, err := note.Sign(&note.Note{Text: fmt.Sprintf("%s\n1\n%s\n", origin, base64.StdEncoding.EncodeToString(root[:]))}, s)
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	root := tlog.RecordHash([]byte("entry 0")) // a one-entry tree's root
	cp := checkpoint(logSigner, origin, root)

	// The first checkpoint: old size 0, no proof.
	before := time.Now().Unix()
	code, ctype, body := addCheckpoint(t, w, "old 0\n\n", cp)
	after := time.Now().Unix()
	if code != http.StatusOK || ctype != "text/plain; charset=utf-8" {
		t.Fatalf("first checkpoint: %d %s %q", code, ctype, body)
	}
	prefix := "— " + w.Name + " "
	if !strings.HasPrefix(body, prefix) || !strings.HasSuffix(body, "\n") || strings.Count(body, "\n") != 1 {
		t.Fatalf("response is not one cosignature line: %q", body)
	}
	sig, _ := base64.StdEncoding.DecodeString(strings.TrimSuffix(strings.TrimPrefix(body, prefix), "\n"))
	if len(sig) != 4+8+64 { // key hash, timestamp, Ed25519 signature
		t.Fatalf("cosignature is %d bytes", len(sig))
	}
	n, err := note.Open(append(cp, body...), note.VerifierList(witnessVerifier))
	if err != nil {
		t.Fatalf("cosignature does not verify: %v", err)
	}
	if len(n.Sigs) != 1 || n.Sigs[0].Name != w.Name || n.Sigs[0].Hash != witnessVerifier.KeyHash() ||
		len(n.UnverifiedSigs) != 1 || n.UnverifiedSigs[0].Name != origin {
		t.Fatalf("verified %+v, unverified %+v", n.Sigs, n.UnverifiedSigs)
	}
	ts, err := fnote.CoSigV1Timestamp(n.Sigs[0])
	if err != nil || ts.Unix() < before || ts.Unix() > after {
		t.Fatalf("cosignature time %v (%v), want between %d and %d", ts, err, before, after)
	}

	// The witness now holds the log at size 1: old size 0 is a conflict,
	// answered with the size it knows.
	if code, ctype, body := addCheckpoint(t, w, "old 0\n\n", cp); code != http.StatusConflict ||
		ctype != "text/x.tlog.size" || body != "1\n" {
		t.Fatalf("old 0 again: %d %s %q", code, ctype, body)
	}
	// The same tree again, from size 1 with the empty proof: cosigned again.
	if code, _, body := addCheckpoint(t, w, "old 1\n\n", cp); code != http.StatusOK || !strings.HasPrefix(body, prefix) {
		t.Fatalf("same checkpoint again: %d %q", code, body)
	}
	// Another root at the same size: a fork, refused as a bad proof.
	fork := checkpoint(logSigner, origin, tlog.RecordHash([]byte("another entry 0")))
	if code, _, body := addCheckpoint(t, w, "old 1\n\n", fork); code != http.StatusUnprocessableEntity ||
		body != "bad consistency proof\n" {
		t.Fatalf("fork: %d %q", code, body)
	}
	// Still at the first root: the same tree is cosigned, the fork is not.
	if code, _, _ := addCheckpoint(t, w, "old 1\n\n", cp); code != http.StatusOK {
		t.Fatalf("after the fork, the known tree: %d", code)
	}
	// A log it was not told about, and a checkpoint signed by another key.
	otherSkey, _, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	otherSigner, _ := note.NewSigner(otherSkey)
	unknownSkey, _, _ := note.GenerateKey(rand.Reader, "log.example/unknown")
	unknownSigner, _ := note.NewSigner(unknownSkey)
	for _, c := range []struct {
		name, body string
		cp         []byte
	}{
		{"unknown log", "unknown log\n", checkpoint(unknownSigner, "log.example/unknown", root)},
		{"other key", "invalid signature\n", checkpoint(otherSigner, origin, root)},
	} {
		if code, _, body := addCheckpoint(t, w, "old 1\n\n", c.cp); code != http.StatusForbidden || body != c.body {
			t.Errorf("%s: %d %q", c.name, code, body)
		}
	}

	w.Stop(t)
	if resp, err := http.Post(w.URL+"/add-checkpoint", "text/plain", strings.NewReader("old 1\n\n"+string(cp))); err == nil {
		resp.Body.Close()
		t.Fatalf("stopped witness answered %s", resp.Status)
	}
	w.Stop(t) // idempotent
}

// TestStartLongTempDir starts a witness whose t.TempDir is too long a path
// for ssh-agent's Unix socket.
func TestStartLongTempDir(t *testing.T) {
	long := filepath.Join(t.TempDir(), strings.Repeat("d", 60))
	if err := os.Mkdir(long, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOTMPDIR", long) // where t.TempDir makes its directories
	t.Run("witness", func(t *testing.T) {
		if d := t.TempDir(); len(d) < 108 {
			t.Fatalf("TempDir %s is not too long for a socket", d)
		}
		w := witnesstest.Start(t, "long.example")
		resp, err := http.Get(w.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), w.VKey) {
			t.Fatalf("index page does not show vkey %s:\n%s", w.VKey, b)
		}
	})
}

func addCheckpoint(t *testing.T, w *witnesstest.Witness, head string, cp []byte) (int, string, string) {
	t.Helper()
	resp, err := http.Post(w.URL+"/add-checkpoint", "text/plain", strings.NewReader(head+string(cp)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// cosignatureVerifier checks that w.VKey is a cosignature/v1 vkey of w's
// name (name+hash+base64(0x04 || Ed25519 key)) and returns its verifier.
func cosignatureVerifier(t *testing.T, w *witnesstest.Witness) note.Verifier {
	t.Helper()
	v, err := fnote.NewVerifierForCosignatureV1(w.VKey)
	if err != nil {
		t.Fatalf("vkey %q: %v", w.VKey, err)
	}
	// The name has no "+"; the base64 key may.
	name, rest, _ := strings.Cut(w.VKey, "+")
	hash, key64, _ := strings.Cut(rest, "+")
	key, err := base64.StdEncoding.DecodeString(key64)
	if err != nil || name != w.Name || len(key) != 33 || key[0] != 0x04 ||
		v.Name() != w.Name || fmt.Sprintf("%08x", v.KeyHash()) != hash {
		t.Fatalf("vkey %q is not name+hash+base64(0x04 || Ed25519 key)", w.VKey)
	}
	return v
}
