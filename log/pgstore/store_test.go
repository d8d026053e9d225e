package pgstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/signet-dev/signet/internal/db/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func newStore(t *testing.T) *Store {
	t.Helper()
	return New(dbtest.NewPool(t))
}

func leavesOf(values ...string) Leaves {
	var l Leaves
	for _, v := range values {
		l.Hashes = append(l.Hashes, rfc6962.DefaultHasher.HashLeaf([]byte(v)))
		l.Values = append(l.Values, []byte(v))
		l.Extras = append(l.Extras, []byte("extra "+v))
	}
	return l
}

// A log name owns one current tree; retiring it lists it among the retired
// ones and leaves the name free for the next key's tree.
func TestTreesOfALogName(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	if _, _, err := s.CurrentTree(ctx, "rekor"); !errors.Is(err, ErrNoTree) {
		t.Fatalf("a new store's tree: %v, want ErrNoTree", err)
	}
	first, err := s.CreateTree(ctx, "rekor", []byte("key 1"))
	if err != nil {
		t.Fatal(err)
	}
	got, key, err := s.CurrentTree(ctx, "rekor")
	if err != nil || got.ID() != first.ID() || string(key) != "key 1" {
		t.Fatalf("current tree %v with key %q (%v), want %d with key 1", got, key, err, first.ID())
	}
	if h, err := first.LatestHead(ctx); err != nil || h.Size != 0 || !bytes.Equal(h.Hash, rfc6962.DefaultHasher.EmptyRoot()) {
		t.Fatalf("a new tree's head %d/%x (%v), want the empty tree's", h.Size, h.Hash, err)
	}
	if err := s.RetireTree(ctx, "ct", first.ID()); err == nil {
		t.Fatal("retired another log's tree")
	}
	if err := s.RetireTree(ctx, "rekor", first.ID()); err != nil {
		t.Fatal(err)
	}
	if err := s.RetireTree(ctx, "rekor", first.ID()); err == nil {
		t.Fatal("retired a tree twice")
	}
	if _, _, err := s.CurrentTree(ctx, "rekor"); !errors.Is(err, ErrNoTree) {
		t.Fatalf("after retiring: %v, want ErrNoTree", err)
	}
	second, err := s.CreateTree(ctx, "rekor", []byte("key 2"))
	if err != nil {
		t.Fatal(err)
	}
	retired, err := s.RetiredTrees(ctx, "rekor")
	if err != nil || len(retired) != 1 || retired[0].ID != first.ID() || string(retired[0].PublicKey) != "key 1" || retired[0].Retired.Before(retired[0].Created) {
		t.Fatalf("retired trees %+v (%v), want tree %d with key 1", retired, err, first.ID())
	}
	if got, _, err := s.CurrentTree(ctx, "rekor"); err != nil || got.ID() != second.ID() {
		t.Fatalf("current tree after the rotation: %v (%v), want %d", got, err, second.ID())
	}
}

