package log

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/signet-dev/signet/log/tiles"
)

// The read path, one for every tree: the root is the one the pipeline last
// published (a frozen tree's final one), leaves come from one query on the
// leaf tables with the personality's sidecar, and proofs from the tree's
// tiles through the shared tile cache (package tiles). The pipeline
// publishes a root only once the hook has taken its leaves, so a reader
// never sees an entry before its index rows exist.

// syncBorder brings the right border (and the published root) to the stored
// root: by appending leaves when they are exactly the ones missing,
// otherwise by reading it from the tiles. Either way the border must hash to
// the root stored with the tiles; if it does not, storage contradicts itself
// and nothing is published.
func (l *Log) syncBorder(ctx context.Context, root Root, leaves []Leaf) error {
	if l.border != nil && l.border.End() == root.Size && l.published() != nil {
		if cur := l.published(); cur.Size == root.Size && bytes.Equal(cur.Hash, root.Hash) {
			return nil
		}
	}
	n := len(leaves)
	if l.border != nil && n > 0 && leaves[0].Index == l.border.End() && leaves[n-1].Index+1 == root.Size {
		for _, lf := range leaves {
			if err := l.border.Append(lf.Hash, nil); err != nil {
				return err
			}
		}
	} else {
		b, err := l.ownReader.Border(ctx, root.Size)
		if err != nil {
			return err
		}
		l.border = b
	}
	got, err := l.border.GetRootHash(nil)
	if root.Size == 0 {
		got = rfc6962.DefaultHasher.EmptyRoot()
	}
	if err != nil || !bytes.Equal(got, root.Hash) {
		// Drop it: the next sync reads it again from the tiles.
		l.border = nil
		return fmt.Errorf("the tree's tiles at size %d hash to %x, but the stored root is %x (%v): storage is inconsistent", root.Size, got, root.Hash, err)
	}
	l.publish(root)
	return nil
}

// publish makes root the one readers see.
func (l *Log) publish(root Root) { l.root.Store(&root) }

// published is the root readers see, nil before the first.
func (l *Log) published() *Root { return l.root.Load() }

// storedRoot is the latest root in storage (a frozen tree's final one).
func (l *Log) storedRoot(ctx context.Context) (Root, error) {
	if l.frozen != nil {
		return l.frozen.root, nil
	}
	tx, err := l.storage.SnapshotForTree(ctx, l.tree)
	if err != nil {
		return Root{}, fmt.Errorf("log %s: opening a snapshot: %w", l.cfg.Name, err)
	}
	defer tx.Close()
	slr, err := tx.LatestSignedLogRoot(ctx)
	if err != nil {
		return Root{}, fmt.Errorf("log %s: reading the root: %w", l.cfg.Name, err)
	}
	root, err := toRoot(slr)
	if err != nil {
		return Root{}, err
	}
	return root, tx.Commit(ctx)
}

// fetchTiles reads stored tiles of the tree by ID; a proof's miss (one
// tile, most often) is gathered with other readers'.
func (l *Log) fetchTiles(ctx context.Context, ids [][]byte) ([][]byte, error) {
	if len(ids) == 1 && l.tileReads != nil {
		raw, err := l.tileReads.get(ctx, l.stop, ids[0])
		if err != nil || raw == nil {
			return nil, err
		}
		return [][]byte{raw}, nil
	}
	return l.fetchTilesDirect(ctx, ids)
}

// fetchTilesDirect reads stored tiles of the tree by ID in a query of its
// own.
func (l *Log) fetchTilesDirect(ctx context.Context, ids [][]byte) ([][]byte, error) {
	byID, err := l.tilesByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, 0, len(byID))
	for _, raw := range byID {
		out = append(out, raw)
	}
	return out, nil
}

// tilesByID reads stored tiles of the tree by ID in one query.
func (l *Log) tilesByID(ctx context.Context, ids [][]byte) (map[string][]byte, error) {
	rows, err := l.pool.Query(ctx, "SELECT SubtreeId, Nodes FROM Subtree WHERE TreeId = $1 AND SubtreeId = ANY($2)", l.tree.TreeId, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(ids))
	var id, raw []byte
	if _, err := pgx.ForEachRow(rows, []any{&id, &raw}, func() error {
		out[string(id)] = raw // pgx scans bytea into a new slice
		return nil
	}); err != nil {
		return nil, err
	}
	return out, nil
}

