package log

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// A personality's records of its leaves, written by the engine in the
// transaction that integrates them (or, catching up after a crash, in one of
// their own), so they are durable exactly when the leaves are; with them the
// engine stores how far the personality got and the signed checkpoint of
// that size (the watermark). The tables are the engine's: search_index (key
// digest -> leaf), rekor_sets (a sidecar per leaf, read with it) and
// search_index_watermark; their names are older than the split.

// Records are what a personality keeps of a batch of leaves.
type Records struct {
	// Sidecars, when set, has one entry per leaf of the batch: bytes kept
	// beside the leaf and read with it into Leaf.Sidecar (the Rekor log's
	// SETs).
	Sidecars [][]byte
	// Keys are the leaves' search keys, as the personality digests them;
	// Lookup finds leaves by them.
	Keys []IndexKey
}

// IndexKey files the leaf with hash Leaf under Key.
type IndexKey struct {
	Key, Leaf []byte
}

// Integrated is the personality's side of the engine: told of every leaf
// once it is in the tree, in index order, before any append of it is
// acknowledged, it returns its records of them.
type Integrated interface {
	Integrated(ctx context.Context, b Batch) (Records, error)
}

// recordBatch asks the personality for its records of b and queues their
// writes on q.
func (l *Log) recordBatch(ctx context.Context, b Batch, q *pgx.Batch) error {
	r, err := l.cfg.Hook.Integrated(ctx, b)
	if err != nil {
		return err
	}
	return l.queueRecords(q, b, r)
}

// queueRecords queues the writes of a batch's records and the watermark.
// Leaves integrated by the same transaction (b.New) have no rows yet, and
// checking for earlier copies was a tenth of PostgreSQL's work per append;
// catching up, a repeat keeps the first row.
func (l *Log) queueRecords(q *pgx.Batch, b Batch, r Records) error {
	onConflict := " ON CONFLICT DO NOTHING"
	if b.New {
		onConflict = ""
	}
	if len(r.Keys) > 0 {
		keys, hashes := make([][]byte, len(r.Keys)), make([][]byte, len(r.Keys))
		for i, k := range r.Keys {
			keys[i], hashes[i] = k.Key, k.Leaf
		}
		q.Queue(`INSERT INTO search_index (key, tree_id, leaf_hash)
			SELECT k, $1, h FROM unnest($2::bytea[], $3::bytea[]) AS t(k, h)`+onConflict, b.TreeID, keys, hashes)
	}
	if r.Sidecars != nil {
		if len(r.Sidecars) != len(b.Leaves) {
			return fmt.Errorf("%d sidecars for %d leaves", len(r.Sidecars), len(b.Leaves))
		}
		indexes := make([]int64, len(b.Leaves))
		for i := range b.Leaves {
			indexes[i] = int64(b.Leaves[i].Index)
			b.Leaves[i].Sidecar = r.Sidecars[i]
		}
		if len(indexes) > 0 {
			q.Queue(`INSERT INTO rekor_sets (tree_id, leaf_index, set)
				SELECT $1, i, s FROM unnest($2::bigint[], $3::bytea[]) AS t(i, s)`+onConflict, b.TreeID, indexes, r.Sidecars)
		}
	}
	var cp *string
	if b.Checkpoint != "" {
		cp = &b.Checkpoint
	}
	q.Queue(`INSERT INTO search_index_watermark (tree_id, indexed_size, checkpoint) VALUES ($1, $2, $3)
		ON CONFLICT (tree_id) DO UPDATE SET indexed_size = GREATEST(search_index_watermark.indexed_size, EXCLUDED.indexed_size),
		checkpoint = COALESCE(EXCLUDED.checkpoint, search_index_watermark.checkpoint)`,
		b.TreeID, int64(b.NewSize), cp)
	return nil
}

// watermark is how far the personality's records of tree go, and the last
// checkpoint stored with them ("" if none).
func (l *Log) watermark(ctx context.Context, treeID int64) (uint64, string, error) {
	var n int64
	var cp *string
	err := l.pool.QueryRow(ctx, "SELECT indexed_size, checkpoint FROM search_index_watermark WHERE tree_id = $1", treeID).Scan(&n, &cp)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, "", nil
	}
	if err != nil || cp == nil {
		return uint64(n), "", err
	}
	return uint64(n), *cp, nil
}

// IndexedLeaf is a leaf Lookup found: its tree and hash.
type IndexedLeaf struct {
	TreeID int64
	Hash   []byte
}

// Lookup finds the leaves filed under any of keys in this log's trees (the
// current one and those retired by key rotations), at most limit of them.
func (l *Log) Lookup(ctx context.Context, keys [][]byte, limit int) ([]IndexedLeaf, error) {
	trees := []int64{l.tree.TreeId}
	for _, r := range l.retired {
		trees = append(trees, r.tree.TreeId)
	}
	rows, err := l.pool.Query(ctx, `SELECT DISTINCT tree_id, leaf_hash FROM search_index WHERE key = ANY($1) AND tree_id = ANY($2) LIMIT $3`, keys, trees, limit)
	if err != nil {
		return nil, fmt.Errorf("log %s: searching the index: %w", l.cfg.Name, err)
	}
	var out []IndexedLeaf
	var lf IndexedLeaf
	if _, err := pgx.ForEachRow(rows, []any{&lf.TreeID, &lf.Hash}, func() error {
		out = append(out, IndexedLeaf{TreeID: lf.TreeID, Hash: append([]byte{}, lf.Hash...)})
		return nil
	}); err != nil {
		return nil, fmt.Errorf("log %s: searching the index: %w", l.cfg.Name, err)
	}
	return out, nil
}
