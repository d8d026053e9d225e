package log

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/trillian"
	"github.com/google/trillian/storage/storagepb"
	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/transparency-dev/merkle/compact"

	"github.com/signet-dev/signet/log/integrate"
	"github.com/signet-dev/signet/log/tiles"
)

// The one-transaction append path. With the tree's right border in memory
// the pipeline needs nothing from Trillian's sequencer: it numbers the
// batch's new leaves after the tree's size and writes, in one transaction
// and one commit, the leaves (LeafData, SequencedLeafData), the Merkle nodes
// in Trillian's tile format, the new tree head, and the personality's
// records (index rows, SETs, watermark, checkpoint). Trillian's queue and
// sequencer take three commits for the same batch (queue; dequeue, sequence
// and store nodes; the records) and about twenty round trips, and each of
// those commits waits for an fsync.
//
// The tables stay exactly as Trillian's sequencer would leave them, so its
// storage code reads them and its sequencer (integrating the CT log's
// queued leaves, queue.go) works on them unchanged. Nothing is ever left
// queued by this path, and a failed transaction leaves nothing behind.

// canCommitDirectly tells whether the next batch may take the one-transaction
// path: the right border is the stored tree's, and the hook has seen all of
// it.
func (l *Log) canCommitDirectly() bool {
	if l.border == nil || l.behind {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cfg.Hook == nil || (l.hookLoaded && l.indexed == l.border.End() && l.storedCP && l.storedCPSize == l.indexed)
}

// commitDirectly integrates leaves (distinct hashes) in one transaction and
// returns which were already in the log, the new root and the leaves it
// added, in index order, with the hook's sidecars. On an error the pipeline
// falls back to catching up from storage, since a failed commit may still
// have been applied.
func (l *Log) commitDirectly(ctx context.Context, leaves []*trillian.LogLeaf) (dup []bool, root Root, added []Leaf, err error) {
	defer func() {
		if err != nil {
			l.failedCommit()
		}
	}()
	size := l.border.End()
	now := l.ts.Now().UnixNano()
	// Tree heads are keyed by timestamp and must increase.
	if r := l.published(); r != nil {
		now = max(now, r.Timestamp.UnixNano()+1)
	}
	hashes := make([][]byte, len(leaves))
	values := make([][]byte, len(leaves))
	extras := make([][]byte, len(leaves))
	for i, lf := range leaves {
		hashes[i], values[i], extras[i] = lf.MerkleLeafHash, lf.LeafValue, lf.ExtraData
	}

	// The tiles the batch may touch if every leaf is new (a superset of the
	// ones it does touch).
	batch, err := integrate.Append(l.border, hashes)
	if err != nil {
		return nil, Root{}, nil, err
	}
	nodes := batch.Nodes
	tileIDs := integrate.TileIDs(nodes)
	// Every leaf is guessed new, which almost always holds.
	guess := make([]Leaf, len(leaves))
	for i, lf := range leaves {
		guess[i] = Leaf{Index: size + uint64(i), Hash: lf.MerkleLeafHash, Value: lf.LeafValue, Extra: lf.ExtraData, IntegratedAt: time.Unix(0, now)}
	}
	guessRoot := Root{Size: size + uint64(len(leaves)), Hash: batch.Root, Timestamp: time.Unix(0, now)}

	// Every append waits for the commit, and on a busy machine each round
	// trip to PostgreSQL costs about a millisecond of scheduling. With the
	// tiles to update known from the batches before, the batch is written
	// in one round trip, on the guess; a leaf already in the log makes it
	// fail, having written nothing, and the batch is then written in two.
	unstored := integrate.Unstored(nodes, size)
	var guessed *pgx.Batch
	if stored, ok := l.cachedTiles(tileIDs, unstored); ok {
		// The tiles are computed while the hook signs: Trillian's cache
		// does its work in goroutines of its own, and on a busy machine
		// waiting for them was as long as the signing.
		tiled := make(chan tileWork, 1)
		go func() {
			var w tileWork
			w.Written, w.err = integrate.UpdateTiles(nodes, stored)
			tiled <- w
		}()
		guessed, err = l.hookStatements(ctx, guess, guessRoot)
		tw := <-tiled
		if err != nil {
			return nil, Root{}, nil, err
		}
		if tw.err != nil {
			return nil, Root{}, nil, tw.err
		}
		err = l.commitFresh(ctx, size, now, hashes, values, extras, tw, guessRoot, batch.Border, guessed)
		if err == nil {
			l.metrics.commits.WithLabelValues(l.cfg.Name, "one_round_trip").Inc()
			return make([]bool, len(leaves)), guessRoot, guess, nil
		}
		if !isLeafConflict(err) {
			return nil, Root{}, nil, err
		}
		// The attempt changed the cached tiles in place.
		l.written = nil
	}

	// Two round trips: the transaction's start with the leaves and the
	// tiles to update, and everything else with the commit. The hook's work
	// (signing, for the Rekor log) runs while PostgreSQL stores the leaves,
	// on the guess; if some leaves are already in the log, it is done again.
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return nil, Root{}, nil, fmt.Errorf("connecting to store the batch: %w", err)
	}
	// A connection released inside a transaction is closed, which rolls
	// the transaction back.
	defer conn.Release()
	hooked := make(chan hookWork, 1)
	if guessed != nil {
		hooked <- hookWork{guessed, nil}
	} else {
		go func() {
			q, err := l.hookStatements(ctx, guess, guessRoot)
			hooked <- hookWork{q, err}
		}()
	}

	first := &pgx.Batch{}
	first.Queue("BEGIN")
	// The sequence numbers follow the batch's order among the leaves not
	// already in the log. A second writer on the tree would collide on them
	// (SequencedLeafData's primary key) and fail instead of forking it.
	seqOf := map[string]uint64{}
	first.Queue(`WITH batch AS (
			SELECT * FROM unnest($2::bytea[], $3::bytea[], $4::bytea[]) WITH ORDINALITY AS t(h, v, e, o)
		), fresh AS (
			INSERT INTO LeafData (TreeId, LeafIdentityHash, LeafValue, ExtraData, QueueTimestampNanos)
			SELECT $1, h, v, e, $5 FROM batch
			ON CONFLICT DO NOTHING
			RETURNING LeafIdentityHash
		), numbered AS (
			SELECT b.h, $6::bigint + row_number() OVER (ORDER BY b.o) - 1 AS seq
			FROM batch b JOIN fresh f ON f.LeafIdentityHash = b.h
		), sequenced AS (
			INSERT INTO SequencedLeafData (TreeId, SequenceNumber, LeafIdentityHash, MerkleLeafHash, IntegrateTimestampNanos)
			SELECT $1, seq, h, h, $5 FROM numbered
		)
		SELECT h, seq FROM numbered`, l.tree.TreeId, hashes, values, extras, now, int64(size)).
		Query(func(rows pgx.Rows) error {
			var h []byte
			var seq int64
			_, err := pgx.ForEachRow(rows, []any{&h, &seq}, func() error {
				seqOf[string(h)] = uint64(seq)
				return nil
			})
			return err
		})
	stored := map[string]*storagepb.SubtreeProto{}
	first.Queue("SELECT Nodes FROM Subtree WHERE TreeId = $1 AND SubtreeId = ANY($2)", l.tree.TreeId, tileIDs).
		Query(func(rows pgx.Rows) error {
			var raw []byte
			_, err := pgx.ForEachRow(rows, []any{&raw}, func() error {
				t, err := integrate.Unmarshal(raw)
				if err == nil {
					stored[string(t.Prefix)] = t
				}
				return err
			})
			return err
		})
	err = conn.SendBatch(ctx, first).Close()
	speculative := <-hooked
	if err != nil {
		return nil, Root{}, nil, fmt.Errorf("storing %d leaves: %w", len(leaves), err)
	}
	// Usually every leaf is new and the guess holds; otherwise the new ones
	// are renumbered, and their nodes, root and hook records redone.
	dup = make([]bool, len(leaves))
	added = guess
	if len(seqOf) < len(leaves) {
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
		if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
			return nil, Root{}, nil, fmt.Errorf("ending a batch of duplicates: %w", err)
		}
		return dup, *l.published(), nil, nil
	}
	root = guessRoot
	hook := speculative
	if len(added) < len(leaves) {
		if batch, err = integrate.Append(l.border, addedHashes); err != nil {
			return nil, Root{}, nil, err
		}
		nodes = batch.Nodes
		root = Root{Size: size + uint64(len(added)), Hash: batch.Root, Timestamp: time.Unix(0, now)}
		hook.q, hook.err = l.hookStatements(ctx, added, root)
	}
	if hook.err != nil {
		return nil, Root{}, nil, hook.err
	}
	written, err := integrate.UpdateTiles(nodes, stored)
	if err != nil {
		return nil, Root{}, nil, err
	}
	second := &pgx.Batch{}
	l.queueTree(second, written.IDs, written.Blobs, now, root)
	second.QueuedQueries = append(second.QueuedQueries, hook.q.QueuedQueries...)
	second.Queue("COMMIT")
	if err := conn.SendBatch(ctx, second).Close(); err != nil {
		return nil, Root{}, nil, fmt.Errorf("storing the tree at size %d: %w", root.Size, err)
	}
	if conn.Conn().PgConn().TxStatus() != 'I' {
		// An error before COMMIT makes PostgreSQL skip the rest of the batch.
		return nil, Root{}, nil, fmt.Errorf("storing the tree at size %d: the transaction did not commit", root.Size)
	}
	if err := l.committed(root, batch.Border, written.Tiles); err != nil {
		return nil, Root{}, nil, err
	}
	l.metrics.commits.WithLabelValues(l.cfg.Name, "two_round_trips").Inc()
	return dup, root, added, nil
}

