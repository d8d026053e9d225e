package witnesstest_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/signet-dev/signet/internal/witnesstest"
)

// rekorSigner signs notes as Rekor v1 signs its checkpoints: ECDSA over the
// SHA-256 of the note's text, ASN.1-encoded, behind a key hint that is the
// first 4 bytes of SHA-256 of the key's PKIX DER.
type rekorSigner struct {
	name string
	key  *ecdsa.PrivateKey
	hash uint32
}

func (s *rekorSigner) Name() string    { return s.name }
func (s *rekorSigner) KeyHash() uint32 { return s.hash }
func (s *rekorSigner) Sign(msg []byte) ([]byte, error) {
	d := sha256.Sum256(msg)
	return ecdsa.SignASN1(rand.Reader, s.key, d[:])
}

// newRekorKey makes a P-256 log key named name and its vkey (type 0x02).
func newRekorKey(t *testing.T, name string) (*rekorSigner, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(der)
	s := &rekorSigner{name: name, key: key, hash: binary.BigEndian.Uint32(h[:4])}
	vkey := fmt.Sprintf("%s+%08x+%s", name, s.hash, base64.StdEncoding.EncodeToString(append([]byte{0x02}, der...)))
	return s, vkey
}

func newEd25519Key(t *testing.T, name string) (note.Signer, string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s, vkey
}

