package log

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/signet-dev/signet/internal/db/dbtest"
	"github.com/signet-dev/signet/internal/trilliantest"
	"github.com/signet-dev/signet/log/integrate"
	"github.com/signet-dev/signet/log/pgstore"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// appendConcurrently appends n new leaves from many goroutines, so the
// pipeline sees batches of many sizes, and returns index -> leaf hash.
func appendConcurrently(t *testing.T, l *Log, prefix string, n int) map[uint64][]byte {
	t.Helper()
	var mu sync.Mutex
	got := map[uint64][]byte{}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				res, err := l.Append(context.Background(), fmt.Appendf(nil, "%s %d", prefix, i), nil)
				if err != nil || res.Duplicate {
					errs <- fmt.Errorf("append %d: duplicate %v, %v", i, res.Duplicate, err)
					return
				}
				if err := proof.VerifyInclusion(rfc6962.DefaultHasher, res.Leaf.Index, res.Root.Size, res.Leaf.Hash, res.Proof, res.Root.Hash); err != nil {
					errs <- fmt.Errorf("append %d: its proof: %w", i, err)
					return
				}
				mu.Lock()
				got[res.Leaf.Index] = res.Leaf.Hash
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return got
}

// rootOf computes the root of leaf hashes 0..size-1 independently.
func rootOf(t *testing.T, hashes map[uint64][]byte, size uint64) []byte {
	t.Helper()
	cr := (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewEmptyRange(0)
	for i := range size {
		h, ok := hashes[i]
		if !ok {
			t.Fatalf("no leaf at index %d", i)
		}
		if err := cr.Append(h, nil); err != nil {
			t.Fatal(err)
		}
	}
	root, err := cr.GetRootHash(nil)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// The one-transaction path writes Trillian's tables as Trillian's sequencer
// would: Trillian's own storage reads prove every leaf at the same root,
// Trillian's sequencer continues the tree from the stored tiles, and a
// restart reads the right border from the tiles and goes on in one
// transaction per batch.
func TestDirectCommitsAreTrilliansTree(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// The ticker never integrates: only the append after queued leaves does.
	cfg := Config{Name: "test", SignerName: "test", Signer: key, MaxBatch: 64, IntegrateEvery: time.Hour}
	l, err := Open(ctx, pgstore.New(pool), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// 700 leaves cross two full bottom tiles (256 leaves each) and start a
	// second tile of the stratum above.
	hashes := appendConcurrently(t, l, "direct", 700)
	// Batches of new leaves take one round trip: the tiles they touch were
	// written by the batch before, or are new (integrate.Unstored).
	commits := func(path string) float64 {
		return testutil.ToFloat64(l.app.metrics.commits.WithLabelValues("test", path))
	}
	if one, two := commits("one_round_trip"), commits("two_round_trips"); one == 0 || two != 0 || commits("trillian") != 0 {
		t.Fatalf("commits: %v in one round trip, %v in two, %v through Trillian; want all in one", one, two, commits("trillian"))
	}
	root, err := l.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if root.Size != 700 || !bytes.Equal(root.Hash, rootOf(t, hashes, 700)) {
		t.Fatalf("root %d/%x, want 700/%x", root.Size, root.Hash, rootOf(t, hashes, 700))
	}
	stored, err := storedRoot(ctx, l)
	if err != nil || stored.Size != root.Size || !bytes.Equal(stored.Hash, root.Hash) {
		t.Fatalf("Trillian's stored root %d/%x (%v), want %d/%x", stored.Size, stored.Hash, err, root.Size, root.Hash)
	}

	checkTrillianReads(t, pool, l, hashes, root)

	// Trillian's sequencer carries on from the stored tiles: leaves named
	// otherwise than by their hash (as the CT log's) take its path, and the
	// append after them waits for their integration.
	for i := range 99 {
		v := fmt.Appendf(nil, "sequenced by Trillian %d", i)
		if _, dup, err := l.EnqueueIdentified(ctx, LeafHash(append([]byte("identity "), v...)), v, nil); err != nil || dup {
			t.Fatalf("enqueue %d: duplicate %v, %v", i, dup, err)
		}
	}
	trillianBefore := commits("trillian")
	res, err := l.Append(ctx, []byte("sequenced by Trillian 99"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The append waited for the queued leaves' integration: its answer
	// proves it at a root that holds them all.
	if after := commits("trillian"); after != trillianBefore+1 || res.Root.Size != 800 {
		t.Fatalf("the append after queued leaves: %v batches through Trillian, root size %d; want 1 and 800", after-trillianBefore, res.Root.Size)
	}
	for i := range 100 {
		h := LeafHash(fmt.Appendf(nil, "sequenced by Trillian %d", i))
		p, err := l.ByHash(ctx, [][]byte{h})
		if err != nil || len(p) != 1 {
			t.Fatalf("leaf %d sequenced by Trillian: %v, %v", i, p, err)
		}
		hashes[p[0].Leaf.Index] = h
	}
	root, err = storedRoot(ctx, l)
	if err != nil || root.Size != 800 || !bytes.Equal(root.Hash, rootOf(t, hashes, 800)) {
		t.Fatalf("after Trillian's sequencer: root %d/%x (%v), want 800/%x", root.Size, root.Hash, err, rootOf(t, hashes, 800))
	}
	if latest, err := l.Latest(ctx); err != nil || latest.Size != 800 || !bytes.Equal(latest.Hash, root.Hash) {
		t.Fatalf("published root %d/%x (%v) after Trillian's sequencer, want the stored 800/%x", latest.Size, latest.Hash, err, root.Hash)
	}
	l.Close()

	// A restart reads the right border from the tiles and goes on directly.
	l, err = Open(ctx, pgstore.New(pool), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i, h := range appendConcurrently(t, l, "after restart", 300) {
		hashes[i] = h
	}
	if one, trillian := commits("one_round_trip"), commits("trillian"); one == 0 || trillian != 0 {
		t.Fatalf("after the restart: %v commits in one round trip, %v through Trillian; want only direct ones", one, trillian)
	}
	if n := testutil.ToFloat64(l.app.metrics.catchUps.WithLabelValues("test")); n != 0 {
		t.Fatalf("after the restart %v batches caught up from storage first, want none", n)
	}
	root, err = storedRoot(ctx, l)
	if err != nil || root.Size != 1100 || !bytes.Equal(root.Hash, rootOf(t, hashes, 1100)) {
		t.Fatalf("after the restart: root %d/%x (%v), want 1100/%x", root.Size, root.Hash, err, rootOf(t, hashes, 1100))
	}
	// Batches mixing leaves already in the log with new ones: the one
	// round trip fails on them, having written nothing, and the batch is
	// written in two.
	twoBefore := testutil.ToFloat64(l.app.metrics.commits.WithLabelValues("test", "two_round_trips"))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < 200; i += 8 {
				value := fmt.Appendf(nil, "after restart %d", i)
				if i%2 == 1 {
					value = fmt.Appendf(nil, "mixed %d", i)
				}
				res, err := l.Append(ctx, value, nil)
				if err != nil || res.Duplicate != (i%2 == 0) {
					t.Errorf("append %q: duplicate %v, %v", value, res.Duplicate, err)
					return
				}
				if !res.Duplicate {
					mu.Lock()
					hashes[res.Leaf.Index] = res.Leaf.Hash
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	root, err = storedRoot(ctx, l)
	if err != nil || root.Size != 1200 || !bytes.Equal(root.Hash, rootOf(t, hashes, 1200)) {
		t.Fatalf("after mixed batches: root %d/%x (%v), want 1200/%x", root.Size, root.Hash, err, rootOf(t, hashes, 1200))
	}
	if two := testutil.ToFloat64(l.app.metrics.commits.WithLabelValues("test", "two_round_trips")); two < twoBefore+10 {
		t.Fatalf("%v batches with duplicates took two round trips, want at least 10 of the 100", two-twoBefore)
	}
	checkTrillianReads(t, pool, l, hashes, root)
	var unsequenced int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM Unsequenced").Scan(&unsequenced); err != nil || unsequenced != 0 {
		t.Fatalf("%d leaves left queued (%v)", unsequenced, err)
	}

	// Appending leaves already in the log changes nothing.
	res, err = l.Append(ctx, []byte("direct 5"), nil)
	if err != nil || !res.Duplicate {
		t.Fatalf("re-append: %+v, %v", res, err)
	}
	if after, err := l.Latest(ctx); err != nil || after.Size != 1200 {
		t.Fatalf("size after a duplicate %d (%v), want 1200", after.Size, err)
	}
}

// checkTrillianReads reads every leaf and proves it, and consistency from
// earlier sizes, with Trillian's own storage code on the tables and tiles
// written, at root; and checks that the log's own reads agree.
func checkTrillianReads(t *testing.T, pool *pgxpool.Pool, l *Log, hashes map[uint64][]byte, root Root) {
	t.Helper()
	ctx := context.Background()
	trill := trilliantest.Open(t, pool, l.TreeID())
	if stored := trill.Root(); stored.TreeSize != root.Size || !bytes.Equal(stored.RootHash, root.Hash) {
		t.Fatalf("Trillian reads the root %d/%x, want %d/%x", stored.TreeSize, stored.RootHash, root.Size, root.Hash)
	}
	nodes := trill.Proof
	leaves := trill.Leaves(0, root.Size)
	for i := range root.Size {
		if !bytes.Equal(leaves[i].MerkleLeafHash, hashes[i]) || leaves[i].LeafIndex != int64(i) {
			t.Fatalf("Trillian reads leaf %d as %d/%x, want %x", i, leaves[i].LeafIndex, leaves[i].MerkleLeafHash, hashes[i])
		}
		n, err := proof.Inclusion(i, root.Size)
		if err != nil {
			t.Fatal(err)
		}
		trillian := nodes(n)
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, i, root.Size, hashes[i], trillian, root.Hash); err != nil {
			t.Fatalf("leaf %d proven by Trillian's storage: %v", i, err)
		}
		p, err := l.ByIndex(ctx, i)
		if err != nil || !bytes.Equal(p.Leaf.Hash, hashes[i]) || p.Root.Size != root.Size || !slices.EqualFunc(p.Proof, trillian, bytes.Equal) {
			t.Fatalf("leaf %d read by the log: %x at size %d (%v), proof differs from Trillian's: %v", i, p.Leaf.Hash, p.Root.Size, err, !slices.EqualFunc(p.Proof, trillian, bytes.Equal))
		}
	}
	for _, from := range []uint64{1, 255, 256, 257, 511, 512, root.Size - 1} {
		if from == 0 || from >= root.Size {
			continue
		}
		n, err := proof.Consistency(from, root.Size)
		if err != nil {
			t.Fatal(err)
		}
		trillian := nodes(n)
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, from, root.Size, trillian, rootOf(t, hashes, from), root.Hash); err != nil {
			t.Fatalf("consistency %d..%d from Trillian's storage: %v", from, root.Size, err)
		}
		cons, _, err := l.ConsistencyProof(ctx, from, root.Size)
		if err != nil || !slices.EqualFunc(cons, trillian, bytes.Equal) {
			t.Fatalf("consistency %d..%d from the log differs from Trillian's (%v)", from, root.Size, err)
		}
	}
}

// A batch of leaves all already in the log writes nothing, and leaves no
// trace in the tiles the next batch builds on: the one-round-trip attempt
// put the guessed leaves into the cached tiles before it failed.
func TestDuplicateBatchesLeaveTheTilesAlone(t *testing.T) {
	ctx := context.Background()
	l, pool := openTestLogPool(t)
	hashes := map[uint64][]byte{}
	add := func(value string) {
		t.Helper()
		res, err := l.Append(ctx, []byte(value), nil)
		if err != nil || res.Duplicate {
			t.Fatalf("append %q: %+v, %v", value, res, err)
		}
		hashes[res.Leaf.Index] = res.Leaf.Hash
	}
	for i := range 10 {
		add(fmt.Sprint("leaf ", i))
	}
	// A batch of 16 duplicates, formed for certain: a new leaf's commit is
	// held on a table lock while the 16 queue up behind it, so the
	// pipeline takes them all as its next batch.
	lock, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(ctx, "LOCK TABLE LeafData IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	blocker := make(chan Appended, 1)
	go func() {
		res, err := l.Append(ctx, []byte("blocker"), nil)
		if err != nil || res.Duplicate {
			t.Errorf("append blocker: %+v, %v", res, err)
		}
		blocker <- res
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("gave up waiting for %s", what)
			}
		}
	}
	waitFor("the blocker's commit to wait on the lock", func() bool {
		var n int
		pool.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()").Scan(&n) //nolint:errcheck
		return n > 0
	})
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			res, err := l.Append(ctx, []byte(fmt.Sprint("leaf ", i%10)), nil)
			if err != nil || !res.Duplicate {
				t.Errorf("re-append: %+v, %v", res, err)
			}
		})
	}
	waitFor("the duplicates to queue", func() bool { return len(l.app.queue) == 16 })
	if err := lock.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	b := <-blocker
	hashes[b.Leaf.Index] = b.Leaf.Hash
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	var m dto.Metric
	if err := l.app.metrics.batchSize.WithLabelValues("test").(prometheus.Histogram).Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.GetHistogram().GetSampleSum() < 16 || m.GetHistogram().GetSampleSum() <= float64(m.GetHistogram().GetSampleCount()) {
		t.Fatalf("batch sizes %v in %d batches: no batch of the 16 duplicates", m.GetHistogram().GetSampleSum(), m.GetHistogram().GetSampleCount())
	}
	add("new leaf")

	var raw []byte
	// A tree of fewer than 256 leaves is one tile.
	if err := pool.QueryRow(ctx, "SELECT Nodes FROM Subtree WHERE TreeId = $1", l.TreeID()).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	tile, err := integrate.Unmarshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(tile.Leaves) != 12 {
		t.Fatalf("the stored tile holds %d leaves, the tree 12", len(tile.Leaves))
	}
	root, err := storedRoot(ctx, l)
	if err != nil || root.Size != 12 || !bytes.Equal(root.Hash, rootOf(t, hashes, 12)) {
		t.Fatalf("root %d/%x (%v), want 12/%x", root.Size, root.Hash, err, rootOf(t, hashes, 12))
	}
	checkTrillianReads(t, pool, l, hashes, root)
}

// A restart of a log whose personality is up to date goes on in one
// transaction per batch, without catching up from storage first.
func TestRestartWithAHookGoesOnDirectly(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Name: "test", SignerName: "test", Signer: key, Hook: poisonHook{}}
	for run := range 2 {
		l, err := Open(ctx, pgstore.New(pool), cfg)
		if err != nil {
			t.Fatal(err)
		}
		appendConcurrently(t, l, fmt.Sprintf("run %d", run), 50)
		catchUps := testutil.ToFloat64(l.app.metrics.catchUps.WithLabelValues("test"))
		l.Close()
		if catchUps != 0 {
			t.Fatalf("run %d: %v batches caught up from storage first, want none", run, catchUps)
		}
	}
}

// storedRoot is the tree's newest stored head.
func storedRoot(ctx context.Context, l *Log) (Root, error) {
	h, err := l.Tree.store.LatestHead(ctx)
	return Root(h), err
}
