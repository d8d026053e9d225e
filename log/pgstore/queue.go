package pgstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	tlog "github.com/google/trillian/log"
	"github.com/google/trillian/quota"
	"github.com/jackc/pgx/v5"
)

// Queued leaves: stored and queued for Trillian's sequencer in the tables it
// reads (Unsequenced), acknowledged before they are integrated (a CT log's
// SCT promises inclusion within the maximum merge delay, not at once).

// Enqueue stores leaves and queues them for integration in one statement
// (one round trip, one commit); Trillian's own QueueLeaves takes five round
// trips and a table lock for the same. ids[i] is leaf i's identity, a
// SHA-256 digest (Trillian's sequencer refuses to dequeue any other size):
// a leaf whose identity is already in the tree or queued is not queued
// again. Identities must be distinct. It returns the identities it queued.
func (t *Tree) Enqueue(ctx context.Context, at time.Time, ids [][]byte, l Leaves) ([][]byte, error) {
	for i, id := range ids {
		if len(id) != sha256.Size {
			return nil, fmt.Errorf("queueing leaves in tree %d: leaf %d's identity is %d bytes, not a SHA-256 digest", t.ID(), i, len(id))
		}
	}
	now := at.UnixNano()
	queueIDs := make([][]byte, len(ids))
	for i, h := range l.Hashes {
		// Unique per queueing of a leaf; the sequencer deletes by it.
		id := sha256.New()
		binary.Write(id, binary.BigEndian, [2]int64{t.ID(), now}) //nolint:errcheck // hash writes cannot fail
		id.Write(h)
		queueIDs[i] = id.Sum(nil)
	}
	rows, err := t.s.pool.Query(ctx, `WITH batch AS (
			SELECT * FROM unnest($2::bytea[], $3::bytea[], $4::bytea[], $5::bytea[], $7::bytea[]) AS t(id, v, e, q, h)
		), fresh AS (
			INSERT INTO LeafData (TreeId, LeafIdentityHash, LeafValue, ExtraData, QueueTimestampNanos)
			SELECT $1, id, v, e, $6 FROM batch
			ON CONFLICT DO NOTHING
			RETURNING LeafIdentityHash
		), queued AS (
			INSERT INTO Unsequenced (TreeId, Bucket, LeafIdentityHash, MerkleLeafHash, QueueTimestampNanos, QueueID)
			SELECT $1, 0, b.id, b.h, $6, b.q FROM batch b JOIN fresh f ON f.LeafIdentityHash = b.id
		)
		SELECT LeafIdentityHash FROM fresh`, t.ID(), ids, l.Values, l.Extras, queueIDs, now, l.Hashes)
	if err != nil {
		return nil, fmt.Errorf("queueing %d leaves in tree %d: %w", len(ids), t.ID(), err)
	}
	queued, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, fmt.Errorf("queueing %d leaves in tree %d: %w", len(ids), t.ID(), err)
	}
	return queued, nil
}

// StoredValues reads the values of stored leaves (queued or integrated) by
// identity; identities not stored have no entry.
func (t *Tree) StoredValues(ctx context.Context, ids [][]byte) (map[string][]byte, error) {
	rows, err := t.s.pool.Query(ctx, "SELECT LeafIdentityHash, LeafValue FROM LeafData WHERE TreeId = $1 AND LeafIdentityHash = ANY($2)", t.ID(), ids)
	if err != nil {
		return nil, fmt.Errorf("reading %d stored leaves of tree %d: %w", len(ids), t.ID(), err)
	}
	out := make(map[string][]byte, len(ids))
	var id, value []byte
	if _, err := pgx.ForEachRow(rows, []any{&id, &value}, func() error {
		out[string(id)] = value
		return nil
	}); err != nil {
		return nil, fmt.Errorf("reading %d stored leaves of tree %d: %w", len(ids), t.ID(), err)
	}
	return out, nil
}

// IntegrateQueued integrates everything queued with Trillian's sequencer,
// at most limit leaves per transaction, and returns how many leaves it
// integrated. It rewrites tiles: what the caller keeps of them is stale
// once any leaf was integrated, or an error returned (a failed pass may
// have committed).
//
// Trillian's sequencer commits in a transaction of its own, where the
// writer lease's fence cannot be queued; each pass runs instead while a
// transaction of ours holds the fence (the lease row FOR KEY SHARE), which
// a takeover waits for, so no other server can take the lease between the
// check and the sequencer's commit.
func (t *Tree) IntegrateQueued(ctx context.Context, limit int) (int, error) {
	total := 0
	for {
		n, err := t.fencedPass(ctx, func() (int, error) {
			return tlog.IntegrateBatch(ctx, t.t, limit, 0, 0, t.s.clock, t.s.logs, quota.Noop())
		})
		total += n
		if err != nil {
			return total, fmt.Errorf("integrating tree %d's queued leaves: %w", t.ID(), err)
		}
		if n < limit {
			return total, nil
		}
	}
}

// fencedPass runs pass while holding the writer lease's fence (Store.Fence)
// in a transaction of its own; without a fence it just runs pass.
func (t *Tree) fencedPass(ctx context.Context, pass func() (int, error)) (int, error) {
	f := t.s.fence.Load()
	if f == nil {
		return pass()
	}
	tx, err := t.s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("holding the writer lease's fence: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // it only held a lock
	if _, err := tx.Exec(ctx, "SELECT signet_check_writer($1, $2)", f.token, f.holder); err != nil {
		return 0, fenced(err)
	}
	return pass()
}