// TestOmniwitness has a real omniwitness cosign checkpoints of two logs, one
// signing them with ECDSA as Rekor v1 does, one with Ed25519, both with
// origins unlike their key names, as Rekor v1's are; then refuse forks, and
// stop answering once stopped. The status codes are those of the pinned
// omniwitness (make litewitness), where they differ from c2sp.org/tlog-witness
// too: it says so.
func TestOmniwitness(t *testing.T) {
	ecSigner, ecVKey := newRekorKey(t, "log.example")
	edSigner, edVKey := newEd25519Key(t, "ed25519.example")
	ecOther, _ := newRekorKey(t, "log.example")
	edOther, _ := newEd25519Key(t, "ed25519.example")
	logs := []struct {
		name   string
		origin string
		signer note.Signer
		vkey   string
		other  note.Signer // another key of the same name
	}{
		{"ECDSA", "log.example - 1234", ecSigner, ecVKey, ecOther},
		{"Ed25519", "ed25519.example - 5678", edSigner, edVKey, edOther},
	}
	// A log with the origin of one of omniwitness's built-in logs (Rekor's)
	// and another key: the configured one replaces the built-in one.
	const rekorOrigin = "rekor.sigstore.dev - 1193050959916656506"
	rekorSigner, rekorVKey := newRekorKey(t, "rekor.sigstore.dev")

	began := time.Now()
	w := witnesstest.StartOmniwitness(t, "witness.example/omni",
		witnesstest.OmniLog{Origin: logs[0].origin, VKey: logs[0].vkey},
		witnesstest.OmniLog{Origin: logs[1].origin, VKey: logs[1].vkey},
		witnesstest.OmniLog{Origin: rekorOrigin, VKey: rekorVKey})
	t.Logf("omniwitness answering at %s after %v", w.URL, time.Since(began))

	if w.Name != "witness.example/omni" || !strings.HasPrefix(w.URL, "http://127.0.0.1:") {
		t.Fatalf("Name %q, URL %q", w.Name, w.URL)
	}
	witnessVerifier := cosignatureVerifier(t, w)

	// cosigned checks that an answer to add-checkpoint of cp is one
	// cosignature/v1 line by the witness, made between before and now.
	cosigned := func(t *testing.T, what string, code int, ctype, body string, cp []byte, logName string, before int64) {
		t.Helper()
		after := time.Now().Unix()
		if code != http.StatusOK || ctype != "text/plain; charset=utf-8" {
			t.Fatalf("%s: %d %s %q", what, code, ctype, body)
		}
		prefix := "— " + w.Name + " "
		if !strings.HasPrefix(body, prefix) || !strings.HasSuffix(body, "\n") || strings.Count(body, "\n") != 1 {
			t.Fatalf("%s: response is not one cosignature line: %q", what, body)
		}
		sig, _ := base64.StdEncoding.DecodeString(strings.TrimSuffix(strings.TrimPrefix(body, prefix), "\n"))
		if len(sig) != 4+8+64 { // key hash, timestamp, Ed25519 signature
			t.Fatalf("%s: cosignature is %d bytes", what, len(sig))
		}
		n, err := note.Open(append(cp, body...), note.VerifierList(witnessVerifier))
		if err != nil {
			t.Fatalf("%s: cosignature does not verify: %v", what, err)
		}
		if len(n.Sigs) != 1 || n.Sigs[0].Name != w.Name || n.Sigs[0].Hash != witnessVerifier.KeyHash() ||
			len(n.UnverifiedSigs) != 1 || n.UnverifiedSigs[0].Name != logName {
			t.Fatalf("%s: verified %+v, unverified %+v", what, n.Sigs, n.UnverifiedSigs)
		}
		ts, err := fnote.CoSigV1Timestamp(n.Sigs[0])
		if err != nil || ts.Unix() < before || ts.Unix() > after {
			t.Fatalf("%s: cosignature time %v (%v), want between %d and %d", what, ts, err, before, after)
		}
	}
	// refused checks a refusal, whose body omniwitness leaves empty but for
	// 409's.
	refused := func(t *testing.T, what string, wantCode int, code int, ctype, body string) {
		t.Helper()
		if code != wantCode || ctype != "" || body != "" {
			t.Errorf("%s: %d %q %q, want %d and no body", what, code, ctype, body, wantCode)
		}
	}
	sign := func(t *testing.T, s note.Signer, text string) []byte {
		t.Helper()
		msg, err := note.Sign(&note.Note{Text: text}, s)
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	leaf0, leaf1 := tlog.RecordHash([]byte("entry 0")), tlog.RecordHash([]byte("entry 1"))
	b64 := func(h tlog.Hash) string { return base64.StdEncoding.EncodeToString(h[:]) }

	for _, l := range logs {
		t.Run(l.name, func(t *testing.T) {
			logVerifier, err := fnote.NewVerifier(l.vkey)
			if err != nil {
				t.Fatalf("log vkey %q: %v", l.vkey, err)
			}
			text1 := fmt.Sprintf("%s\n1\n%s\n", l.origin, b64(leaf0))
			cp := sign(t, l.signer, text1)
			// The checkpoint verifies with what formats makes of the vkey, as
			// in omniwitness.
			if n, err := note.Open(cp, note.VerifierList(logVerifier)); err != nil || n.Text != text1 {
				t.Fatalf("checkpoint does not verify with %s: %v\n%s", l.vkey, err, cp)
			}

			// The first checkpoint: old size 0, no proof.
			before := time.Now().Unix()
			code, ctype, body := addCheckpoint(t, w, "old 0\n\n", cp)
			cosigned(t, "first checkpoint", code, ctype, body, cp, l.signer.Name(), before)

			// It now holds the log at size 1: old size 0 is a conflict,
			// answered with the size it knows.
			if code, ctype, body := addCheckpoint(t, w, "old 0\n\n", cp); code != http.StatusConflict ||
				ctype != "text/x.tlog.size" || body != "1\n" {
				t.Fatalf("old 0 again: %d %s %q", code, ctype, body)
			}
			// The same tree again, from size 1 with the empty proof: cosigned
			// again.
			before = time.Now().Unix()
			code, ctype, body = addCheckpoint(t, w, "old 1\n\n", cp)
			cosigned(t, "same checkpoint again", code, ctype, body, cp, l.signer.Name(), before)
			// Another root at the same size: a fork.
			fork := sign(t, l.signer, fmt.Sprintf("%s\n1\n%s\n", l.origin, b64(leaf1)))
			code, ctype, body = addCheckpoint(t, w, "old 1\n\n", fork)
			refused(t, "fork", http.StatusUnprocessableEntity, code, ctype, body)
			// Still at the first root.
			before = time.Now().Unix()
			code, ctype, body = addCheckpoint(t, w, "old 1\n\n", cp)
			cosigned(t, "after the fork, the known tree", code, ctype, body, cp, l.signer.Name(), before)
			// Signed by another key of the log's name: 500, not the 403 of
			// the spec (formats' log.ParseCheckpoint error is not mapped).
			code, ctype, body = addCheckpoint(t, w, "old 1\n\n", sign(t, l.other, text1))
			refused(t, "other key", http.StatusInternalServerError, code, ctype, body)
			// An old size above the checkpoint's.
			code, ctype, body = addCheckpoint(t, w, "old 2\n\n", cp)
			refused(t, "old 2 for size 1", http.StatusBadRequest, code, ctype, body)

			// Size 2, with an extension line as Rekor v1's checkpoints have:
			// without a proof, then with the consistency proof from size 1.
			root2 := tlog.NodeHash(leaf0, leaf1)
			cp2 := sign(t, l.signer, fmt.Sprintf("%s\n2\n%s\nTimestamp: %d\n", l.origin, b64(root2), time.Now().UnixNano()))
			code, ctype, body = addCheckpoint(t, w, "old 1\n\n", cp2)
			refused(t, "size 2 without a proof", http.StatusUnprocessableEntity, code, ctype, body)
			before = time.Now().Unix()
			code, ctype, body = addCheckpoint(t, w, "old 1\n"+b64(leaf1)+"\n\n", cp2)
			cosigned(t, "size 2", code, ctype, body, cp2, l.signer.Name(), before)
		})
	}

	// A log it was not told about: 500 (the SQLite store of --db_file reports
	// sql.ErrNoRows as an error), not the 404 of the spec.
	unknownSigner, _ := newRekorKey(t, "unknown.example")
	unknown := sign(t, unknownSigner, fmt.Sprintf("unknown.example - 1\n1\n%s\n", b64(leaf0)))
	code, ctype, body := addCheckpoint(t, w, "old 0\n\n", unknown)
	refused(t, "unknown log", http.StatusInternalServerError, code, ctype, body)
	// Not a request.
	code, ctype, body = addCheckpoint(t, w, "", []byte("not a request"))
	refused(t, "garbage", http.StatusBadRequest, code, ctype, body)

	// The first checkpoint of a log is trusted whatever the old size (the
	// spec wants 409 for an old size that is not 0 here); the log of the
	// built-in origin takes the configured key.
	rekorCP := sign(t, rekorSigner, fmt.Sprintf("%s\n1\n%s\n", rekorOrigin, b64(leaf0)))
	before := time.Now().Unix()
	code, ctype, body = addCheckpoint(t, w, "old 5\n\n", rekorCP)
	cosigned(t, "first checkpoint, old 5", code, ctype, body, rekorCP, "rekor.sigstore.dev", before)

	w.Stop(t)
	// A new connection, not one http.DefaultClient keeps from above (a POST
	// on that fails with EOF).
	if c, err := net.Dial("tcp", strings.TrimPrefix(w.URL, "http://")); !errors.Is(err, syscall.ECONNREFUSED) {
		if err == nil {
			c.Close()
		}
		t.Fatalf("stopped witness: dial: %v, want connection refused", err)
	}
	w.Stop(t) // idempotent
}

// TestOmniwitnessAddLog: AddLog is litewitness's.
func TestOmniwitnessAddLog(t *testing.T) {
	w := witnesstest.StartOmniwitness(t, "witness.example/omni")
	_, vkey := newEd25519Key(t, "log.example")
	ft := &fatalT{TB: t}
	func() {
		defer func() { recover() }()
		w.AddLog(ft, "log.example", vkey)
	}()
	if !strings.Contains(ft.msg, "StartOmniwitness") {
		t.Fatalf("AddLog on omniwitness: %q", ft.msg)
	}
}

// fatalT records what Fatalf says and stops there.
type fatalT struct {
	testing.TB
	msg string
}

func (f *fatalT) Helper() {}
func (f *fatalT) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(f)
}
