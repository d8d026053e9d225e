package log

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/google/trillian/storage"
	"github.com/jackc/pgx/v5"
)

// The in-memory read path (Config.ProofsInMemory): proofs and roots come
// from a memtree kept current by the pipeline, leaves from one query on the
// leaf tables, with no storage transaction. The memtree only ever holds
// leaves the hook has taken, so a reader never sees an entry before its
// index rows exist.

// memSyncChunk bounds the leaf hashes read per query when loading or
// extending the memtree.
const memSyncChunk = 50000

// syncMem extends the memtree to the stored root, with the hashes of leaves
// when they are exactly the ones missing, and checks that it hashes to the
// root Trillian stored. On a mismatch it stops serving from memory: reads go
// back to storage transactions.
func (l *Log) syncMem(ctx context.Context, root Root, leaves []Leaf) error {
	if l.mem == nil || l.memBroken.Load() {
		return nil
	}
	if n := len(leaves); n > 0 && leaves[0].Index == l.mem.Size() && leaves[n-1].Index+1 == root.Size {
		hashes := make([][]byte, n)
		for i, lf := range leaves {
			hashes[i] = lf.Hash
		}
		if err := l.mem.Append(hashes...); err != nil {
			return err
		}
	}
	for from := l.mem.Size(); from < root.Size; {
		n := min(root.Size-from, memSyncChunk)
		rows, err := l.pool.Query(ctx, `SELECT MerkleLeafHash FROM SequencedLeafData
			WHERE TreeId = $1 AND SequenceNumber >= $2 AND SequenceNumber < $3 ORDER BY SequenceNumber`,
			l.tree.TreeId, int64(from), int64(from+n))
		if err != nil {
			return fmt.Errorf("reading leaf hashes %d..%d: %w", from, from+n, err)
		}
		hashes, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
		if err != nil {
			return fmt.Errorf("reading leaf hashes %d..%d: %w", from, from+n, err)
		}
		if uint64(len(hashes)) != n {
			return fmt.Errorf("reading leaf hashes %d..%d: got %d", from, from+n, len(hashes))
		}
		if err := l.mem.Append(hashes...); err != nil {
			return err
		}
		from += n
	}
	got, err := l.mem.RootAt(root.Size)
	if err != nil || !bytes.Equal(got, root.Hash) {
		l.memBroken.Store(true)
		l.logger.Error("the in-memory tree does not match the stored root; serving proofs from storage from now on",
			"size", root.Size, "stored_root", fmt.Sprintf("%x", root.Hash), "memory_root", fmt.Sprintf("%x", got), "err", err)
		return nil
	}
	l.memTime.Store(root.Timestamp.UnixNano())
	return nil
}

// storedRoot is the latest root in storage (a frozen tree's final one).
func (l *Log) storedRoot(ctx context.Context) (Root, error) {
	var root Root
	err := l.read(ctx, func(_ storage.ReadOnlyLogTreeTX, r Root) error {
		root = r
		return nil
	})
	return root, err
}

// fromMemory tells whether reads are served by the memtree.
func (l *Log) fromMemory() bool { return l.mem != nil && !l.memBroken.Load() }

// memRoot is the root of everything the memtree holds.
func (l *Log) memRoot() (Root, error) {
	size := l.mem.Size()
	h, err := l.mem.RootAt(size)
	if err != nil {
		return Root{}, err
	}
	return Root{Size: size, Hash: h, Timestamp: time.Unix(0, l.memTime.Load())}, nil
}

// leafSelect is the query that reads leaves (the caller adds the rest of
// the WHERE clause), with the personality's sidecar column when asked.
func (l *Log) leafSelect(sidecar bool) string {
	col := "NULL::bytea"
	if sidecar && l.cfg.LeafSidecar != "" {
		col = l.cfg.LeafSidecar
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

// memProve proves leaves in the memtree's tree, dropping those beyond it.
func (l *Log) memProve(leaves []Leaf, root Root) ([]Proven, error) {
	var out []Proven
	for _, lf := range leaves {
		if lf.Index >= root.Size {
			continue
		}
		p, err := l.mem.Inclusion(lf.Index, root.Size)
		if err != nil {
			return nil, err
		}
		out = append(out, Proven{Leaf: lf, Root: root, Proof: p})
	}
	return out, nil
}

func (l *Log) memByHash(ctx context.Context, hashes [][]byte) ([]Proven, error) {
	root, err := l.memRoot()
	if err != nil {
		return nil, err
	}
	var leaves []Leaf
	if len(hashes) == 1 && l.reads != nil {
		leaves, err = l.leafByHash(ctx, hashes[0])
	} else {
		leaves, err = l.leavesByHash(ctx, hashes)
	}
	if err != nil {
		return nil, fmt.Errorf("log %s: reading leaves by hash: %w", l.cfg.Name, err)
	}
	return l.memProve(leaves, root)
}

func (l *Log) leavesByHash(ctx context.Context, hashes [][]byte) ([]Leaf, error) {
	rows, err := l.pool.Query(ctx, l.leafSelect(true)+"s.MerkleLeafHash = ANY($2)", l.tree.TreeId, hashes)
	if err != nil {
		return nil, err
	}
	return scanLeaves(rows)
}

// Reads of single leaves by hash (an entry by UUID) are gathered: each
// reader goroutine takes every read waiting and makes one query of them.
// Under load PostgreSQL's cost per query, not per row, is most of a read's;
// alone, a read is one query as before. No timer: a read waits only for the
// query before it.
const (
	leafReaders       = 4
	maxLeafReadsBatch = 128
)

type leafRead struct {
	hash []byte
	done chan leafReadResult
}

type leafReadResult struct {
	leaves []Leaf
	err    error
}

func (l *Log) leafByHash(ctx context.Context, hash []byte) ([]Leaf, error) {
	r := &leafRead{hash: hash, done: make(chan leafReadResult, 1)}
	select {
	case l.reads <- r:
	case <-l.stop:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case res := <-r.done:
		return res.leaves, res.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *Log) readLeaves() {
	for {
		var batch []*leafRead
		select {
		case r := <-l.reads:
			batch = append(batch, r)
		case <-l.stop:
			return
		}
	gather:
		for len(batch) < maxLeafReadsBatch {
			select {
			case r := <-l.reads:
				batch = append(batch, r)
			default:
				break gather
			}
		}
		hashes := make([][]byte, len(batch))
		for i, r := range batch {
			hashes[i] = r.hash
		}
		// The query runs on its own deadline: the readers' contexts only
		// decide whether they still wait.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		leaves, err := l.leavesByHash(ctx, hashes)
		cancel()
		byHash := make(map[string][]Leaf, len(leaves))
		for _, lf := range leaves {
			byHash[string(lf.Hash)] = append(byHash[string(lf.Hash)], lf)
		}
		for _, r := range batch {
			r.done <- leafReadResult{leaves: byHash[string(r.hash)], err: err}
		}
	}
}

func (l *Log) memByIndex(ctx context.Context, index uint64) (Proven, error) {
	root, err := l.memRoot()
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
	proven, err := l.memProve(leaves, root)
	if err != nil {
		return Proven{}, err
	}
	if len(proven) != 1 {
		return Proven{}, ErrNotFound
	}
	return proven[0], nil
}
