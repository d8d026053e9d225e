package log

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/signet-dev/signet/log/pgstore"
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

// enqueueIdentified is Log.EnqueueIdentified: it adds a leaf and returns
// once it is durably queued.
//
// identity (a SHA-256 digest: Trillian's sequencer takes no other size)
// names the entry, as a CT log's entry is the same whatever timestamp its
// leaf carries. A leaf of the same identity
// already stored (queued or integrated, or earlier in the same batch) is
// not queued again, and stored is that leaf's value; for a new leaf stored
// is value. Concurrent submissions of one identity all get the one stored
// value.
func (a *appender) enqueueIdentified(ctx context.Context, identity, value, extra []byte) (stored []byte, duplicate bool, err error) {
	select {
	case <-a.stop:
		return nil, false, ErrClosed
	default:
	}
	req := &enqueueReq{ctx: ctx, identity: identity, value: value, extra: extra, done: make(chan enqueueResult, 1)}
	select {
	case a.enqueue <- req:
	default:
		a.metrics.appends.WithLabelValues(a.cfg.Name, "overloaded").Inc()
		return nil, false, ErrOverloaded
	}
	select {
	case r := <-req.done:
		return r.stored, r.duplicate, r.err
	case <-a.queueStopped:
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

func (a *appender) runQueue() {
	defer close(a.queueStopped)
	for {
		var batch []*enqueueReq
		select {
		case r := <-a.enqueue:
			batch = append(batch, r)
		case <-a.stop:
			for {
				select {
				case r := <-a.enqueue:
					r.done <- enqueueResult{err: ErrClosed}
				default:
					return
				}
			}
		}
	gather:
		for len(batch) < a.cfg.MaxBatch {
			select {
			case r := <-a.enqueue:
				batch = append(batch, r)
			default:
				break gather
			}
		}
		a.queueBatch(batch)
	}
}

// queueBatch queues a batch's leaves in one statement and answers each
// submission.
func (a *appender) queueBatch(batch []*enqueueReq) {
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
	var ids [][]byte
	var leaves pgstore.Leaves
	for _, r := range live {
		k := string(r.identity)
		if _, seen := byID[k]; !seen {
			ids = append(ids, r.identity)
			leaves.Hashes = append(leaves.Hashes, LeafHash(r.value))
			leaves.Values = append(leaves.Values, r.value)
			leaves.Extras = append(leaves.Extras, r.extra)
		}
		byID[k] = append(byID[k], r)
	}
	// The statement runs on its own deadline: callers' contexts only
	// decide whether they still wait.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dups, storedValues, err := a.queueLeaves(ctx, ids, leaves)
	if err != nil {
		a.logger.Error("queueing leaves failed", "leaves", len(ids), "err", err)
		for _, r := range live {
			r.done <- enqueueResult{err: err}
		}
		a.metrics.appends.WithLabelValues(a.cfg.Name, "error").Add(float64(len(live)))
		return
	}
	// Tell the pipeline (it integrates on its own time); one signal
	// pending is enough.
	select {
	case a.queued <- struct{}{}:
	default:
	}
	for i, id := range ids {
		k := string(id)
		kept := leaves.Values[i]
		if v, ok := storedValues[k]; ok {
			kept = v
		}
		for j, r := range byID[k] {
			dup := dups[i] || j > 0
			outcome := "queued"
			if dup {
				outcome = "duplicate"
			}
			a.metrics.appends.WithLabelValues(a.cfg.Name, outcome).Inc()
			r.done <- enqueueResult{stored: kept, duplicate: dup}
		}
	}
}

// queueLeaves stores and queues leaves with distinct identities ids in one
// statement. dup[i] reports a leaf whose identity is already in the tree or
// queued. stored holds, by identity, the value kept for each duplicate whose
// identity is not its leaf hash (EnqueueIdentified's), read with a second
// query only when there are such duplicates.
func (a *appender) queueLeaves(ctx context.Context, ids [][]byte, leaves pgstore.Leaves) (dup []bool, stored map[string][]byte, err error) {
	inserted, err := a.store.Enqueue(ctx, time.Now(), ids, leaves)
	if err != nil {
		return nil, nil, err
	}
	isNew := make(map[string]bool, len(inserted))
	for _, id := range inserted {
		isNew[string(id)] = true
	}
	dup = make([]bool, len(ids))
	var lookup [][]byte
	for i, id := range ids {
		dup[i] = !isNew[string(id)]
		if dup[i] && !bytes.Equal(id, leaves.Hashes[i]) {
			lookup = append(lookup, id)
		}
	}
	if len(lookup) == 0 {
		return dup, nil, nil
	}
	// A statement of its own: the insert's snapshot does not show a row
	// another transaction committed while the insert waited on it.
	if stored, err = a.store.StoredValues(ctx, lookup); err != nil {
		return nil, nil, fmt.Errorf("the stored copies of %d duplicates: %w", len(lookup), err)
	}
	for _, id := range lookup {
		if _, ok := stored[string(id)]; !ok {
			return nil, nil, fmt.Errorf("leaf identity %x conflicted on insert but has no stored leaf", id)
		}
	}
	return dup, stored, nil
}
