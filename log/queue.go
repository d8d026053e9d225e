package log

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/google/trillian"
	"github.com/jackc/pgx/v5"
)

// The queue: leaves acknowledged once durably queued (EnqueueIdentified,
// the CT log's path: an SCT promises inclusion within the maximum merge
// delay, not at once). A goroutine of its own gathers concurrent
// submissions into one statement each (queueLeaves) and tells the pipeline,
// which integrates them with Trillian's sequencer before its next batch, on
// its ticker (Config.IntegrateEvery), before a clean stop ends, or at the
// next start after a crash.

type enqueueReq struct {
	ctx                    context.Context
	identity, value, extra []byte
	done                   chan enqueueResult
}

type enqueueResult struct {
	stored    []byte
	duplicate bool
	err       error
}

// EnqueueIdentified adds a leaf and returns once it is durably queued.
//
// identity (at most 255 bytes) names the entry, as a CT log's entry is the
// same whatever timestamp its leaf carries. A leaf of the same identity
// already stored (queued or integrated, or earlier in the same batch) is
// not queued again, and stored is that leaf's value; for a new leaf stored
// is value. Concurrent submissions of one identity all get the one stored
// value.
func (l *Log) EnqueueIdentified(ctx context.Context, identity, value, extra []byte) (stored []byte, duplicate bool, err error) {
	if l.frozen != nil {
		return nil, false, ErrFrozen
	}
	select {
	case <-l.stop:
		return nil, false, ErrClosed
	default:
	}
	req := &enqueueReq{ctx: ctx, identity: identity, value: value, extra: extra, done: make(chan enqueueResult, 1)}
	select {
	case l.enqueue <- req:
	default:
		l.metrics.appends.WithLabelValues(l.cfg.Name, "overloaded").Inc()
		return nil, false, ErrOverloaded
	}
	select {
	case r := <-req.done:
		return r.stored, r.duplicate, r.err
	case <-l.queueStopped:
		// The queue answered everything it took before it stopped.
		select {
		case r := <-req.done:
			return r.stored, r.duplicate, r.err
		default:
			return nil, false, ErrClosed
		}
	case <-ctx.Done():
		// The leaf may still be queued; a resubmission finds it.
		return nil, false, ctx.Err()
	}
}

func (l *Log) runQueue() {
	defer close(l.queueStopped)
	for {
		var batch []*enqueueReq
		select {
		case r := <-l.enqueue:
			batch = append(batch, r)
		case <-l.stop:
			for {
				select {
				case r := <-l.enqueue:
					r.done <- enqueueResult{err: ErrClosed}
				default:
					return
				}
			}
		}
	gather:
		for len(batch) < l.cfg.MaxBatch {
			select {
			case r := <-l.enqueue:
				batch = append(batch, r)
			default:
				break gather
			}
		}
		l.queueBatch(batch)
	}
}