// commitFresh writes a batch of leaves that are all new, and everything
// else of it, in one round trip. A leaf already in the log fails it
// (isLeafConflict) with nothing written.
func (l *Log) commitFresh(ctx context.Context, size uint64, now int64, hashes, values, extras [][]byte, tw tileWork, root Root, border *compact.Range, hook *pgx.Batch) error {
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	// As in the two-round-trip path, a second writer on the tree collides
	// on SequencedLeafData's primary key.
	b.Queue(`WITH batch AS (
			SELECT * FROM unnest($2::bytea[], $3::bytea[], $4::bytea[]) WITH ORDINALITY AS t(h, v, e, o)
		), stored AS (
			INSERT INTO LeafData (TreeId, LeafIdentityHash, LeafValue, ExtraData, QueueTimestampNanos)
			SELECT $1, h, v, e, $5 FROM batch
		)
		INSERT INTO SequencedLeafData (TreeId, SequenceNumber, LeafIdentityHash, MerkleLeafHash, IntegrateTimestampNanos)
		SELECT $1, $6::bigint + o - 1, h, h, $5 FROM batch`, l.tree.TreeId, hashes, values, extras, now, int64(size))
	l.queueTree(b, tw.IDs, tw.Blobs, now, root)
	b.QueuedQueries = append(b.QueuedQueries, hook.QueuedQueries...)
	b.Queue("COMMIT")
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connecting to store the batch: %w", err)
	}
	// A connection released inside a transaction is closed, which rolls
	// the transaction back.
	defer conn.Release()
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("storing %d leaves and the tree at size %d: %w", len(hashes), root.Size, err)
	}
	if conn.Conn().PgConn().TxStatus() != 'I' {
		return fmt.Errorf("storing the tree at size %d: the transaction did not commit", root.Size)
	}
	return l.committed(root, border, tw.Tiles)
}

