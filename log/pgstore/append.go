package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Appending without Trillian's sequencer. The engine numbers a batch's new
// leaves after the tree's size and computes its tiles and root (log,
// log/integrate); the driver writes, in one transaction and one commit, the
// leaves (LeafData, SequencedLeafData), the tiles, the tree head and the
// personality's records. Trillian's queue and sequencer take three commits
// for the same batch (queue; dequeue, sequence and store nodes; the records)
// and about twenty round trips, and each of those commits waits for an
// fsync.
//
// A second writer on the tree collides on SequencedLeafData's primary key
// and fails instead of forking it. A failed transaction leaves nothing
// behind, but an error after COMMIT was sent may still have committed: the
// engine then reads the tree back before its next write.

// Leaves are a batch's leaves, column by column; a leaf's identity is its
// hash.
type Leaves struct {
	Hashes, Values, Extras [][]byte
}

// Tiles are encoded tiles to store, replacing any of the same ID.
type Tiles struct {
	IDs, Blobs [][]byte
}

// Commit is what a batch writes besides its leaves.
type Commit struct {
	Tiles Tiles
	// Head is the tree's new head; no head of the same timestamp may be
	// stored (tree heads are keyed by it and must increase).
	Head Head
	// Records, when set, are the personality's records of the new leaves.
	Records *Records
}

// ErrLeafExists means a leaf of the batch was already in the tree; nothing
// of the batch was written.
var ErrLeafExists = errors.New("a leaf of the batch is already in the tree")

// AppendNew writes a batch of leaves that are all new, as indexes size,
// size+1, ..., and c, in one round trip. A leaf already in the tree fails
// it with ErrLeafExists and nothing written.
func (t *Tree) AppendNew(ctx context.Context, size uint64, l Leaves, c Commit) error {
	now := c.Head.Timestamp.UnixNano()
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(`WITH batch AS (
			SELECT * FROM unnest($2::bytea[], $3::bytea[], $4::bytea[]) WITH ORDINALITY AS t(h, v, e, o)
		), stored AS (
			INSERT INTO LeafData (TreeId, LeafIdentityHash, LeafValue, ExtraData, QueueTimestampNanos)
			SELECT $1, h, v, e, $5 FROM batch
		)
		INSERT INTO SequencedLeafData (TreeId, SequenceNumber, LeafIdentityHash, MerkleLeafHash, IntegrateTimestampNanos)
		SELECT $1, $6::bigint + o - 1, h, h, $5 FROM batch`, t.ID(), l.Hashes, l.Values, l.Extras, now, int64(size))
	if err := t.queueCommit(b, c); err != nil {
		return err
	}
	b.Queue("COMMIT")
	conn, err := t.s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connecting to store the batch: %w", err)
	}
	// A connection released inside a transaction is closed, which rolls
	// the transaction back.
	defer conn.Release()
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == pgerrcode.UniqueViolation && pe.TableName == "leafdata" {
			return fmt.Errorf("storing %d leaves in tree %d: %w", len(l.Hashes), t.ID(), ErrLeafExists)
		}
		return fmt.Errorf("storing %d leaves and tree %d at size %d: %w", len(l.Hashes), t.ID(), c.Head.Size, fenced(err))
	}
	return committed(conn, t, c)
}

// committed checks that the transaction conn sent ended committed: an error
// before COMMIT makes PostgreSQL skip the rest of the batch.
func committed(conn *pgxpool.Conn, t *Tree, c Commit) error {
	if conn.Conn().PgConn().TxStatus() != 'I' {
		return fmt.Errorf("storing tree %d at size %d: the transaction did not commit", t.ID(), c.Head.Size)
	}
	return nil
}

// queueCommit queues the writes of c, after the writer lease's fence: it
// holds the lease row until the transaction ends, or aborts it.
func (t *Tree) queueCommit(b *pgx.Batch, c Commit) error {
	t.queueFence(b)
	now := c.Head.Timestamp.UnixNano()
	b.Queue(`INSERT INTO Subtree (TreeId, SubtreeId, Nodes)
		SELECT $1, id, n FROM unnest($2::bytea[], $3::bytea[]) AS t(id, n)
		ON CONFLICT ON CONSTRAINT Subtree_pk DO UPDATE SET Nodes = EXCLUDED.Nodes`, t.ID(), c.Tiles.IDs, c.Tiles.Blobs)
	b.Queue(`INSERT INTO TreeHead (TreeId, TreeHeadTimestamp, TreeSize, RootHash, RootSignature)
		VALUES ($1, $2, $3, $4, '') ON CONFLICT DO NOTHING`, t.ID(), now, int64(c.Head.Size), c.Head.Hash).
		Exec(func(tag pgconn.CommandTag) error {
			if tag.RowsAffected() != 1 {
				return fmt.Errorf("a head of tree %d with timestamp %d is already stored", t.ID(), now)
			}
			return nil
		})
	if c.Records != nil {
		return t.queueRecords(b, *c.Records)
	}
	return nil
}