// queueBatch queues a batch's leaves in one statement and answers each
// submission.
func (l *Log) queueBatch(batch []*enqueueReq) {
	live := batch[:0]
	for _, r := range batch {
		if r.ctx.Err() != nil {
			r.done <- enqueueResult{err: r.ctx.Err()}
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	// One leaf per identity: the insert must not see its own row. Later
	// submissions of an identity are duplicates of the first.
	byID := map[string][]*enqueueReq{}
	var leaves []*trillian.LogLeaf
	for _, r := range live {
		k := string(r.identity)
		if _, seen := byID[k]; !seen {
			leaves = append(leaves, &trillian.LogLeaf{LeafValue: r.value, ExtraData: r.extra, MerkleLeafHash: LeafHash(r.value), LeafIdentityHash: r.identity})
		}
		byID[k] = append(byID[k], r)
	}
	// The statement runs on its own deadline: callers' contexts only
	// decide whether they still wait.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dups, storedValues, err := l.queueLeaves(ctx, leaves)
	if err != nil {
		l.logger.Error("queueing leaves failed", "leaves", len(leaves), "err", err)
		for _, r := range live {
			r.done <- enqueueResult{err: err}
		}
		l.metrics.appends.WithLabelValues(l.cfg.Name, "error").Add(float64(len(live)))
		return
	}
	// Tell the pipeline (it integrates on its own time); one signal
	// pending is enough.
	select {
	case l.queued <- struct{}{}:
	default:
	}
	for i, lf := range leaves {
		k := string(lf.LeafIdentityHash)
		kept := lf.LeafValue
		if v, ok := storedValues[k]; ok {
			kept = v
		}
		for j, r := range byID[k] {
			dup := dups[i] || j > 0
			outcome := "queued"
			if dup {
				outcome = "duplicate"
			}
			l.metrics.appends.WithLabelValues(l.cfg.Name, outcome).Inc()
			r.done <- enqueueResult{stored: kept, duplicate: dup}
		}
	}
}

// queueLeaves stores the leaves and queues them for integration in one
// statement (one round trip, one commit) into the tables Trillian's
// sequencer reads; Trillian's own QueueLeaves takes five round trips and a
// table lock for the same. dup[i] reports a leaf whose identity is already
// in the tree or queued. Leaves must have distinct identities. stored holds,
// by identity, the value kept for each duplicate whose identity is not its
// leaf hash (EnqueueIdentified's), read with a second query only when there
// are such duplicates.
func (l *Log) queueLeaves(ctx context.Context, leaves []*trillian.LogLeaf) (dup []bool, stored map[string][]byte, err error) {
	now := l.ts.Now().UnixNano()
	ids := make([][]byte, len(leaves))
	hashes := make([][]byte, len(leaves))
	values := make([][]byte, len(leaves))
	extras := make([][]byte, len(leaves))
	queueIDs := make([][]byte, len(leaves))
	for i, lf := range leaves {
		ids[i], hashes[i], values[i], extras[i] = lf.LeafIdentityHash, lf.MerkleLeafHash, lf.LeafValue, lf.ExtraData
		// Unique per queueing of a leaf; the sequencer deletes by it.
		id := sha256.New()
		binary.Write(id, binary.BigEndian, [2]int64{l.tree.TreeId, now}) //nolint:errcheck // hash writes cannot fail
		id.Write(lf.MerkleLeafHash)
		queueIDs[i] = id.Sum(nil)
	}
	rows, err := l.pool.Query(ctx, `WITH batch AS (
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
		SELECT LeafIdentityHash FROM fresh`, l.tree.TreeId, ids, values, extras, queueIDs, now, hashes)
	if err != nil {
		return nil, nil, err
	}
	inserted, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, nil, err
	}
	isNew := make(map[string]bool, len(inserted))
	for _, id := range inserted {
		isNew[string(id)] = true
	}
	dup = make([]bool, len(leaves))
	var lookup [][]byte
	for i, lf := range leaves {
		dup[i] = !isNew[string(lf.LeafIdentityHash)]
		if dup[i] && !bytes.Equal(lf.LeafIdentityHash, lf.MerkleLeafHash) {
			lookup = append(lookup, lf.LeafIdentityHash)
		}
	}
	if len(lookup) == 0 {
		return dup, nil, nil
	}
	// A statement of its own: the insert's snapshot does not show a row
	// another transaction committed while the insert waited on it.
	rows, err = l.pool.Query(ctx, "SELECT LeafIdentityHash, LeafValue FROM LeafData WHERE TreeId = $1 AND LeafIdentityHash = ANY($2)", l.tree.TreeId, lookup)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the stored copies of %d duplicates: %w", len(lookup), err)
	}
	stored = make(map[string][]byte, len(lookup))
	var id, value []byte
	if _, err := pgx.ForEachRow(rows, []any{&id, &value}, func() error {
		stored[string(id)] = value
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("reading the stored copies of %d duplicates: %w", len(lookup), err)
	}
	for _, id := range lookup {
		if _, ok := stored[string(id)]; !ok {
			return nil, nil, fmt.Errorf("leaf identity %x conflicted on insert but has no stored leaf", id)
		}
	}
	return dup, stored, nil
}