// isLeafConflict tells whether err is a leaf of the batch found already in
// the log by commitFresh.
func isLeafConflict(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == pgerrcode.UniqueViolation && pe.TableName == "leafdata"
}

// queueTree queues the writes of a batch's tiles and tree head.
func (l *Log) queueTree(b *pgx.Batch, ids, blobs [][]byte, now int64, root Root) {
	b.Queue(`INSERT INTO Subtree (TreeId, SubtreeId, Nodes)
		SELECT $1, id, n FROM unnest($2::bytea[], $3::bytea[]) AS t(id, n)
		ON CONFLICT ON CONSTRAINT Subtree_pk DO UPDATE SET Nodes = EXCLUDED.Nodes`, l.tree.TreeId, ids, blobs)
	b.Queue(`INSERT INTO TreeHead (TreeId, TreeHeadTimestamp, TreeSize, RootHash, RootSignature)
		VALUES ($1, $2, $3, $4, '') ON CONFLICT DO NOTHING`, l.tree.TreeId, now, int64(root.Size), root.Hash).
		Exec(func(tag pgconn.CommandTag) error {
			if tag.RowsAffected() != 1 {
				return fmt.Errorf("a tree head with timestamp %d is already stored", now)
			}
			return nil
		})
}

// failedCommit makes the next batch catch up from storage: a commit that
// failed may still have been applied, and the tiles the pipeline keeps may
// have been changed in place by Trillian's tile code.
func (l *Log) failedCommit() {
	l.behind = true
	l.written = nil
	l.mu.Lock()
	l.hookLoaded = false
	l.mu.Unlock()
}

