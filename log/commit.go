package log

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/trillian/storage/storagepb"
	"github.com/transparency-dev/merkle/compact"

	"github.com/signet-dev/signet/log/integrate"
	"github.com/signet-dev/signet/log/pgstore"
	"github.com/signet-dev/signet/log/tiles"
)

// The one-transaction append path. With the tree's right border in memory
// the pipeline needs nothing from Trillian's sequencer: it numbers the
// batch's new leaves after the tree's size, computes the tiles and root
// (log/integrate) and has the driver write, in one transaction and one
// commit, the leaves, the tiles, the new tree head, and the personality's
// records (index rows, SETs, watermark, checkpoint); see pgstore.AppendNew.
//
// The tables stay exactly as Trillian's sequencer would leave them, so its
// storage code reads them and its sequencer (integrating the CT log's
// queued leaves, queue.go) works on them unchanged. Nothing is ever left
// queued by this path, and a failed transaction leaves nothing behind.

// canCommitDirectly tells whether the next batch may take the one-transaction
// path: the right border is the stored tree's, and the hook has seen all of
// it.
func (a *appender) canCommitDirectly() bool {
	if a.border == nil || a.behind {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg.Hook == nil || (a.hookLoaded && a.indexed == a.border.End() && a.storedCP && a.storedCPSize == a.indexed)
}

// nextTimestamp is the integration time of the next batch: now, unless the
// published root's is not earlier (tree heads are keyed by timestamp and
// must increase).
func (a *appender) nextTimestamp() time.Time {
	now := time.Now()
	if r := a.tree.published(); r != nil && !now.After(r.Timestamp) {
		now = r.Timestamp.Add(time.Nanosecond)
	}
	return time.Unix(0, now.UnixNano())
}

// commitDirectly integrates leaves (distinct hashes) in one transaction and
// returns which were already in the log, the new root and the leaves it
// added, in index order, with the hook's sidecars. On an error the pipeline
// falls back to catching up from storage, since a failed commit may still
// have been applied.
func (a *appender) commitDirectly(ctx context.Context, leaves pgstore.Leaves) (dup []bool, root Root, added []Leaf, err error) {
	defer func() {
		if err != nil {
			a.failedCommit()
		}
	}()
	size := a.border.End()
	at := a.nextTimestamp()
	n := len(leaves.Hashes)

	// The tiles the batch may touch if every leaf is new (a superset of the
	// ones it does touch).
	batch, err := integrate.Append(a.border, leaves.Hashes)
	if err != nil {
		return nil, Root{}, nil, err
	}
	nodes := batch.Nodes
	tileIDs := integrate.TileIDs(nodes)
	// Every leaf is guessed new, which almost always holds.
	guess := make([]Leaf, n)
	for i := range guess {
		guess[i] = Leaf{Index: size + uint64(i), Hash: leaves.Hashes[i], Value: leaves.Values[i], Extra: leaves.Extras[i], IntegratedAt: at}
	}
	guessRoot := Root{Size: size + uint64(n), Hash: batch.Root, Timestamp: at}

	// Every append waits for the commit, and on a busy machine each round
	// trip to PostgreSQL costs about a millisecond of scheduling. With the
	// tiles to update known from the batches before, the batch is written
	// in one round trip, on the guess; a leaf already in the log makes it
	// fail, having written nothing, and the batch is then written in two.
	unstored := integrate.Unstored(nodes, size)
	var speculative *hookWork
	if stored, ok := a.cachedTiles(tileIDs, unstored); ok {
		// The tiles are computed while the hook signs: on a busy machine
		// waiting for them was as long as the signing.
		tiled := make(chan tileWork, 1)
		go func() {
			var w tileWork
			w.Written, w.err = integrate.UpdateTiles(nodes, stored)
			tiled <- w
		}()
		records, err := a.hookRecords(ctx, guess, guessRoot)
		tw := <-tiled
		if err != nil {
			return nil, Root{}, nil, err
		}
		if tw.err != nil {
			return nil, Root{}, nil, tw.err
		}
		err = a.store.AppendNew(ctx, size, leaves, pgstore.Commit{Tiles: pgstore.Tiles{IDs: tw.IDs, Blobs: tw.Blobs}, Head: pgstore.Head(guessRoot), Records: records})
		if err == nil {
			if err := a.committed(guessRoot, batch.Border, tw.Tiles, leaves.Hashes); err != nil {
				return nil, Root{}, nil, err
			}
			a.metrics.commits.WithLabelValues(a.cfg.Name, "one_round_trip").Inc()
			return make([]bool, n), guessRoot, guess, nil
		}
		if !errors.Is(err, pgstore.ErrLeafExists) {
			return nil, Root{}, nil, err
		}
		// The attempt changed the cached tiles in place.
		a.written = nil
		speculative = &hookWork{records, nil}
	}

	// Two round trips: the transaction's start with the leaves and the
	// tiles to update, and everything else with the commit. The hook's work
	// (signing, for the Rekor log) runs while PostgreSQL stores the leaves,
	// on the guess; if some leaves are already in the log, it is done again.
	hooked := make(chan hookWork, 1)
	if speculative != nil {
		hooked <- *speculative
	} else {
		go func() {
			r, err := a.hookRecords(ctx, guess, guessRoot)
			hooked <- hookWork{r, err}
		}()
	}
	app, err := a.store.BeginAppend(ctx, size, at, leaves, tileIDs)
	hook := <-hooked
	if err != nil {
		return nil, Root{}, nil, err
	}
	defer app.Release()
	stored := make(map[string]*storagepb.SubtreeProto, len(app.Tiles))
	for _, raw := range app.Tiles {
		t, err := integrate.Unmarshal(raw)
		if err != nil {
			return nil, Root{}, nil, err
		}
		stored[string(t.Prefix)] = t
	}
	// Usually every leaf is new and the guess holds; otherwise the new ones
	// are renumbered, and their nodes, root and hook records redone.
	seqOf := app.Sequenced
	dup = make([]bool, n)
	added = guess
	if len(seqOf) < n {
		added = make([]Leaf, 0, len(seqOf))
		for i, lf := range guess {
			s, ok := seqOf[string(lf.Hash)]
			if !ok {
				dup[i] = true
				continue
			}
			lf.Index, lf.Sidecar = s, nil
			added = append(added, lf)
		}
		slices.SortFunc(added, func(a, b Leaf) int { return cmp.Compare(a.Index, b.Index) })
	}
	addedHashes := make([][]byte, len(added))
	for i, lf := range added {
		if s := seqOf[string(lf.Hash)]; lf.Index != size+uint64(i) || s != lf.Index {
			return nil, Root{}, nil, fmt.Errorf("leaf %x numbered %d, want %d", lf.Hash, s, size+uint64(i))
		}
		addedHashes[i] = lf.Hash
	}
	if len(added) == 0 {
		// Only duplicates: nothing was written.
		if err := app.Rollback(ctx); err != nil {
			return nil, Root{}, nil, err
		}
		return dup, *a.tree.published(), nil, nil
	}
	root = guessRoot
	if len(added) < n {
		if batch, err = integrate.Append(a.border, addedHashes); err != nil {
			return nil, Root{}, nil, err
		}
		nodes = batch.Nodes
		root = Root{Size: size + uint64(len(added)), Hash: batch.Root, Timestamp: at}
		hook.records, hook.err = a.hookRecords(ctx, added, root)
	}
	if hook.err != nil {
		return nil, Root{}, nil, hook.err
	}
	written, err := integrate.UpdateTiles(nodes, stored)
	if err != nil {
		return nil, Root{}, nil, err
	}
	if err := app.Commit(ctx, pgstore.Commit{Tiles: pgstore.Tiles{IDs: written.IDs, Blobs: written.Blobs}, Head: pgstore.Head(root), Records: hook.records}); err != nil {
		return nil, Root{}, nil, err
	}
	if err := a.committed(root, batch.Border, written.Tiles, addedHashes); err != nil {
		return nil, Root{}, nil, err
	}
	a.metrics.commits.WithLabelValues(a.cfg.Name, "two_round_trips").Inc()
	return dup, root, added, nil
}

// failedCommit makes the next batch catch up from storage: a commit that
// failed may still have been applied, and the tiles the pipeline keeps may
// have been changed in place by Trillian's tile code.
func (a *appender) failedCommit() {
	a.behind = true
	a.written = nil
	a.recent = nil
	a.mu.Lock()
	a.hookLoaded = false
	a.mu.Unlock()
}

// committed brings the right border, the hook's progress, the tile caches
// and the published root up to a batch just committed.
func (a *appender) committed(root Root, border *compact.Range, written []*storagepb.SubtreeProto, hashes [][]byte) error {
	if a.cfg.Hook != nil {
		a.mu.Lock()
		a.indexed, a.storedCPSize = root.Size, root.Size
		a.mu.Unlock()
	}
	if border.End() != root.Size {
		return fmt.Errorf("the right border is at size %d after committing size %d", border.End(), root.Size)
	}
	a.border = border
	// The tree's last leaf hashes: with them, every new leaf's group is
	// known (recentGroups) and a tile the batch completes, which the cache
	// keeps compacted, costs its proofs no read.
	if a.recentEnd != root.Size-uint64(len(hashes)) {
		a.recent = nil
	}
	a.recent = append(a.recent[max(0, len(a.recent)-(tiles.GroupSize-1)):len(a.recent):len(a.recent)], hashes...)
	a.recentEnd = root.Size
	// Tiles are rewritten only at the tree's right edge (one per stratum)
	// and complete ones never again, so a handful are kept.
	if a.written == nil || len(a.written) > maxCachedTiles {
		a.written = map[string]*storagepb.SubtreeProto{}
	}
	for _, t := range written {
		a.written[string(t.Prefix)] = t
		// The new leaves' proofs, and everyone's, read these.
		decoded, err := tiles.FromProto(t)
		if err != nil {
			return fmt.Errorf("the tile just written: %w", err)
		}
		a.cfg.Tiles.Put(a.store.ID(), decoded)
	}
	a.tree.publish(root)
	return nil
}

// recentGroups gives each of leaves (the batch just committed, in index
// order) the hashes of its group, when the tree's last hashes (a.recent)
// hold the whole group.
func (a *appender) recentGroups(leaves []Leaf) {
	first := a.recentEnd - uint64(len(a.recent))
	for i := range leaves {
		start := leaves[i].Index / tiles.GroupSize * tiles.GroupSize
		if start < first || start+tiles.GroupSize > a.recentEnd {
			continue
		}
		leaves[i].Group = bytes.Join(a.recent[start-first:start-first+tiles.GroupSize], nil)
	}
}

// maxCachedTiles bounds the tile cache; a tree of 2^64 leaves has 8 strata.
const maxCachedTiles = 64

// cachedTiles returns the stored versions of tiles, if the cache holds
// every one that storage holds (unstored: the ones it cannot hold yet).
// The cache holds what the pipeline last wrote of each tile: it is the
// only writer, and it empties the cache when anything else may have
// written (Trillian's sequencer), a commit failed, or an attempt changed
// the tiles in place (Trillian's cache updates the tiles it is given)
// without committing.
func (a *appender) cachedTiles(ids [][]byte, unstored map[string]bool) (map[string]*storagepb.SubtreeProto, bool) {
	out := make(map[string]*storagepb.SubtreeProto, len(ids))
	for _, id := range ids {
		t, ok := a.written[string(id)]
		if !ok {
			if unstored[string(id)] {
				continue
			}
			return nil, false
		}
		out[string(id)] = t
	}
	return out, true
}

// tileWork is integrate.UpdateTiles' answer, from a goroutine.
type tileWork struct {
	integrate.Written
	err error
}

type hookWork struct {
	records *pgstore.Records
	err     error
}

// hookRecords signs the checkpoint at root and has the hook make its
// records of leaves, the ones added to reach root (nil without a hook).
func (a *appender) hookRecords(ctx context.Context, leaves []Leaf, root Root) (*pgstore.Records, error) {
	if a.cfg.Hook == nil {
		return nil, nil
	}
	cp, err := a.tree.Checkpoint(root)
	if err != nil {
		return nil, fmt.Errorf("signing the checkpoint at size %d: %w", root.Size, err)
	}
	b := Batch{TreeID: a.store.ID(), Offset: a.tree.offset, Leaves: leaves, NewSize: root.Size, Checkpoint: cp, New: true}
	r, err := a.records(ctx, b)
	if err != nil {
		return nil, fmt.Errorf("indexing leaves %d..%d: %w", root.Size-uint64(len(leaves)), root.Size, err)
	}
	return &r, nil
}
