package pgstore

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Leaf is an integrated leaf as stored.
type Leaf struct {
	Index        uint64
	Hash         []byte // RFC 6962 leaf hash
	Value        []byte
	Extra        []byte // stored beside the leaf, not hashed
	IntegratedAt time.Time
	// Sidecar is the personality's bytes kept beside the leaf
	// (Records.Sidecars), read when asked for (With.Sidecar).
	Sidecar []byte
	// Group is the leaf hashes of the aligned group of With.Group leaves
	// holding this one, concatenated in index order, read when asked for:
	// the lowest nodes of its inclusion proof (log/tiles). Shorter at the
	// tree's right edge, where the group is not complete.
	Group []byte
}

// With says what is read beside a leaf.
type With struct {
	Sidecar bool
	// Group, when not 0, reads Leaf.Group, of this many leaves.
	Group int
}

// leafSelect reads leaves (the caller adds the rest of the WHERE clause),
// with the sidecar and group columns when asked.
func leafSelect(with With) string {
	sidecar, group := "NULL::bytea", "NULL::bytea"
	if with.Sidecar {
		sidecar = "(SELECT x.set FROM rekor_sets x WHERE x.tree_id = s.TreeId AND x.leaf_index = s.SequenceNumber)"
	}
	if with.Group > 0 {
		// The group's indexes one by one: given a range, PostgreSQL
		// estimates thousands of rows per leaf and compiles (JIT) a query
		// of many leaves.
		first := fmt.Sprintf("s.SequenceNumber / %[1]d * %[1]d", with.Group)
		indexes := make([]string, with.Group)
		for i := range indexes {
			indexes[i] = fmt.Sprintf("%s + %d", first, i)
		}
		group = `(SELECT string_agg(g.MerkleLeafHash, ''::bytea ORDER BY g.SequenceNumber) FROM SequencedLeafData g
		WHERE g.TreeId = s.TreeId AND g.SequenceNumber = ANY(ARRAY[` + strings.Join(indexes, ", ") + `]))`
	}
	return `SELECT s.SequenceNumber, s.MerkleLeafHash, d.LeafValue, d.ExtraData, s.IntegrateTimestampNanos, ` + sidecar + `, ` + group + `
	FROM SequencedLeafData s JOIN LeafData d ON d.TreeId = s.TreeId AND d.LeafIdentityHash = s.LeafIdentityHash
	WHERE s.TreeId = $1 AND `
}

func scanLeaves(rows pgx.Rows) ([]Leaf, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Leaf, error) {
		var lf Leaf
		var index, nanos int64
		err := r.Scan(&index, &lf.Hash, &lf.Value, &lf.Extra, &nanos, &lf.Sidecar, &lf.Group)
		lf.Index, lf.IntegratedAt = uint64(index), time.Unix(0, nanos)
		return lf, err
	})
}

// LeavesInRange reads the integrated leaves from start (at most count), in
// index order, with what else is asked for.
func (t *Tree) LeavesInRange(ctx context.Context, start, count uint64, with With) ([]Leaf, error) {
	return t.leaves(ctx, with, fmt.Sprintf("leaves %d..%d", start, start+count),
		"s.SequenceNumber >= $2 AND s.SequenceNumber < $3 ORDER BY s.SequenceNumber", int64(start), int64(start+count))
}

// TooLong is a leaf value longer than ValuesInRange's limit.
type TooLong struct{ Index, Bytes uint64 }

func (e *TooLong) Error() string {
	return fmt.Sprintf("leaf %d is %d bytes long", e.Index, e.Bytes)
}

