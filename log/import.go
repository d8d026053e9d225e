package log

import (
	"context"
	"fmt"

	"github.com/google/trillian/storage/storagepb"

	"github.com/signet-dev/signet/log/integrate"
	"github.com/signet-dev/signet/log/pgstore"
)

// Bulk loading: a whole batch of leaves written as the one-transaction path
// writes it (the same rows in LeafData and SequencedLeafData, tiles, tree
// head, and the hook's records, which sign SETs and the checkpoint), but
// with PostgreSQL's COPY for the leaves and batches as large as the caller
// likes. It is for filling a log offline (signet-bench --fill), so a log of
// tens of millions of entries can be measured: through the API a fill runs
// at a few thousand entries per second.

type exclusiveWork struct {
	f    func() error
	done chan error
}

// onPipeline runs f on the pipeline goroutine, between batches, so f may use
// what only the pipeline touches (the right border, the tile state).
func (a *appender) onPipeline(ctx context.Context, f func() error) error {
	x := exclusiveWork{f: f, done: make(chan error, 1)}
	select {
	case a.exclusive <- x:
	case <-a.stop:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// f runs to its end, on ctx: waiting for it keeps the caller's view of
	// the tree exact.
	return <-x.done
}

func (a *appender) importBatch(ctx context.Context, values, extras [][]byte) (root Root, err error) {
	defer func() {
		if err != nil {
			a.failedCommit()
		}
	}()
	if !a.canCommitDirectly() {
		// Catch up first (a crash's queue, the hook); then the border is
		// the stored tree's.
		if _, _, err := a.integrateAndIndex(ctx); err != nil {
			return Root{}, err
		}
		a.behind = false
	}
	if len(values) == 0 {
		return *a.tree.published(), nil
	}
	size := a.border.End()
	at := a.nextTimestamp()
	leaves := pgstore.Leaves{Hashes: make([][]byte, len(values)), Values: values, Extras: extras}
	added := make([]Leaf, len(values))
	for i, v := range values {
		leaves.Hashes[i] = LeafHash(v)
		added[i] = Leaf{Index: size + uint64(i), Hash: leaves.Hashes[i], Value: v, Extra: extras[i], IntegratedAt: at}
	}
	batch, err := integrate.Append(a.border, leaves.Hashes)
	if err != nil {
		return Root{}, err
	}
	root = Root{Size: size + uint64(len(values)), Hash: batch.Root, Timestamp: at}
	records, err := a.hookRecords(ctx, added, root)
	if err != nil {
		return Root{}, err
	}
	stored, err := a.storedTiles(ctx, integrate.TileIDs(batch.Nodes))
	if err != nil {
		return Root{}, err
	}
	written, err := integrate.UpdateTiles(batch.Nodes, stored)
	if err != nil {
		return Root{}, err
	}
	if err := a.store.Import(ctx, size, leaves, pgstore.Commit{Tiles: pgstore.Tiles{IDs: written.IDs, Blobs: written.Blobs}, Head: pgstore.Head(root), Records: records}); err != nil {
		return Root{}, err
	}
	if err := a.committed(root, batch.Border, written.Tiles, leaves.Hashes); err != nil {
		return Root{}, err
	}
	return root, nil
}

// storedTiles reads the stored versions of tiles by ID (absent: not stored
// yet), preferring the ones the pipeline last wrote.
func (a *appender) storedTiles(ctx context.Context, ids [][]byte) (map[string]*storagepb.SubtreeProto, error) {
	out := make(map[string]*storagepb.SubtreeProto, len(ids))
	var missing [][]byte
	for _, id := range ids {
		if t, ok := a.written[string(id)]; ok {
			out[string(id)] = t
		} else {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	raws, err := fetchTilesDirect(ctx, a.store, missing)
	if err != nil {
		return nil, fmt.Errorf("reading %d tiles: %w", len(missing), err)
	}
	for _, raw := range raws {
		t, err := integrate.Unmarshal(raw)
		if err != nil {
			return nil, err
		}
		out[string(t.Prefix)] = t
	}
	return out, nil
}
