package witness

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	fnote "github.com/transparency-dev/formats/note"
	xnote "golang.org/x/mod/sumdb/note"
	sumtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/signet-dev/signet/internal/witnesstest"
	tlog "github.com/signet-dev/signet/log"
	"github.com/signet-dev/signet/log/note"
)

// memTree is a Merkle tree in memory (x/mod's tlog, an implementation
// independent of the engine's) signed like the v2 log's: what the witness
// loop needs of a tree, without PostgreSQL. The witnesses it talks to are
// real (litewitness).
type memTree struct {
	mu        sync.Mutex
	hashes    []sumtlog.Hash
	n         int64
	signer    note.Signer
	witnessed string
	wsize     uint64
}

func newMemTree(t *testing.T, origin string, key ed25519.PrivateKey) *memTree {
	s, err := note.C2SPSigner(origin, key)
	if err != nil {
		t.Fatal(err)
	}
	return &memTree{signer: s}
}

func (m *memTree) add(t *testing.T, records ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range records {
		hs, err := sumtlog.StoredHashes(m.n, []byte(r), m)
		if err != nil {
			t.Fatal(err)
		}
		m.hashes = append(m.hashes, hs...)
		m.n++
	}
}

// ReadHashes is called with mu held (add) or from Latest and
// ConsistencyProof, which hold it.
func (m *memTree) ReadHashes(idx []int64) ([]sumtlog.Hash, error) {
	out := make([]sumtlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = m.hashes[x]
	}
	return out, nil
}

func (m *memTree) Latest(context.Context) (tlog.Root, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, err := sumtlog.TreeHash(m.n, m)
	return tlog.Root{Size: uint64(m.n), Hash: h[:]}, err
}

func (m *memTree) Checkpoint(root tlog.Root) (string, error) {
	return note.Sign(note.Checkpoint{Origin: m.signer.Name, Size: root.Size, RootHash: root.Hash}, m.signer)
}

func (m *memTree) ConsistencyProof(_ context.Context, from, to uint64) ([][]byte, tlog.Root, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if from == 0 || from == to {
		return nil, tlog.Root{}, nil
	}
	p, err := sumtlog.ProveTree(int64(to), int64(from), m)
	var out [][]byte
	for _, h := range p {
		out = append(out, h[:])
	}
	return out, tlog.Root{}, err
}

func (m *memTree) StoreWitnessed(_ context.Context, size uint64, cosigned string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if size < m.wsize {
		return false, nil
	}
	m.wsize, m.witnessed = size, cosigned
	return true, nil
}

func (m *memTree) Witnessed(context.Context) (uint64, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.wsize, m.witnessed, nil
}

// logKey is a fresh Ed25519 log key and its verifier key as origin.
func logKey(t *testing.T, origin string) (ed25519.PrivateKey, string) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	vkey, err := note.VerifierKey(origin, pub)
	if err != nil {
		t.Fatal(err)
	}
	return key, vkey
}

func witnessesOf(t *testing.T, ws ...*witnesstest.Witness) []Witness {
	var out []Witness
	for _, w := range ws {
		v, err := fnote.NewVerifierForCosignatureV1(w.VKey)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Witness{URL: w.URL, Verifier: v})
	}
	return out
}

// cosigners opens the published note with the log's key and returns the
// witnesses whose cosignatures formats' verifiers accept, by name.
func cosigners(t *testing.T, published string, logPub ed25519.PublicKey, origin string, ws ...*witnesstest.Witness) (note.Checkpoint, []string) {
	t.Helper()
	cp, others, err := note.Open(published, origin, logPub)
	if err != nil {
		t.Fatalf("published checkpoint does not open with the log's key: %v\n%s", err, published)
	}
	var names []string
	for _, w := range ws {
		v, _ := fnote.NewVerifierForCosignatureV1(w.VKey)
		if n, err := xnote.Open([]byte(published), xnote.VerifierList(v)); err == nil && len(n.Sigs) == 1 {
			names = append(names, n.Sigs[0].Name)
		}
	}
	if len(others) != len(names) {
		t.Fatalf("%d signature lines besides the log's, %d verify as the witnesses'\n%s", len(others), len(names), published)
	}
	return cp, names
}

// twoWitnesses starts w1.example and w2.example, each knowing a fresh log
// key as origin's.
func twoWitnesses(t *testing.T, origin string) (ed25519.PrivateKey, *witnesstest.Witness, *witnesstest.Witness) {
	key, vkey := logKey(t, origin)
	w1, w2 := witnesstest.Start(t, "w1.example"), witnesstest.Start(t, "w2.example")
	w1.AddLog(t, origin, vkey)
	w2.AddLog(t, origin, vkey)
	return key, w1, w2
}

