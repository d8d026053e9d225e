// Package trilliantest reads a tree of a Signet database with Trillian
// v1.8's own PostgreSQL storage code, for tests that check the database is
// what Trillian's servers would serve (Trillian's schema and tile format
// are Signet's on-disk format).
package trilliantest

import (
	"context"
	"testing"

	"github.com/google/trillian"
	"github.com/google/trillian/monitoring"
	"github.com/google/trillian/storage"
	"github.com/google/trillian/storage/postgresql"
	"github.com/google/trillian/types"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// Snapshot is a read-only view of one tree through Trillian's storage.
type Snapshot struct {
	t  testing.TB
	tx storage.ReadOnlyLogTreeTX
}

// Open takes a snapshot of tree treeID; it holds one of pool's connections
// until the test's cleanups close it, so pool must be closed by a cleanup
// registered before Open (pool.Close waits for its connections).
func Open(t testing.TB, pool *pgxpool.Pool, treeID int64) *Snapshot {
	t.Helper()
	ctx := context.Background()
	tree, err := storage.GetTree(ctx, postgresql.NewAdminStorage(pool), treeID)
	if err != nil {
		t.Fatalf("Trillian reading tree %d: %v", treeID, err)
	}
	tx, err := postgresql.NewLogStorage(pool, monitoring.InertMetricFactory{}).SnapshotForTree(ctx, tree)
	if err != nil {
		t.Fatalf("Trillian opening a snapshot of tree %d: %v", treeID, err)
	}
	t.Cleanup(func() { tx.Close() })
	return &Snapshot{t: t, tx: tx}
}

// Root is the latest root Trillian reads.
func (s *Snapshot) Root() types.LogRootV1 {
	s.t.Helper()
	slr, err := s.tx.LatestSignedLogRoot(context.Background())
	if err != nil {
		s.t.Fatalf("Trillian reading the root: %v", err)
	}
	var root types.LogRootV1
	if err := root.UnmarshalBinary(slr.GetLogRoot()); err != nil {
		s.t.Fatalf("Trillian's root: %v", err)
	}
	return root
}

// Leaves are the leaves [start, start+count), all of which must be there.
func (s *Snapshot) Leaves(start, count uint64) []*trillian.LogLeaf {
	s.t.Helper()
	leaves, err := s.tx.GetLeavesByRange(context.Background(), int64(start), int64(count))
	if err != nil || uint64(len(leaves)) != count {
		s.t.Fatalf("Trillian reads %d of %d leaves: %v", len(leaves), count, err)
	}
	return leaves
}

// Proof reads a proof's nodes with Trillian's storage and folds them into
// the proof's hashes.
func (s *Snapshot) Proof(n proof.Nodes) [][]byte {
	s.t.Helper()
	got, err := s.tx.GetMerkleNodes(context.Background(), n.IDs)
	if err != nil || len(got) != len(n.IDs) {
		s.t.Fatalf("Trillian reads %d of %d proof nodes: %v", len(got), len(n.IDs), err)
	}
	hashes := make([][]byte, len(got))
	for i, g := range got {
		hashes[i] = g.Hash
	}
	folded, err := n.Rehash(hashes, rfc6962.DefaultHasher.HashChildren)
	if err != nil {
		s.t.Fatal(err)
	}
	return folded
}