// ValuesInRange reads the values of count integrated leaves from start, in
// index order. A value longer than maxLen is not read: the first one is a
// *TooLong, so a range of large values never reaches memory.
func (t *Tree) ValuesInRange(ctx context.Context, start, count uint64, maxLen int) ([][]byte, error) {
	rows, err := t.s.pool.Query(ctx, `SELECT s.SequenceNumber, octet_length(d.LeafValue),
		CASE WHEN octet_length(d.LeafValue) <= $4 THEN d.LeafValue END
	FROM SequencedLeafData s JOIN LeafData d ON d.TreeId = s.TreeId AND d.LeafIdentityHash = s.LeafIdentityHash
	WHERE s.TreeId = $1 AND s.SequenceNumber >= $2 AND s.SequenceNumber < $3 ORDER BY s.SequenceNumber`,
		t.ID(), int64(start), int64(start+count), maxLen)
	if err != nil {
		return nil, fmt.Errorf("reading the values of leaves %d..%d of tree %d: %w", start, start+count, t.ID(), err)
	}
	var out [][]byte
	var index, n int64
	var value []byte
	if _, err := pgx.ForEachRow(rows, []any{&index, &n, &value}, func() error {
		if value == nil && n > int64(maxLen) {
			return &TooLong{Index: uint64(index), Bytes: uint64(n)}
		}
		out = append(out, value)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("reading the values of leaves %d..%d of tree %d: %w", start, start+count, t.ID(), err)
	}
	return out, nil
}

// LeavesAt reads the integrated leaves at these indexes, with what else is
// asked for; indexes beyond the tree have no row.
func (t *Tree) LeavesAt(ctx context.Context, indexes []int64, with With) ([]Leaf, error) {
	return t.leaves(ctx, with, fmt.Sprintf("%d leaves by index", len(indexes)), "s.SequenceNumber = ANY($2)", indexes)
}

// LeavesByHash reads the integrated leaves with these RFC 6962 leaf hashes,
// with what else is asked for; hashes not in the tree have no row.
func (t *Tree) LeavesByHash(ctx context.Context, hashes [][]byte, with With) ([]Leaf, error) {
	return t.leaves(ctx, with, fmt.Sprintf("%d leaves by hash", len(hashes)), "s.MerkleLeafHash = ANY($2)", hashes)
}

// leaves reads leaves where the condition holds ($1 is the tree; args are
// $2, ...); what names them in errors.
func (t *Tree) leaves(ctx context.Context, with With, what, where string, args ...any) ([]Leaf, error) {
	rows, err := t.s.pool.Query(ctx, leafSelect(with)+where, append([]any{t.ID()}, args...)...)
	if err == nil {
		var leaves []Leaf
		if leaves, err = scanLeaves(rows); err == nil {
			return leaves, nil
		}
	}
	return nil, fmt.Errorf("reading %s of tree %d: %w", what, t.ID(), err)
}

// Tiles reads stored tiles (Trillian's encoded SubtreeProto) by ID, in one
// query; IDs not stored have no entry.
func (t *Tree) Tiles(ctx context.Context, ids [][]byte) (map[string][]byte, error) {
	rows, err := t.s.pool.Query(ctx, "SELECT SubtreeId, Nodes FROM Subtree WHERE TreeId = $1 AND SubtreeId = ANY($2)", t.ID(), ids)
	if err != nil {
		return nil, fmt.Errorf("reading %d tiles of tree %d: %w", len(ids), t.ID(), err)
	}
	out := make(map[string][]byte, len(ids))
	var id, raw []byte
	if _, err := pgx.ForEachRow(rows, []any{&id, &raw}, func() error {
		out[string(id)] = raw // pgx scans bytea into a new slice
		return nil
	}); err != nil {
		return nil, fmt.Errorf("reading %d tiles of tree %d: %w", len(ids), t.ID(), err)
	}
	return out, nil
}

// LeafGroups reads the leaf hashes of groups of size leaves (group g:
// leaves g*size to g*size+size-1), each group's hashes concatenated in
// index order; groups not wholly integrated are left out. A proof's lowest
// nodes come from them (log/tiles).
func (t *Tree) LeafGroups(ctx context.Context, groups []uint64, size int) (map[uint64][]byte, error) {
	// The indexes one by one: PostgreSQL estimates a join of the groups'
	// ranges at a million rows, and compiles it (JIT) at every query.
	indexes := make([]int64, 0, len(groups)*size)
	for _, g := range groups {
		for i := range size {
			indexes = append(indexes, int64(g)*int64(size)+int64(i))
		}
	}
	rows, err := t.s.pool.Query(ctx, `SELECT SequenceNumber, MerkleLeafHash FROM SequencedLeafData
		WHERE TreeId = $1 AND SequenceNumber = ANY($2) ORDER BY SequenceNumber`, t.ID(), indexes)
	if err != nil {
		return nil, fmt.Errorf("reading %d groups of leaf hashes of tree %d: %w", len(groups), t.ID(), err)
	}
	byGroup := make(map[uint64][]byte, len(groups))
	var seq int64
	var hash []byte
	if _, err := pgx.ForEachRow(rows, []any{&seq, &hash}, func() error {
		g := uint64(seq) / uint64(size)
		byGroup[g] = append(byGroup[g], hash...)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("reading %d groups of leaf hashes of tree %d: %w", len(groups), t.ID(), err)
	}
	for g, hashes := range byGroup {
		if len(hashes) != size*sha256.Size {
			delete(byGroup, g)
		}
	}
	return byGroup, nil
}
