package log

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/signet-dev/signet/internal/db/dbtest"
	"github.com/signet-dev/signet/log/note"
	"github.com/signet-dev/signet/log/pgstore"
)

// A follower reads what the leader stores: every entry the leader
// acknowledged before a read began is found and proven by the follower,
// at a root whose checkpoint is the leader's own; the follower writes
// nothing; and a follower with another key than the tree's is refused.
func TestFollowerReadsWhatTheLeaderAcknowledged(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	cfg := Config{Name: "test", SignerName: "test", Signer: newKey(t), Hook: poisonHook{}}
	leader, err := Open(ctx, pgstore.New(pool), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer leader.Close()
	follower, err := Follow(ctx, pgstore.New(pool), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer follower.Close()
	if root, err := follower.Latest(ctx); err != nil || root.Size != 0 || !bytes.Equal(root.Hash, rfc6962.DefaultHasher.EmptyRoot()) {
		t.Fatalf("an empty log followed: %+v %v", root, err)
	}
	if _, err := follower.Append(ctx, []byte("x"), nil); !errors.Is(err, ErrFollower) {
		t.Fatalf("an append to a follower: %v", err)
	}

	// Appends by the leader, each read through the follower as soon as it
	// is acknowledged, from several goroutines at once.
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				value := fmt.Appendf(nil, "followed %d %d", w, i)
				a, err := leader.Append(ctx, value, []byte("e"))
				if err != nil {
					errs <- err
					return
				}
				p, err := follower.ByIndex(ctx, a.Leaf.Index)
				if err != nil {
					errs <- fmt.Errorf("leaf %d acknowledged by the leader, read through the follower: %w", a.Leaf.Index, err)
					return
				}
				if !bytes.Equal(p.Leaf.Value, value) || string(p.Leaf.Sidecar) != "sidecar e" {
					errs <- fmt.Errorf("leaf %d read as %q with sidecar %q", a.Leaf.Index, p.Leaf.Value, p.Leaf.Sidecar)
					return
				}
				if err := proof.VerifyInclusion(rfc6962.DefaultHasher, a.Leaf.Index, p.Root.Size, p.Leaf.Hash, p.Proof, p.Root.Hash); err != nil {
					errs <- fmt.Errorf("leaf %d's proof from the follower: %w", a.Leaf.Index, err)
					return
				}
				byHash, err := follower.ByHash(ctx, [][]byte{LeafHash(value)})
				if err != nil || len(byHash) != 1 || byHash[0].Leaf.Index != a.Leaf.Index {
					errs <- fmt.Errorf("leaf %d by hash through the follower: %v %v", a.Leaf.Index, byHash, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	root, err := follower.Latest(ctx)
	if err != nil || root.Size != 200 {
		t.Fatalf("the follower's root after 200 appends: %+v %v", root, err)
	}
	want, _ := leader.Latest(ctx)
	if !bytes.Equal(root.Hash, want.Hash) {
		t.Fatalf("the follower's root %x is not the leader's %x", root.Hash, want.Hash)
	}
	stored, err := leader.StoredCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cp, err := follower.Checkpoint(root); err != nil || cp != stored {
		t.Fatalf("the follower's checkpoint is not the one the leader stored: %v\n%s\n%s", err, cp, stored)
	}
	// A root it no longer remembers, it signs as the leader would.
	old := Root{Size: 1, Hash: rfc6962.DefaultHasher.HashLeaf([]byte("whatever"))}
	signed, err := follower.Checkpoint(old)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := note.ParseSigned(signed); err != nil || c.Size != 1 {
		t.Fatalf("a checkpoint the follower signed: %v %+v", err, c)
	}
	if _, _, err := follower.ConsistencyProof(ctx, 10, root.Size); err != nil {
		t.Fatal(err)
	}

	// A tile the leader completed since the follower last looked: its
	// first read refreshes the root, and it is the leader's tile.
	for i := range 56 {
		if _, err := leader.Append(ctx, fmt.Appendf(nil, "tile %d", i), []byte("e")); err != nil {
			t.Fatal(err)
		}
	}
	got, err := follower.TileHashes(ctx, 0, 0, TileWidth)
	if err != nil {
		t.Fatalf("a full tile through the follower: %v", err)
	}
	if want, err := leader.TileHashes(ctx, 0, 0, TileWidth); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the follower's tile is not the leader's: %v", err)
	}

	cfg.Signer = newKey(t)
	var changed *KeyChangedError
	if f, err := Follow(ctx, pgstore.New(pool), cfg); !errors.As(err, &changed) {
		if f != nil {
			f.Close()
		}
		t.Fatalf("following with a key that is not the tree's: %v", err)
	}
}