// leafSelect is the query that reads leaves (the caller adds the rest of
// the WHERE clause), with the personality's sidecar column when asked.
func (l *Log) leafSelect(sidecar bool) string {
	col := "NULL::bytea"
	if sidecar && l.cfg.Hook != nil {
		col = "(SELECT x.set FROM rekor_sets x WHERE x.tree_id = s.TreeId AND x.leaf_index = s.SequenceNumber)"
	}
	return `SELECT s.SequenceNumber, s.MerkleLeafHash, d.LeafValue, d.ExtraData, s.IntegrateTimestampNanos, ` + col + `
	FROM SequencedLeafData s JOIN LeafData d ON d.TreeId = s.TreeId AND d.LeafIdentityHash = s.LeafIdentityHash
	WHERE s.TreeId = $1 AND `
}

func scanLeaves(rows pgx.Rows) ([]Leaf, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Leaf, error) {
		var lf Leaf
		var index, nanos int64
		err := r.Scan(&index, &lf.Hash, &lf.Value, &lf.Extra, &nanos, &lf.Sidecar)
		lf.Index, lf.IntegratedAt = uint64(index), time.Unix(0, nanos)
		return lf, err
	})
}

// prove proves leaves at root with r, dropping those beyond it.
func (l *Log) prove(ctx context.Context, r tiles.Reader, leaves []Leaf, root Root) ([]Proven, error) {
	var out []Proven
	for _, lf := range leaves {
		if lf.Index >= root.Size {
			continue
		}
		p, err := r.Inclusion(ctx, lf.Index, root.Size)
		if err != nil {
			return nil, fmt.Errorf("log %s: proving leaf %d at size %d: %w", l.cfg.Name, lf.Index, root.Size, err)
		}
		out = append(out, Proven{Leaf: lf, Root: root, Proof: p})
	}
	return out, nil
}

// ByHash returns the leaves with these RFC 6962 leaf hashes, with proofs at
// the latest root; hashes not in the tree are skipped.
func (l *Log) ByHash(ctx context.Context, hashes [][]byte) ([]Proven, error) {
	root, err := l.Latest(ctx)
	if err != nil {
		return nil, err
	}
	var leaves []Leaf
	if len(hashes) == 1 && l.leafReads != nil {
		leaves, err = l.leafReads.get(ctx, l.stop, hashes[0])
	} else {
		leaves, err = l.leavesByHash(ctx, hashes)
	}
	if err != nil {
		return nil, fmt.Errorf("log %s: reading leaves by hash: %w", l.cfg.Name, err)
	}
	return l.prove(ctx, l.reader, leaves, root)
}

func (l *Log) leavesByHash(ctx context.Context, hashes [][]byte) ([]Leaf, error) {
	rows, err := l.pool.Query(ctx, l.leafSelect(true)+"s.MerkleLeafHash = ANY($2)", l.tree.TreeId, hashes)
	if err != nil {
		return nil, err
	}
	return scanLeaves(rows)
}

// leavesByHashes is leavesByHash for the gatherer: the leaves by hash.
func (l *Log) leavesByHashes(ctx context.Context, hashes [][]byte) (map[string][]Leaf, error) {
	leaves, err := l.leavesByHash(ctx, hashes)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]Leaf, len(leaves))
	for _, lf := range leaves {
		out[string(lf.Hash)] = append(out[string(lf.Hash)], lf)
	}
	return out, nil
}

// ByIndex returns the leaf at index with its proof at the latest root.
func (l *Log) ByIndex(ctx context.Context, index uint64) (Proven, error) {
	root, err := l.Latest(ctx)
	if err != nil {
		return Proven{}, err
	}
	if index >= root.Size {
		return Proven{}, ErrNotFound
	}
	rows, err := l.pool.Query(ctx, l.leafSelect(true)+"s.SequenceNumber = $2", l.tree.TreeId, int64(index))
	if err != nil {
		return Proven{}, fmt.Errorf("log %s: reading leaf %d: %w", l.cfg.Name, index, err)
	}
	leaves, err := scanLeaves(rows)
	if err != nil {
		return Proven{}, fmt.Errorf("log %s: reading leaf %d: %w", l.cfg.Name, index, err)
	}
	proven, err := l.prove(ctx, l.reader, leaves, root)
	if err != nil {
		return Proven{}, err
	}
	if len(proven) != 1 {
		return Proven{}, ErrNotFound
	}
	return proven[0], nil
}