// AppendNew writes everything of a batch, or, when a leaf is already in the
// tree, nothing and ErrLeafExists.
func TestAppendNewIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	tree, err := s.CreateTree(ctx, "test", []byte("key"))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	first := leavesOf("a", "b")
	key := sha256.Sum256([]byte("k"))
	records := &Records{Keys: [][]byte{key[:]}, KeyLeaves: [][]byte{first.Hashes[1]}, SidecarIndexes: []int64{0, 1}, Sidecars: [][]byte{[]byte("sa"), []byte("sb")}, Size: 2, Checkpoint: "cp 2", New: true}
	commit := Commit{Tiles: Tiles{IDs: [][]byte{{}}, Blobs: [][]byte{[]byte("tile at 2")}}, Head: Head{Size: 2, Hash: []byte("root 2"), Timestamp: at}, Records: records}
	if err := tree.AppendNew(ctx, 0, first, commit); err != nil {
		t.Fatal(err)
	}
	// "b" again, with a new leaf: nothing of it may be written.
	again := leavesOf("c", "b")
	commit = Commit{Tiles: Tiles{IDs: [][]byte{{}}, Blobs: [][]byte{[]byte("tile at 4")}}, Head: Head{Size: 4, Hash: []byte("root 4"), Timestamp: at.Add(time.Second)}}
	if err := tree.AppendNew(ctx, 2, again, commit); !errors.Is(err, ErrLeafExists) {
		t.Fatalf("appending a leaf already in the tree: %v, want ErrLeafExists", err)
	}
	leaves, err := tree.LeavesInRange(ctx, 0, 10, With{Sidecar: true})
	if err != nil || len(leaves) != 2 {
		t.Fatalf("leaves %+v (%v), want a and b", leaves, err)
	}
	for i, want := range []string{"a", "b"} {
		lf := leaves[i]
		if lf.Index != uint64(i) || string(lf.Value) != want || string(lf.Extra) != "extra "+want || string(lf.Sidecar) != "s"+want || !lf.IntegratedAt.Equal(time.Unix(0, at.UnixNano())) {
			t.Fatalf("leaf %d: %+v", i, lf)
		}
	}
	if h, err := tree.LatestHead(ctx); err != nil || h.Size != 2 || string(h.Hash) != "root 2" {
		t.Fatalf("head %d/%q (%v), want the first batch's", h.Size, h.Hash, err)
	}
	if tiles, err := tree.Tiles(ctx, [][]byte{{}, {1}}); err != nil || len(tiles) != 1 || string(tiles[""]) != "tile at 2" {
		t.Fatalf("tiles %q (%v), want the first batch's", tiles, err)
	}
	if size, cp, err := tree.Watermark(ctx); err != nil || size != 2 || cp != "cp 2" {
		t.Fatalf("watermark %d %q (%v), want 2 and its checkpoint", size, cp, err)
	}
	nothing := sha256.Sum256([]byte("nothing"))
	found, err := s.Lookup(ctx, []int64{tree.ID()}, [][]byte{key[:], nothing[:]}, 10)
	if err != nil || len(found) != 1 || found[0].TreeID != tree.ID() || !bytes.Equal(found[0].Hash, first.Hashes[1]) {
		t.Fatalf("lookup %+v (%v), want b", found, err)
	}
	if found, err := s.Lookup(ctx, []int64{tree.ID() + 1}, [][]byte{key[:]}, 10); err != nil || len(found) != 0 {
		t.Fatalf("lookup in another tree %+v (%v), want nothing", found, err)
	}
}

