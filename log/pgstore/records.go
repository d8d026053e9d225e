package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Records are what a personality keeps of a run of leaves, and how far its
// records of the tree then go: written in the transaction that integrates
// the leaves (Commit) or, catching up, in one of their own (WriteRecords),
// so they are durable exactly when the leaves are.
type Records struct {
	// Keys[i] files the leaf with hash KeyLeaves[i] for Lookup.
	Keys, KeyLeaves [][]byte
	// Sidecars[i] is kept beside the leaf at SidecarIndexes[i] and read
	// with it (Leaf.Sidecar).
	SidecarIndexes []int64
	Sidecars       [][]byte
	// Size is how far the records go once these are written (the
	// watermark), Checkpoint the signed checkpoint of that size, if any.
	Size       uint64
	Checkpoint string
	// New says the leaves are integrated by the same transaction, so no
	// record of them can exist yet. Checking for earlier copies was a tenth
	// of PostgreSQL's work per append; catching up, a repeat keeps the
	// first row.
	New bool
}

// queueRecords queues the writes of r on b.
func (t *Tree) queueRecords(b *pgx.Batch, r Records) error {
	onConflict := " ON CONFLICT DO NOTHING"
	if r.New {
		onConflict = ""
	}
	if len(r.Keys) != len(r.KeyLeaves) || len(r.Sidecars) != len(r.SidecarIndexes) {
		return fmt.Errorf("records of tree %d: %d keys for %d leaves, %d sidecars for %d indexes", t.ID(), len(r.Keys), len(r.KeyLeaves), len(r.Sidecars), len(r.SidecarIndexes))
	}
	if len(r.Keys) > 0 {
		b.Queue(`INSERT INTO search_index (key, tree_id, leaf_hash)
			SELECT k, $1, h FROM unnest($2::bytea[], $3::bytea[]) AS t(k, h)`+onConflict, t.ID(), r.Keys, r.KeyLeaves)
	}
	if len(r.Sidecars) > 0 {
		b.Queue(`INSERT INTO rekor_sets (tree_id, leaf_index, set)
			SELECT $1, i, s FROM unnest($2::bigint[], $3::bytea[]) AS t(i, s)`+onConflict, t.ID(), r.SidecarIndexes, r.Sidecars)
	}
	var cp *string
	if r.Checkpoint != "" {
		cp = &r.Checkpoint
	}
	b.Queue(`INSERT INTO search_index_watermark (tree_id, indexed_size, checkpoint) VALUES ($1, $2, $3)
		ON CONFLICT (tree_id) DO UPDATE SET indexed_size = GREATEST(search_index_watermark.indexed_size, EXCLUDED.indexed_size),
		checkpoint = COALESCE(EXCLUDED.checkpoint, search_index_watermark.checkpoint)`,
		t.ID(), int64(r.Size), cp)
	return nil
}

// WriteRecords writes records of leaves already integrated, in a
// transaction of their own.
func (t *Tree) WriteRecords(ctx context.Context, r Records) error {
	b := &pgx.Batch{}
	// Fenced like a batch: a deposed writer's older checkpoint must not
	// replace the one its successor stored with the watermark.
	t.queueFence(b)
	if err := t.queueRecords(b, r); err != nil {
		return err
	}
	if err := pgx.BeginFunc(ctx, t.s.pool, func(tx pgx.Tx) error { return tx.SendBatch(ctx, b).Close() }); err != nil {
		return fmt.Errorf("writing tree %d's records up to size %d: %w", t.ID(), r.Size, fenced(err))
	}
	return nil
}

// Watermark is how far the records of the tree go, and the checkpoint
// stored with them ("" if none).
func (t *Tree) Watermark(ctx context.Context) (uint64, string, error) {
	var n int64
	var cp *string
	err := t.s.pool.QueryRow(ctx, "SELECT indexed_size, checkpoint FROM search_index_watermark WHERE tree_id = $1", t.ID()).Scan(&n, &cp)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, "", nil
	case err != nil:
		return 0, "", fmt.Errorf("reading tree %d's watermark: %w", t.ID(), err)
	case cp == nil:
		return uint64(n), "", nil
	}
	return uint64(n), *cp, nil
}

// Found is a leaf Lookup found: its tree and hash.
type Found struct {
	TreeID int64
	Hash   []byte
}

// Lookup finds the leaves filed under any of keys in the trees, at most
// limit of them.
func (s *Store) Lookup(ctx context.Context, trees []int64, keys [][]byte, limit int) ([]Found, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT tree_id, leaf_hash FROM search_index WHERE key = ANY($1) AND tree_id = ANY($2) LIMIT $3`, keys, trees, limit)
	if err != nil {
		return nil, fmt.Errorf("searching the index: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Found, error) {
		var f Found
		err := r.Scan(&f.TreeID, &f.Hash)
		return f, err
	})
	if err != nil {
		return nil, fmt.Errorf("searching the index: %w", err)
	}
	return out, nil
}

// StoreWitnessed keeps cosigned, the tree's checkpoint of size with its
// witnesses' cosignatures, unless one of a larger size is kept already
// (then it says false): what is published never goes back.
func (t *Tree) StoreWitnessed(ctx context.Context, size uint64, cosigned string) (bool, error) {
	tag, err := t.s.pool.Exec(ctx, `INSERT INTO signet_witnessed_checkpoints (tree_id, tree_size, checkpoint) VALUES ($1, $2, $3)
		ON CONFLICT (tree_id) DO UPDATE SET tree_size = EXCLUDED.tree_size, checkpoint = EXCLUDED.checkpoint, stored_at = now()
		WHERE signet_witnessed_checkpoints.tree_size <= EXCLUDED.tree_size`, t.ID(), int64(size), cosigned)
	if err != nil {
		return false, fmt.Errorf("storing tree %d's cosigned checkpoint of size %d: %w", t.ID(), size, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Witnessed is the tree's newest cosigned checkpoint and its size; "" if
// none was stored.
func (t *Tree) Witnessed(ctx context.Context) (uint64, string, error) {
	var n int64
	var cp string
	err := t.s.pool.QueryRow(ctx, "SELECT tree_size, checkpoint FROM signet_witnessed_checkpoints WHERE tree_id = $1", t.ID()).Scan(&n, &cp)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, "", nil
	case err != nil:
		return 0, "", fmt.Errorf("reading tree %d's cosigned checkpoint: %w", t.ID(), err)
	}
	return uint64(n), cp, nil
}
