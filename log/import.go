package log

import (
	"context"
	"fmt"
	"time"

	"github.com/google/trillian/storage/storagepb"
	"github.com/jackc/pgx/v5"

	"github.com/signet-dev/signet/log/integrate"
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
func (l *Log) onPipeline(ctx context.Context, f func() error) error {
	x := exclusiveWork{f: f, done: make(chan error, 1)}
	select {
	case l.exclusive <- x:
	case <-l.stop:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// f runs to its end, on ctx: waiting for it keeps the caller's view of
	// the tree exact.
	return <-x.done
}

// Import appends leaves (values with their extras) in index order, all new,
// in one transaction, and returns the new root. A leaf already in the log
// fails the whole import with nothing written. Appends waiting meanwhile
// are integrated after it.
func (l *Log) Import(ctx context.Context, values, extras [][]byte) (Root, error) {
	if l.frozen != nil {
		return Root{}, ErrFrozen
	}
	if len(values) != len(extras) {
		return Root{}, fmt.Errorf("log %s: importing %d values with %d extras", l.cfg.Name, len(values), len(extras))
	}
	var root Root
	err := l.onPipeline(ctx, func() error {
		var err error
		root, err = l.importBatch(ctx, values, extras)
		return err
	})
	if err != nil {
		return Root{}, fmt.Errorf("log %s: importing %d leaves: %w", l.cfg.Name, len(values), err)
	}
	return root, nil
}

func (l *Log) importBatch(ctx context.Context, values, extras [][]byte) (root Root, err error) {
	defer func() {
		if err != nil {
			l.failedCommit()
		}
	}()
	if !l.canCommitDirectly() {
		// Catch up first (a crash's queue, the hook); then the border is
		// the stored tree's.
		if _, _, err := l.integrateAndIndex(ctx); err != nil {
			return Root{}, err
		}
		l.behind = false
	}
	if len(values) == 0 {
		return *l.published(), nil
	}
	size := l.border.End()
	now := l.ts.Now().UnixNano()
	if r := l.published(); r != nil {
		now = max(now, r.Timestamp.UnixNano()+1)
	}
	hashes := make([][]byte, len(values))
	leaves := make([]Leaf, len(values))
	for i, v := range values {
		hashes[i] = LeafHash(v)
		leaves[i] = Leaf{Index: size + uint64(i), Hash: hashes[i], Value: v, Extra: extras[i], IntegratedAt: time.Unix(0, now)}
	}
	batch, err := integrate.Append(l.border, hashes)
	if err != nil {
		return Root{}, err
	}
	root = Root{Size: size + uint64(len(values)), Hash: batch.Root, Timestamp: time.Unix(0, now)}
	hook, err := l.hookStatements(ctx, leaves, root)
	if err != nil {
		return Root{}, err
	}
	stored, err := l.storedTiles(ctx, integrate.TileIDs(batch.Nodes))
	if err != nil {
		return Root{}, err
	}
	written, err := integrate.UpdateTiles(batch.Nodes, stored)
	if err != nil {
		return Root{}, err
	}
	err = pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"leafdata"},
			[]string{"treeid", "leafidentityhash", "leafvalue", "extradata", "queuetimestampnanos"},
			pgx.CopyFromSlice(len(leaves), func(i int) ([]any, error) {
				return []any{l.tree.TreeId, hashes[i], values[i], extras[i], now}, nil
			})); err != nil {
			return fmt.Errorf("copying the leaves: %w", err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"sequencedleafdata"},
			[]string{"treeid", "sequencenumber", "leafidentityhash", "merkleleafhash", "integratetimestampnanos"},
			pgx.CopyFromSlice(len(leaves), func(i int) ([]any, error) {
				return []any{l.tree.TreeId, int64(size) + int64(i), hashes[i], hashes[i], now}, nil
			})); err != nil {
			return fmt.Errorf("copying the sequence numbers: %w", err)
		}
		b := &pgx.Batch{}
		l.queueTree(b, written.IDs, written.Blobs, now, root)
		b.QueuedQueries = append(b.QueuedQueries, hook.QueuedQueries...)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return Root{}, err
	}
	if err := l.committed(root, batch.Border, written.Tiles); err != nil {
		return Root{}, err
	}
	return root, nil
}

// storedTiles reads the stored versions of tiles by ID (absent: not stored
// yet), preferring the ones the pipeline last wrote.
func (l *Log) storedTiles(ctx context.Context, ids [][]byte) (map[string]*storagepb.SubtreeProto, error) {
	out := make(map[string]*storagepb.SubtreeProto, len(ids))
	var missing [][]byte
	for _, id := range ids {
		if t, ok := l.written[string(id)]; ok {
			out[string(id)] = t
		} else {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	raws, err := l.fetchTilesDirect(ctx, missing)
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