// BeginAppend numbers only the leaves not already in the tree, in the
// batch's order, and a batch rolled back or left unreleased writes nothing.
func TestBeginAppendNumbersTheNewLeaves(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	tree, err := s.CreateTree(ctx, "test", []byte("key"))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	if err := tree.AppendNew(ctx, 0, leavesOf("a", "b"), Commit{Head: Head{Size: 2, Hash: []byte("root 2"), Timestamp: at}}); err != nil {
		t.Fatal(err)
	}
	batch := leavesOf("x", "a", "y", "b", "z")
	for _, end := range []string{"rollback", "release"} {
		app, err := tree.BeginAppend(ctx, 2, at.Add(time.Second), batch, nil)
		if err != nil {
			t.Fatal(err)
		}
		if end == "rollback" {
			if err := app.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
		}
		app.Release()
		if leaves, err := tree.LeavesInRange(ctx, 0, 10, With{}); err != nil || len(leaves) != 2 {
			t.Fatalf("after %s: %d leaves (%v), want 2", end, len(leaves), err)
		}
	}
	app, err := tree.BeginAppend(ctx, 2, at.Add(2*time.Second), batch, [][]byte{{}})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Release()
	var got []string
	for h, seq := range app.Sequenced {
		got = append(got, fmt.Sprintf("%d:%x", seq, h[:2]))
	}
	slices.Sort(got)
	want := []string{fmt.Sprintf("2:%x", batch.Hashes[0][:2]), fmt.Sprintf("3:%x", batch.Hashes[2][:2]), fmt.Sprintf("4:%x", batch.Hashes[4][:2])}
	if !slices.Equal(got, want) {
		t.Fatalf("sequenced %v, want %v", got, want)
	}
	records := &Records{SidecarIndexes: []int64{1, 2}, Sidecars: [][]byte{[]byte("repeat"), []byte("sidecar 2")}, Size: 3}
	if err := app.Commit(ctx, Commit{Tiles: Tiles{IDs: [][]byte{{}}, Blobs: [][]byte{[]byte("tile")}}, Head: Head{Size: 5, Hash: []byte("root 5"), Timestamp: at.Add(2 * time.Second)}, Records: records}); err != nil {
		t.Fatal(err)
	}
	leaves, err := tree.LeavesByHash(ctx, [][]byte{batch.Hashes[4], batch.Hashes[1]}, With{Sidecar: true})
	if err != nil || len(leaves) != 2 {
		t.Fatalf("leaves by hash %+v (%v), want z and a", leaves, err)
	}
	slices.SortFunc(leaves, func(a, b Leaf) int { return int(a.Index) - int(b.Index) })
	if string(leaves[0].Value) != "a" || leaves[0].Index != 0 || string(leaves[1].Value) != "z" || leaves[1].Index != 4 {
		t.Fatalf("leaves by hash %+v, want a at 0 and z at 4", leaves)
	}
	// Records written again (catching up) keep the first row, and the
	// watermark never moves back.
	if err := tree.WriteRecords(ctx, Records{SidecarIndexes: []int64{2}, Sidecars: [][]byte{[]byte("again")}, Size: 1}); err != nil {
		t.Fatal(err)
	}
	if leaves, err := tree.LeavesInRange(ctx, 2, 1, With{Sidecar: true}); err != nil || len(leaves) != 1 || string(leaves[0].Sidecar) != "sidecar 2" {
		t.Fatalf("leaf 2 %+v (%v), want its first sidecar", leaves, err)
	}
	if size, cp, err := tree.Watermark(ctx); err != nil || size != 3 || cp != "" {
		t.Fatalf("watermark %d %q (%v), want 3 and no checkpoint", size, cp, err)
	}
	if err := tree.WriteRecords(ctx, Records{Keys: [][]byte{[]byte("k")}}); err == nil {
		t.Fatal("wrote a key without its leaf")
	}
}

// Queued leaves are stored once per identity and integrated by Trillian's
// sequencer.
func TestEnqueueOncePerIdentity(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	tree, err := s.CreateTree(ctx, "ct", []byte("key"))
	if err != nil {
		t.Fatal(err)
	}
	id := func(n int) []byte {
		sum := sha256.Sum256(fmt.Appendf(nil, "id %d", n))
		return sum[:]
	}
	// Trillian's sequencer would refuse to dequeue it, and every leaf
	// queued after it would wait forever.
	if _, err := tree.Enqueue(ctx, time.Now(), [][]byte{[]byte("short id")}, leavesOf("short")); err == nil {
		t.Fatal("queued a leaf whose identity is not a digest")
	}
	first := leavesOf("one", "two")
	queued, err := tree.Enqueue(ctx, time.Now(), [][]byte{id(1), id(2)}, first)
	if err != nil || len(queued) != 2 {
		t.Fatalf("queued %x (%v), want both", queued, err)
	}
	// id 2 again with another value: not queued, and its stored value is
	// the first one.
	queued, err = tree.Enqueue(ctx, time.Now(), [][]byte{id(2), id(3)}, leavesOf("two again", "three"))
	if err != nil || len(queued) != 1 || !bytes.Equal(queued[0], id(3)) {
		t.Fatalf("queued %x (%v), want id 3 only", queued, err)
	}
	stored, err := tree.StoredValues(ctx, [][]byte{id(2), id(9)})
	if err != nil || len(stored) != 1 || string(stored[string(id(2))]) != "two" {
		t.Fatalf("stored values %q (%v), want id 2's first", stored, err)
	}
	n, err := tree.IntegrateQueued(ctx, 2)
	if err != nil || n != 3 {
		t.Fatalf("integrated %d (%v), want 3", n, err)
	}
	if h, err := tree.LatestHead(ctx); err != nil || h.Size != 3 {
		t.Fatalf("head size %d (%v), want 3", h.Size, err)
	}
	if n, err := tree.IntegrateQueued(ctx, 2); err != nil || n != 0 {
		t.Fatalf("integrated %d more (%v), want 0", n, err)
	}
}