// Append is a batch's transaction after its first round trip (BeginAppend):
// the new leaves are stored and numbered, and the tiles read.
type Append struct {
	t    *Tree
	conn *pgxpool.Conn
	// Sequenced numbers each leaf of the batch that was not already in the
	// tree, by hash, in the batch's order from the tree's size.
	Sequenced map[string]uint64
	// Tiles are the stored tiles asked for, by ID.
	Tiles map[string][]byte
}

// BeginAppend starts a batch's transaction in one round trip: it stores
// the leaves not already in the tree, integrated at (the timestamp of the
// head Commit writes), numbers them from size in the batch's order, and
// reads the tiles tileIDs. The caller ends it with Commit or Rollback, and
// always calls Release.
func (t *Tree) BeginAppend(ctx context.Context, size uint64, at time.Time, l Leaves, tileIDs [][]byte) (*Append, error) {
	conn, err := t.s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("connecting to store the batch: %w", err)
	}
	a := &Append{t: t, conn: conn, Sequenced: map[string]uint64{}, Tiles: map[string][]byte{}}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(`WITH batch AS (
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
		SELECT h, seq FROM numbered`, t.ID(), l.Hashes, l.Values, l.Extras, at.UnixNano(), int64(size)).
		Query(func(rows pgx.Rows) error {
			var h []byte
			var seq int64
			_, err := pgx.ForEachRow(rows, []any{&h, &seq}, func() error {
				a.Sequenced[string(h)] = uint64(seq)
				return nil
			})
			return err
		})
	b.Queue("SELECT SubtreeId, Nodes FROM Subtree WHERE TreeId = $1 AND SubtreeId = ANY($2)", t.ID(), tileIDs).
		Query(func(rows pgx.Rows) error {
			var id, raw []byte
			_, err := pgx.ForEachRow(rows, []any{&id, &raw}, func() error {
				a.Tiles[string(id)] = raw
				return nil
			})
			return err
		})
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		a.Release()
		return nil, fmt.Errorf("storing %d leaves in tree %d: %w", len(l.Hashes), t.ID(), err)
	}
	return a, nil
}

// Commit writes c and commits the batch.
func (a *Append) Commit(ctx context.Context, c Commit) error {
	b := &pgx.Batch{}
	if err := a.t.queueCommit(b, c); err != nil {
		return err
	}
	b.Queue("COMMIT")
	if err := a.conn.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("storing tree %d at size %d: %w", a.t.ID(), c.Head.Size, fenced(err))
	}
	return committed(a.conn, a.t, c)
}

// Rollback abandons the batch (when every leaf was already in the tree).
func (a *Append) Rollback(ctx context.Context) error {
	if _, err := a.conn.Exec(ctx, "ROLLBACK"); err != nil {
		return fmt.Errorf("abandoning a batch of tree %d: %w", a.t.ID(), err)
	}
	return nil
}

// Release returns the connection; inside a transaction it is closed, which
// rolls the transaction back.
func (a *Append) Release() { a.conn.Release() }

// Import writes leaves that are all new, as indexes size, size+1, ..., and
// c in one transaction, copying the leaves with COPY: for batches of tens
// of thousands (filling a log to measure it). A leaf already in the tree
// fails it with nothing written.
func (t *Tree) Import(ctx context.Context, size uint64, l Leaves, c Commit) error {
	now := c.Head.Timestamp.UnixNano()
	err := pgx.BeginFunc(ctx, t.s.pool, func(tx pgx.Tx) error {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"leafdata"},
			[]string{"treeid", "leafidentityhash", "leafvalue", "extradata", "queuetimestampnanos"},
			pgx.CopyFromSlice(len(l.Hashes), func(i int) ([]any, error) {
				return []any{t.ID(), l.Hashes[i], l.Values[i], l.Extras[i], now}, nil
			})); err != nil {
			return fmt.Errorf("copying the leaves: %w", err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"sequencedleafdata"},
			[]string{"treeid", "sequencenumber", "leafidentityhash", "merkleleafhash", "integratetimestampnanos"},
			pgx.CopyFromSlice(len(l.Hashes), func(i int) ([]any, error) {
				return []any{t.ID(), int64(size) + int64(i), l.Hashes[i], l.Hashes[i], now}, nil
			})); err != nil {
			return fmt.Errorf("copying the sequence numbers: %w", err)
		}
		b := &pgx.Batch{}
		if err := t.queueCommit(b, c); err != nil {
			return err
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("importing %d leaves into tree %d: %w", len(l.Hashes), t.ID(), fenced(err))
	}
	return nil
}

// queueFence queues the writer lease's fence (Store.Fence), if any: it
// holds the lease row until the transaction ends, or aborts it.
func (t *Tree) queueFence(b *pgx.Batch) {
	if f := t.s.fence.Load(); f != nil {
		b.Queue("SELECT signet_check_writer($1, $2)", f.token, f.holder)
	}
}

// fenced is err, or ErrFenced if the writer lease's fence failed.
func fenced(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "SG001" {
		return fmt.Errorf("%w (%s)", ErrFenced, pe.Message)
	}
	return err
}