// Two real witnesses cosign a growing log: the first round sends no
// proof, later ones prove consistency from what each witness cosigned;
// the published note carries both cosignatures, and a round with nothing
// new asks nobody.
func TestCosignsGrowingLog(t *testing.T) {
	const origin = "log.example"
	key, w1, w2 := twoWitnesses(t, origin)
	tree := newMemTree(t, origin, key)
	reg := prometheus.NewRegistry()
	c, err := New(context.Background(), Config{Log: "test", Tree: tree, Witnesses: witnessesOf(t, w1, w2), Quorum: 2, Metrics: NewMetrics(reg)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Published(context.Background()); err != ErrNotPublished {
		t.Fatalf("before any round: %v, want ErrNotPublished", err)
	}
	ctx := context.Background()
	for round, add := range []int{3, 1, 250, 0} {
		for i := range add {
			tree.add(t, fmt.Sprintf("round %d entry %d", round, i))
		}
		if err := c.Round(ctx); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		published, err := c.Published(ctx)
		if err != nil {
			t.Fatal(err)
		}
		root, _ := tree.Latest(ctx)
		cp, names := cosigners(t, published, key.Public().(ed25519.PublicKey), origin, w1, w2)
		if cp.Size != root.Size || strings.Join(names, ",") != "w1.example,w2.example" {
			t.Fatalf("round %d published size %d cosigned by %v; want %d by both", round, cp.Size, names, root.Size)
		}
		if _, stored, _ := tree.Witnessed(ctx); stored != published {
			t.Fatalf("round %d: published before it was stored", round)
		}
	}
	// Three rounds asked each witness once; the fourth had nothing new.
	for _, w := range []string{"w1.example", "w2.example"} {
		if got := testutil.ToFloat64(c.cfg.Metrics.requests.WithLabelValues("test", w, "cosigned")); got != 3 {
			t.Fatalf("%s cosigned %v times, want 3", w, got)
		}
	}
}

// A witness that is down delays the round by no more than the request and
// does not stop publication while the quorum still cosigns; below the
// quorum the previous checkpoint stays published.
func TestWitnessDown(t *testing.T) {
	const origin = "log.example"
	key, w1, w2 := twoWitnesses(t, origin)
	tree := newMemTree(t, origin, key)
	tree.add(t, "a", "b")
	ctx := context.Background()
	quorum1, err := New(ctx, Config{Log: "q1", Tree: tree, Witnesses: witnessesOf(t, w1, w2), Quorum: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := quorum1.Round(ctx); err != nil {
		t.Fatal(err)
	}
	w2.Stop(t)
	tree.add(t, "c")
	if err := quorum1.Round(ctx); err != nil {
		t.Fatalf("one of two witnesses down, quorum 1: %v", err)
	}
	published, _ := quorum1.Published(ctx)
	cp, names := cosigners(t, published, key.Public().(ed25519.PublicKey), origin, w1, w2)
	if cp.Size != 3 || strings.Join(names, ",") != "w1.example" {
		t.Fatalf("published size %d cosigned by %v, want 3 by w1 only", cp.Size, names)
	}
	if got := testutil.ToFloat64(quorum1.cfg.Metrics.requests.WithLabelValues("q1", "w2.example", "unreachable")); got != 1 {
		t.Fatalf("unreachable w2 counted %v times", got)
	}

	// A restart with the same quorum serves the stored checkpoint; one
	// whose quorum is now 2 does not serve it (w1 alone cosigned it), and
	// publishes nothing below its quorum.
	again, err := New(ctx, Config{Log: "q1", Tree: tree, Witnesses: witnessesOf(t, w1, w2), Quorum: 1})
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := again.Published(ctx); p != published {
		t.Fatalf("a restarted cosigner serves %q, not the stored %q", p, published)
	}
	quorum2, err := New(ctx, Config{Log: "q2", Tree: tree, Witnesses: witnessesOf(t, w1, w2), Quorum: 2})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := quorum2.Published(ctx); err != ErrNotPublished {
		t.Fatalf("a cosigner with quorum 2 serves the checkpoint w1 alone cosigned: %q", p)
	}
	tree.add(t, "d")
	err = quorum2.Round(ctx)
	if err == nil || !strings.Contains(err.Error(), "fewer than the quorum of 2") {
		t.Fatalf("round below quorum: %v", err)
	}
	if p, err := quorum2.Published(ctx); err != ErrNotPublished {
		t.Fatalf("a checkpoint below the quorum was published: %q", p)
	}
	if got := testutil.ToFloat64(quorum2.cfg.Metrics.quorumMissed.WithLabelValues("q2")); got != 1 {
		t.Fatalf("quorum missed %v times, want 1", got)
	}
}

// A log that shows the witness another history for the same origin and
// key (a fork, or a restore that lost entries) is refused, whether it is
// smaller than what the witness saw or larger with an unprovable root, and
// nothing is published.
func TestForkRefused(t *testing.T) {
	const origin = "log.example"
	key, vkey := logKey(t, origin)
	w := witnesstest.Start(t, "w.example")
	w.AddLog(t, origin, vkey)
	ctx := context.Background()
	honest := newMemTree(t, origin, key)
	honest.add(t, "a", "b", "c", "d")
	c, err := New(ctx, Config{Log: "honest", Tree: honest, Witnesses: witnessesOf(t, w), Quorum: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Round(ctx); err != nil {
		t.Fatal(err)
	}

	fork := newMemTree(t, origin, key)
	fork.add(t, "a", "x")
	f, err := New(ctx, Config{Log: "fork", Tree: fork, Witnesses: witnessesOf(t, w), Quorum: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Smaller: the witness answers 409 with 4, which is more than the fork has.
	if err := f.Round(ctx); err == nil || !strings.Contains(err.Error(), "another view") {
		t.Fatalf("a smaller fork: %v", err)
	}
	// Larger: the fork cannot prove its root consistent with size 4.
	fork.add(t, "y", "z", "w")
	if err := f.Round(ctx); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("a larger fork: %v", err)
	}
	if _, err := f.Published(ctx); err != ErrNotPublished {
		t.Fatalf("a fork got published: %v", err)
	}
	// The honest log goes on.
	honest.add(t, "e")
	if err := c.Round(ctx); err != nil {
		t.Fatalf("the honest log after the fork: %v", err)
	}
}

// A witness that misbehaves: litewitness never does on request, so the
// answers a broken or malicious witness could give come from this test
// server, signing with a real cosignature/v1 key (transparency-dev/formats').
// Each answer must leave the checkpoint unpublished and say why; the
// honest answer from the same server is published, so the refusals are
// the answers', not the harness's.
func TestMisbehavingWitness(t *testing.T) {
	const origin = "log.example"
	key, _ := logKey(t, origin)
	skey, _, err := xnote.GenerateKey(rand.Reader, "evil.example")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _, _ := xnote.GenerateKey(rand.Reader, "other.example")
	other, _ := fnote.NewSignerForCosignatureV1(otherKey)
	line := func(s *fnote.Signer, msg string) string {
		sig, err := s.Sign([]byte(msg))
		if err != nil {
			t.Fatal(err)
		}
		return note.SignatureLine(s.Name(), append(binary.BigEndian.AppendUint32(nil, s.KeyHash()), sig...))
	}
	type answer func(w http.ResponseWriter, r *http.Request, text, signed string)
	say := func(status int, body string) answer {
		return func(w http.ResponseWriter, _ *http.Request, _, _ string) {
			w.WriteHeader(status)
			io.WriteString(w, body) //nolint:errcheck
		}
	}
	cosign := func(w http.ResponseWriter, _ *http.Request, text, _ string) { io.WriteString(w, line(signer, text)) } //nolint:errcheck
	honest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, signed, _ := strings.Cut(string(body), "\n\n")
		text, _ := note.Text(signed)
		cosign(w, r, text, signed)
	}))
	defer honest.Close()
	for name, tc := range map[string]struct {
		answer  answer
		timeout time.Duration
		want    string
	}{
		"honest": {answer: cosign},
		// With a blank line of its own, the answer would make x/mod's
		// note.Open read the log's line as part of the text, which the
		// witness then signs: a cosignature that verifies there but not
		// over the checkpoint.
		"signs the log's line too": {answer: func(w http.ResponseWriter, _ *http.Request, _, signed string) {
			io.WriteString(w, "\n"+line(signer, signed)) //nolint:errcheck
		}, want: "not signature lines"},
		"another witness's line": {answer: func(w http.ResponseWriter, _ *http.Request, text, _ string) {
			io.WriteString(w, line(other, text)) //nolint:errcheck
		}, want: "no cosignature by evil.example"},
		"a signature over other text": {answer: func(w http.ResponseWriter, _ *http.Request, text, _ string) {
			io.WriteString(w, line(signer, text+"extension\n")) //nolint:errcheck
		}, want: "does not verify"},
		"409 without a size":          {answer: say(http.StatusConflict, "busy\n"), want: "without its tree size"},
		"409 again":                   {answer: say(http.StatusConflict, "1\n"), want: "answered 409 for old size 1"},
		"409, a size beyond the tree": {answer: say(http.StatusConflict, "18446744073709551615\n"), want: "more than the tree's 3"},
		"422":                         {answer: say(http.StatusUnprocessableEntity, "bad consistency proof\n"), want: "422 bad consistency proof"},
		"a huge answer":               {answer: say(http.StatusOK, strings.Repeat("x", MaxResponseBytes+1)), want: "more than 16384 bytes"},
		"a redirect": {answer: func(w http.ResponseWriter, r *http.Request, _, _ string) {
			http.Redirect(w, r, honest.URL+"/add-checkpoint", http.StatusTemporaryRedirect)
		}, want: "307"},
		"too slow": {answer: func(w http.ResponseWriter, r *http.Request, _, _ string) {
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}, timeout: 100 * time.Millisecond, want: "deadline exceeded"},
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				_, signed, ok := strings.Cut(string(body), "\n\n")
				text, err := note.Text(signed)
				if r.URL.Path != "/add-checkpoint" || !ok || err != nil {
					http.Error(w, "not an add-checkpoint request", http.StatusBadRequest)
					return
				}
				tc.answer(w, r, text, signed)
			}))
			defer srv.Close()
			tree := newMemTree(t, origin, key)
			tree.add(t, "a", "b", "c")
			c, err := New(context.Background(), Config{Log: "t", Tree: tree, Quorum: 1, Timeout: tc.timeout,
				Witnesses: []Witness{{URL: srv.URL, Verifier: signer.Verifier()}}})
			if err != nil {
				t.Fatal(err)
			}
			err = c.Round(context.Background())
			published, perr := c.Published(context.Background())
			if tc.want == "" {
				if err != nil || perr != nil || strings.Count(published, "\u2014 ") != 2 {
					t.Fatalf("honest answer: %v %v\n%s", err, perr, published)
				}
				if n, err := xnote.Open([]byte(published), xnote.VerifierList(signer.Verifier())); err != nil || len(n.Sigs) != 1 {
					t.Fatalf("the published note does not verify with the witness's key: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("round: %v, want containing %q", err, tc.want)
			}
			if perr != ErrNotPublished {
				t.Fatalf("published after %s: %q", name, published)
			}
			if c.known[0] > 3 {
				t.Fatalf("kept the witness's word that it has size %d, more than the tree", c.known[0])
			}
		})
	}
}

// The checkpoint is published as soon as the quorum has cosigned: a slow
// witness (here one that answers only when the test lets it) delays
// nothing, and its cosignature is added when it comes, before the round
// ends.
func TestPublishesAtQuorum(t *testing.T) {
	const origin = "log.example"
	key, vkey := logKey(t, origin)
	fast := witnesstest.Start(t, "fast.example")
	fast.AddLog(t, origin, vkey)
	skey, _, _ := xnote.GenerateKey(rand.Reader, "slow.example")
	slowSigner, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, signed, _ := strings.Cut(string(body), "\n\n")
		text, _ := note.Text(signed)
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		sig, _ := slowSigner.Sign([]byte(text))
		io.WriteString(w, note.SignatureLine(slowSigner.Name(), append(binary.BigEndian.AppendUint32(nil, slowSigner.KeyHash()), sig...))) //nolint:errcheck
	}))
	defer slow.Close()
	tree := newMemTree(t, origin, key)
	tree.add(t, "a", "b")
	ws := append(witnessesOf(t, fast), Witness{URL: slow.URL, Verifier: slowSigner.Verifier()})
	// The slow witness first in the list: the note keeps the configured order.
	ws[0], ws[1] = ws[1], ws[0]
	c, err := New(context.Background(), Config{Log: "t", Tree: tree, Witnesses: ws, Quorum: 1, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Round(context.Background()) }()
	var early string
	for deadline := time.Now().Add(30 * time.Second); early == ""; {
		select {
		case err := <-done:
			t.Fatalf("the round ended (%v) before the slow witness was let answer", err)
		default:
		}
		if p, err := c.Published(context.Background()); err == nil {
			early = p
		} else if time.Now().After(deadline) {
			t.Fatal("nothing published while the slow witness waits")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if strings.Count(early, "\u2014 ") != 2 || !strings.Contains(early, "\u2014 fast.example ") {
		t.Fatalf("published before the slow witness answered:\n%s", early)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	final, _ := c.Published(context.Background())
	n, err := xnote.Open([]byte(final), xnote.VerifierList(ws[0].Verifier, ws[1].Verifier))
	if err != nil || len(n.Sigs) != 2 || n.Sigs[0].Name != "slow.example" || n.Sigs[1].Name != "fast.example" {
		t.Fatalf("after the slow witness answered: %v\n%s", err, final)
	}
	if _, stored, _ := tree.Witnessed(context.Background()); stored != final {
		t.Fatal("the final note was served before it was stored")
	}
}