// LeafGroups serves whole groups of leaf hashes, in index order, and leaves
// out a group the tree does not hold yet.
func TestLeafGroups(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	tree, err := s.CreateTree(ctx, "test", []byte("key"))
	if err != nil {
		t.Fatal(err)
	}
	// Another tree with other leaves at the same indexes, added first.
	other, err := s.CreateTree(ctx, "other", []byte("key"))
	if err != nil {
		t.Fatal(err)
	}
	otherLeaves := leavesOf("o0", "o1", "o2", "o3", "o4", "o5", "o6", "o7", "o8", "o9")
	if err := other.AppendNew(ctx, 0, otherLeaves, Commit{Head: Head{Size: 10, Hash: []byte("root"), Timestamp: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	var values []string
	for i := range 10 {
		values = append(values, fmt.Sprint("leaf ", i))
	}
	leaves := leavesOf(values...)
	if err := tree.AppendNew(ctx, 0, leaves, Commit{Head: Head{Size: 10, Hash: []byte("root"), Timestamp: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	groups, err := tree.LeafGroups(ctx, []uint64{1, 0, 2}, 4)
	if err != nil || len(groups) != 2 {
		t.Fatalf("groups %x (%v), want 0 and 1", groups, err)
	}
	for g, first := range []int{0, 4} {
		if want := bytes.Join(leaves.Hashes[first:first+4], nil); !bytes.Equal(groups[uint64(g)], want) {
			t.Fatalf("group %d: %x, want %x", g, groups[uint64(g)], want)
		}
	}
	// Read with a leaf, a group is the same (shorter at the right edge).
	for _, index := range []uint64{5, 9} {
		read, err := tree.LeavesInRange(ctx, index, 1, With{Group: 4})
		want := bytes.Join(leaves.Hashes[index-index%4:min(index-index%4+4, 10)], nil)
		if err != nil || len(read) != 1 || !bytes.Equal(read[0].Group, want) {
			t.Fatalf("leaf %d read with its group %x (%v), want %x", index, read, err, want)
		}
	}
	byHash, err := tree.LeavesByHash(ctx, [][]byte{leaves.Hashes[6]}, With{Group: 4, Sidecar: true})
	if err != nil || len(byHash) != 1 || !bytes.Equal(byHash[0].Group, groups[1]) || byHash[0].Sidecar != nil {
		t.Fatalf("leaf 6 read by hash %x (%v), want its group and no sidecar", byHash, err)
	}
}

// A tree's cosigned checkpoint is kept per tree and only grows: storing an
// older one (a slow round finishing after a newer one) keeps the newer.
func TestWitnessedOnlyGrows(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	a, err := s.CreateTree(ctx, "rekor-v2", []byte("key a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.CreateTree(ctx, "other", []byte("key b"))
	if err != nil {
		t.Fatal(err)
	}
	if n, cp, err := a.Witnessed(ctx); err != nil || n != 0 || cp != "" {
		t.Fatalf("before any: %d %q %v", n, cp, err)
	}
	for _, step := range []struct {
		size   uint64
		note   string
		stored bool
	}{{5, "five", true}, {9, "nine", true}, {7, "seven", false}, {9, "nine again", true}} {
		stored, err := a.StoreWitnessed(ctx, step.size, step.note)
		if err != nil || stored != step.stored {
			t.Fatalf("storing %q: stored %v (%v), want %v", step.note, stored, err, step.stored)
		}
	}
	if n, cp, err := a.Witnessed(ctx); err != nil || n != 9 || cp != "nine again" {
		t.Fatalf("kept %d %q (%v), want 9 \"nine again\"", n, cp, err)
	}
	if n, cp, err := b.Witnessed(ctx); err != nil || n != 0 || cp != "" {
		t.Fatalf("another tree got %d %q (%v)", n, cp, err)
	}
}

// A store fenced by the writer lease's token commits only while the token
// is the lease's: once another server took the lease (the token moved on),
// a batch, by either commit path, rolls back whole with ErrFenced.
func TestFencedByTheWriterLease(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	tree, err := s.CreateTree(ctx, "test", []byte("key"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, "INSERT INTO signet_writer_lease (holder, address, token, expires_at) VALUES ('me', 'here', 7, now() + interval '1 hour')"); err != nil {
		t.Fatal(err)
	}
	s.Fence(7, "me")
	at := time.Now()
	commit := func(size uint64, root string, d time.Duration) Commit {
		return Commit{Tiles: Tiles{IDs: [][]byte{{}}, Blobs: [][]byte{[]byte("tile " + root)}}, Head: Head{Size: size, Hash: []byte(root), Timestamp: at.Add(d)}}
	}
	if err := tree.AppendNew(ctx, 0, leavesOf("a"), commit(1, "root 1", 0)); err != nil {
		t.Fatalf("while holding the lease: %v", err)
	}
	if _, err := s.pool.Exec(ctx, "UPDATE signet_writer_lease SET holder = 'other', token = 8"); err != nil {
		t.Fatal(err)
	}
	if err := tree.AppendNew(ctx, 1, leavesOf("b"), commit(2, "root 2", time.Second)); !errors.Is(err, ErrFenced) {
		t.Fatalf("AppendNew after losing the lease: %v, want ErrFenced", err)
	}
	a, err := tree.BeginAppend(ctx, 1, at.Add(2*time.Second), leavesOf("c"), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = a.Commit(ctx, commit(2, "root 2c", 2*time.Second))
	a.Release()
	if !errors.Is(err, ErrFenced) {
		t.Fatalf("Append.Commit after losing the lease: %v, want ErrFenced", err)
	}
	if err := tree.WriteRecords(ctx, Records{Size: 1, Checkpoint: "a deposed writer's"}); !errors.Is(err, ErrFenced) {
		t.Fatalf("WriteRecords after losing the lease: %v, want ErrFenced", err)
	}
	if _, cp, err := tree.Watermark(ctx); err != nil || cp != "" {
		t.Fatalf("watermark checkpoint %q (%v): fenced records were written", cp, err)
	}
	if h, err := tree.LatestHead(ctx); err != nil || h.Size != 1 || string(h.Hash) != "root 1" {
		t.Fatalf("head %d/%q (%v): a fenced batch was written", h.Size, h.Hash, err)
	}
	if leaves, err := tree.LeavesInRange(ctx, 0, 10, With{}); err != nil || len(leaves) != 1 {
		t.Fatalf("leaves %+v (%v): a fenced batch's leaves were written", leaves, err)
	}

	// Trillian's sequencer (the CT log's queued leaves) is fenced too.
	ct, err := s.CreateTree(ctx, "ct", []byte("key"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("queued"))
	if _, err := ct.Enqueue(ctx, time.Now(), [][]byte{sum[:]}, leavesOf("queued")); err != nil {
		t.Fatal(err)
	}
	if n, err := ct.IntegrateQueued(ctx, 10); !errors.Is(err, ErrFenced) || n != 0 {
		t.Fatalf("IntegrateQueued after losing the lease: %d, %v; want 0, ErrFenced", n, err)
	}
	if h, err := ct.LatestHead(ctx); err != nil || h.Size != 0 {
		t.Fatalf("head size %d (%v): a deposed writer's sequencer integrated", h.Size, err)
	}
	s.Fence(8, "other") // as the new holder
	if n, err := ct.IntegrateQueued(ctx, 10); err != nil || n != 1 {
		t.Fatalf("IntegrateQueued by the lease's holder: %d, %v; want 1", n, err)
	}
}