// committed brings the right border, the hook's progress, the tile caches
// and the published root up to a batch just committed.
func (l *Log) committed(root Root, border *compact.Range, written []*storagepb.SubtreeProto) error {
	if l.cfg.Hook != nil {
		l.mu.Lock()
		l.indexed, l.storedCPSize = root.Size, root.Size
		l.mu.Unlock()
	}
	if border.End() != root.Size {
		return fmt.Errorf("the right border is at size %d after committing size %d", border.End(), root.Size)
	}
	l.border = border
	// Tiles are rewritten only at the tree's right edge (one per stratum)
	// and complete ones never again, so a handful are kept.
	if l.written == nil || len(l.written) > maxCachedTiles {
		l.written = map[string]*storagepb.SubtreeProto{}
	}
	for _, t := range written {
		l.written[string(t.Prefix)] = t
		// The new leaves' proofs, and everyone's, read these.
		decoded, err := tiles.FromProto(t)
		if err != nil {
			return fmt.Errorf("the tile just written: %w", err)
		}
		l.cfg.Tiles.Put(l.tree.TreeId, decoded)
	}
	l.publish(root)
	return nil
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
func (l *Log) cachedTiles(ids [][]byte, unstored map[string]bool) (map[string]*storagepb.SubtreeProto, bool) {
	out := make(map[string]*storagepb.SubtreeProto, len(ids))
	for _, id := range ids {
		t, ok := l.written[string(id)]
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
	q   *pgx.Batch
	err error
}

// hookStatements signs the checkpoint at root and has the hook queue its
// records of leaves, the ones added to reach root.
func (l *Log) hookStatements(ctx context.Context, leaves []Leaf, root Root) (*pgx.Batch, error) {
	q := &pgx.Batch{}
	if l.cfg.Hook == nil {
		return q, nil
	}
	cp, err := l.Checkpoint(root)
	if err != nil {
		return nil, fmt.Errorf("signing the checkpoint at size %d: %w", root.Size, err)
	}
	b := Batch{TreeID: l.tree.TreeId, Offset: l.offset, Leaves: leaves, NewSize: root.Size, Checkpoint: cp, New: true}
	if err := l.recordBatch(ctx, b, q); err != nil {
		return nil, fmt.Errorf("indexing leaves %d..%d: %w", root.Size-uint64(len(leaves)), root.Size, err)
	}
	return q, nil
}
