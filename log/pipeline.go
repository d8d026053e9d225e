package log

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/google/trillian"
	tlog "github.com/google/trillian/log"
	"github.com/google/trillian/quota"
	"github.com/jackc/pgx/v5"

	"github.com/signet-dev/signet/log/note"
)

// Appended is the outcome of one append.
type Appended struct {
	// Duplicate is true when an identical leaf was already in the log (or
	// in the same batch); only Leaf.Hash is set then. For a leaf queued by
	// EnqueueIdentified, "identical" means of the same identity, and
	// Leaf.Hash and Leaf.Value are those of the copy the log keeps.
	Duplicate bool
	Proven
}

type appendReq struct {
	ctx   context.Context
	value []byte
	extra []byte
	hash  []byte
	// identity is the leaf's LeafIdentityHash, the key duplicates are
	// found by: hash itself unless the personality names its entries
	// otherwise (EnqueueIdentified).
	identity []byte
	// queued asks only for durability: answer once the leaf is queued and
	// integrate it afterwards (the CT log's promise, an SCT, needs no more).
	queued bool
	// answered is set once done has been sent to (pipeline goroutine only).
	answered bool
	done     chan appendResult
}

func (r *appendReq) answer(res appendResult) {
	if !r.answered {
		r.answered = true
		r.done <- res
	}
}

type appendResult struct {
	res Appended
	err error
}

// Append adds a leaf and returns once it is integrated, handed to the hook
// and provable at the new root (or is a duplicate). extra is stored with the
// leaf, unhashed, for the hook's use after a crash.
func (l *Log) Append(ctx context.Context, value, extra []byte) (Appended, error) {
	h := LeafHash(value)
	return l.submit(ctx, &appendReq{ctx: ctx, value: value, extra: extra, hash: h, identity: h, done: make(chan appendResult, 1)})
}

// EnqueueIdentified adds a leaf and returns once it is durably queued.
// Queued leaves are integrated with the next append that waits for
// integration, or at the latest Config.IntegrateEvery later (also after a
// failed integration): well within a CT log's maximum merge delay, and in
// batches large enough to be cheap. A clean stop integrates them before it
// ends, and Open (or a key rotation retiring the tree) integrates what a
// crash left queued.
//
// identity (at most 255 bytes) names the entry, as a CT log's entry is the
// same whatever timestamp its leaf carries. A leaf of the same identity
// already stored (queued or integrated, or earlier in the same batch) is
// not queued again, and stored is that leaf's value; for a new leaf stored
// is value. Concurrent submissions of one identity all get the one stored
// value. Such leaves always take the queue (Trillian's path), never the
// one-transaction path, which writes identity = leaf hash.
func (l *Log) EnqueueIdentified(ctx context.Context, identity, value, extra []byte) (stored []byte, duplicate bool, err error) {
	res, err := l.submit(ctx, &appendReq{ctx: ctx, value: value, extra: extra, hash: LeafHash(value), identity: identity, queued: true, done: make(chan appendResult, 1)})
	if err != nil {
		return nil, false, err
	}
	switch {
	case !res.Duplicate:
		return value, false, nil
	case res.Leaf.Value == nil:
		// Only the direct path answers so, for an identity that is the
		// leaf hash: the stored copy is this very value.
		return value, true, nil
	}
	return res.Leaf.Value, true, nil
}

func (l *Log) submit(ctx context.Context, req *appendReq) (Appended, error) {
	if l.frozen != nil {
		return Appended{}, ErrFrozen
	}
	select {
	case <-l.stop:
		return Appended{}, ErrClosed
	default:
	}
	select {
	case l.queue <- req:
	default:
		l.metrics.appends.WithLabelValues(l.cfg.Name, "overloaded").Inc()
		return Appended{}, ErrOverloaded
	}
	l.metrics.queueLength.WithLabelValues(l.cfg.Name).Set(float64(len(l.queue)))
	select {
	case r := <-req.done:
		return r.res, r.err
	case <-ctx.Done():
		// The leaf may still be integrated; the client can find it by hash.
		return Appended{}, ctx.Err()
	}
}

func (l *Log) run() {
	defer close(l.stopped)
	retry := time.NewTicker(l.cfg.IntegrateEvery)
	defer retry.Stop()
	for {
		var first *appendReq
		select {
		case first = <-l.queue:
		case <-retry.C:
			if l.behind {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				if _, _, err := l.integrateAndIndex(ctx); err != nil {
					l.logger.Error("integrating queued leaves failed; will retry", "err", err)
				}
				cancel()
			}
			continue
		case x := <-l.exclusive:
			x.done <- x.f()
			continue
		case <-l.stop:
			l.drain(ErrClosed)
			l.integrateBeforeStop()
			return
		}
		batch := []*appendReq{first}
	gather:
		for len(batch) < l.cfg.MaxBatch {
			select {
			case r := <-l.queue:
				batch = append(batch, r)
			default:
				break gather
			}
		}
		l.metrics.queueLength.WithLabelValues(l.cfg.Name).Set(float64(len(l.queue)))
		l.process(batch)
	}
}

// integrateBeforeStop integrates leaves that were acknowledged when queued
// (EnqueueIdentified: a CT log's SCT promises inclusion within the maximum
// merge delay) before the pipeline stops, so a clean stop never leaves them
// waiting for the next start, which may be a key rotation's or never come.
// A failure is logged: the leaves stay durably queued, and the next Open
// (or a rotation) integrates them.
func (l *Log) integrateBeforeStop() {
	if !l.behind {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), stopIntegrationTimeout)
	defer cancel()
	if _, _, err := l.integrateAndIndex(ctx); err != nil {
		l.logger.Error("integrating queued leaves before stopping failed; the next start integrates them", "err", err)
		return
	}
	l.logger.Info("integrated the queued leaves before stopping")
}

// stopIntegrationTimeout bounds how long a clean stop spends integrating
// queued leaves.
const stopIntegrationTimeout = 30 * time.Second

func (l *Log) drain(err error) {
	for {
		select {
		case r := <-l.queue:
			r.answer(appendResult{err: err})
		default:
			return
		}
	}
}

// process queues, integrates, hands to the hook and proves one batch.
func (l *Log) process(batch []*appendReq) {
	start := time.Now()
	// Drop requests whose caller already gave up, so they cost nothing.
	live := batch[:0]
	for _, r := range batch {
		if r.ctx.Err() != nil {
			r.answer(appendResult{err: r.ctx.Err()})
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	// A batch must not carry one leaf (one identity) twice: the queue's
	// insert would see its own row. Later copies are duplicates of the
	// first. byHash is keyed by identity, which is the leaf hash for all
	// but EnqueueIdentified's leaves.
	byHash := map[string][]*appendReq{}
	var leaves []*trillian.LogLeaf
	for _, r := range live {
		k := string(r.identity)
		if _, seen := byHash[k]; !seen {
			leaves = append(leaves, &trillian.LogLeaf{LeafValue: r.value, ExtraData: r.extra, MerkleLeafHash: r.hash, LeafIdentityHash: r.identity})
		}
		byHash[k] = append(byHash[k], r)
	}
	// The batch runs on its own deadline: callers' contexts only decide
	// whether they still wait for the answer.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	results, err := l.commitBatch(ctx, leaves, byHash)
	l.metrics.integrate.WithLabelValues(l.cfg.Name).Observe(time.Since(start).Seconds())
	l.metrics.batchSize.WithLabelValues(l.cfg.Name).Observe(float64(len(live)))
	if err != nil {
		l.logger.Error("append batch failed", "leaves", len(leaves), "err", err)
		for _, r := range live {
			r.answer(appendResult{err: err})
		}
		l.metrics.appends.WithLabelValues(l.cfg.Name, "error").Add(float64(len(live)))
		return
	}
	for k, reqs := range byHash {
		res := results[k]
		for i, r := range reqs {
			if r.answered {
				continue
			}
			out := res
			if i > 0 {
				out = Appended{Duplicate: true, Proven: Proven{Leaf: Leaf{Hash: r.hash}}}
			}
			outcome := "integrated"
			if out.Duplicate {
				outcome = "duplicate"
			}
			l.metrics.appends.WithLabelValues(l.cfg.Name, outcome).Inc()
			r.answer(appendResult{res: out})
		}
	}
}

// commitBatch integrates the leaves in one transaction when it can
// (commitDirectly). Otherwise it queues them, answers the requests that only
// wanted them queued, then integrates through Trillian's sequencer, indexes
// and proves for the others; a non-nil map with an error then means the
// queueing succeeded and integration did not.
func (l *Log) commitBatch(ctx context.Context, leaves []*trillian.LogLeaf, byHash map[string][]*appendReq) (map[string]Appended, error) {
	// The direct path keys its leaves by hash alone (identity = hash).
	if l.canCommitDirectly() && identifiedByHash(leaves) {
		dups, root, added, err := l.commitDirectly(ctx, leaves)
		if err != nil {
			return nil, err
		}
		results := make(map[string]Appended, len(leaves))
		for i, lf := range leaves {
			if dups[i] {
				results[string(lf.MerkleLeafHash)] = Appended{Duplicate: true, Proven: Proven{Leaf: Leaf{Hash: lf.MerkleLeafHash}}}
			}
		}
		proven, err := l.prove(ctx, added, root)
		if err != nil {
			return nil, fmt.Errorf("proving the new leaves: %w", err)
		}
		for _, p := range proven {
			results[string(p.Leaf.Hash)] = Appended{Proven: p}
		}
		return results, nil
	}
	// Trillian's sequencer rewrites tiles behind the pipeline's back.
	l.written = nil
	l.metrics.commits.WithLabelValues(l.cfg.Name, "trillian").Inc()
	dups, storedValues, err := l.queueLeaves(ctx, leaves)
	if err != nil {
		return nil, fmt.Errorf("queueing %d leaves: %w", len(leaves), err)
	}
	l.behind = true
	results := map[string]Appended{}
	var fresh [][]byte
	// keyOf maps a fresh leaf's hash to its identity, the key of byHash
	// and results.
	keyOf := map[string]string{}
	for i, lf := range leaves {
		h, k := lf.MerkleLeafHash, string(lf.LeafIdentityHash)
		// kept is the copy the log keeps under this identity: this leaf,
		// or for a duplicate of another value, the stored one.
		kept := Leaf{Hash: h, Value: lf.LeafValue}
		if v, ok := storedValues[k]; ok {
			kept = Leaf{Hash: LeafHash(v), Value: v}
		}
		for j, r := range byHash[k] {
			if r.queued {
				dup := dups[i] || j > 0
				outcome := "queued"
				if dup {
					outcome = "duplicate"
				}
				l.metrics.appends.WithLabelValues(l.cfg.Name, outcome).Inc()
				r.answer(appendResult{res: Appended{Duplicate: dup, Proven: Proven{Leaf: kept}}})
			}
		}
		if dups[i] {
			results[k] = Appended{Duplicate: true, Proven: Proven{Leaf: kept}}
			continue
		}
		fresh = append(fresh, h)
		keyOf[string(h)] = k
	}
	// Requests that only wanted their leaves queued are answered; their
	// integration rides on the ticker unless someone here waits for it.
	waitsForIntegration := false
	for _, reqs := range byHash {
		for _, r := range reqs {
			waitsForIntegration = waitsForIntegration || !r.queued
		}
	}
	if !waitsForIntegration {
		return results, nil
	}
	// Integrate even when everything was a duplicate: the existing copy may
	// be queued but not yet integrated (left by a crash).
	root, visible, err := l.integrateAndIndex(ctx)
	if err != nil {
		return results, err
	}
	if len(fresh) == 0 {
		return results, nil
	}
	waiting := fresh[:0:0]
	for _, h := range fresh {
		for _, r := range byHash[keyOf[string(h)]] {
			if !r.queued {
				waiting = append(waiting, h)
				break
			}
		}
	}
	fresh = waiting
	if len(fresh) == 0 {
		return results, nil
	}
	// The leaves just handed to the hook are the ones to prove, without
	// reading them again; others (a log without a hook, or a long catch-up)
	// are read by hash.
	integrated := make(map[string]Leaf, len(visible))
	for _, lf := range visible {
		integrated[string(lf.Hash)] = lf
	}
	var known []Leaf
	var missing [][]byte
	for _, h := range fresh {
		if lf, ok := integrated[string(h)]; ok {
			known = append(known, lf)
		} else {
			missing = append(missing, h)
		}
	}
	proven, err := l.prove(ctx, known, root)
	if err != nil {
		return results, fmt.Errorf("proving the new leaves: %w", err)
	}
	for _, p := range proven {
		results[keyOf[string(p.Leaf.Hash)]] = Appended{Proven: p}
	}
	if len(missing) > 0 {
		proven, err := l.ByHash(ctx, missing)
		if err != nil {
			return results, fmt.Errorf("proving the new leaves: %w", err)
		}
		for _, p := range proven {
			results[keyOf[string(p.Leaf.Hash)]] = Appended{Proven: p}
		}
	}
	for _, h := range fresh {
		if _, ok := results[keyOf[string(h)]]; !ok {
			return results, fmt.Errorf("leaf %x was queued but is not in the tree after integration", h)
		}
	}
	return results, nil
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

// identifiedByHash tells whether every leaf's identity is its leaf hash.
func identifiedByHash(leaves []*trillian.LogLeaf) bool {
	for _, lf := range leaves {
		if !bytes.Equal(lf.LeafIdentityHash, lf.MerkleLeafHash) {
			return false
		}
	}
	return true
}

// integrateAndIndex integrates everything queued, hands it to the hook,
// brings the right border to the new root and publishes it. It returns the stored root and the leaves handed to
// the hook (nil when there were many, as after a long outage).
func (l *Log) integrateAndIndex(ctx context.Context) (Root, []Leaf, error) {
	if err := l.integrateAll(ctx); err != nil {
		return Root{}, nil, err
	}
	root, err := l.storedRoot(ctx)
	if err != nil {
		return Root{}, nil, err
	}
	leaves, err := l.catchUpHook(ctx, root)
	if err != nil {
		return Root{}, nil, err
	}
	if err := l.syncBorder(ctx, root, leaves); err != nil {
		return Root{}, nil, err
	}
	l.behind = false
	return root, leaves, nil
}

// catchUpHook hands the hook every integrated leaf of the stored root it has
// not seen, and the signed checkpoint of the tree to store with them. It
// returns those leaves unless there were more than a few batches' worth.
func (l *Log) catchUpHook(ctx context.Context, root Root) ([]Leaf, error) {
	if l.cfg.Hook == nil {
		return nil, nil
	}
	var err error
	l.mu.Lock()
	loaded, from, cpSize, hasCP := l.hookLoaded, l.indexed, l.storedCPSize, l.storedCP
	l.mu.Unlock()
	if !loaded {
		var cp string
		if from, cp, err = l.watermark(ctx, l.tree.TreeId); err != nil {
			return nil, fmt.Errorf("reading the index watermark: %w", err)
		}
		if hasCP = cp != ""; hasCP {
			c, err := note.Verify(cp, "", l.pub)
			if err != nil {
				return nil, fmt.Errorf("the stored checkpoint: %w", err)
			}
			cpSize = c.Size
		}
	}
	if from == root.Size && hasCP && cpSize == root.Size {
		return nil, nil
	}
	var handed []Leaf
	keep := from+uint64(4*l.cfg.MaxBatch) >= root.Size
	cp, err := l.Checkpoint(root)
	if err != nil {
		return nil, fmt.Errorf("signing the checkpoint at size %d: %w", root.Size, err)
	}
	const chunk = 1000
	for {
		n := min(uint64(chunk), root.Size-from)
		var leaves []Leaf
		if n > 0 {
			if leaves, err = l.leavesInRange(ctx, from, n); err != nil {
				return nil, fmt.Errorf("reading leaves %d..%d for indexing: %w", from, from+n, err)
			}
			if uint64(len(leaves)) != n {
				return nil, fmt.Errorf("reading leaves %d..%d for indexing: got %d", from, from+n, len(leaves))
			}
		}
		b := Batch{TreeID: l.tree.TreeId, Offset: l.offset, Leaves: leaves, NewSize: from + n}
		if b.NewSize == root.Size {
			b.Checkpoint = cp
		}
		q := &pgx.Batch{}
		if err := l.recordBatch(ctx, b, q); err != nil {
			return nil, fmt.Errorf("indexing leaves %d..%d: %w", from, from+n, err)
		}
		if err := pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error { return tx.SendBatch(ctx, q).Close() }); err != nil {
			return nil, fmt.Errorf("indexing leaves %d..%d: %w", from, from+n, err)
		}
		from += n
		l.mu.Lock()
		l.hookLoaded, l.indexed = true, from
		if b.Checkpoint != "" {
			l.storedCPSize, l.storedCP = from, true
		}
		l.mu.Unlock()
		if keep {
			handed = append(handed, leaves...)
		}
		if from == root.Size {
			return handed, nil
		}
	}
}

// leavesInRange reads integrated leaves in index order.
func (l *Log) leavesInRange(ctx context.Context, start, count uint64) ([]Leaf, error) {
	rows, err := l.pool.Query(ctx, l.leafSelect(false)+"s.SequenceNumber >= $2 AND s.SequenceNumber < $3 ORDER BY s.SequenceNumber",
		l.tree.TreeId, int64(start), int64(start+count))
	if err != nil {
		return nil, err
	}
	return scanLeaves(rows)
}

// integrateAll integrates everything queued, in batches.
func (l *Log) integrateAll(ctx context.Context) error {
	return l.integrateQueue(ctx, l.tree)
}

// integrateQueue integrates everything queued for tree (this log's or one
// it is retiring) with Trillian's sequencer, in batches.
func (l *Log) integrateQueue(ctx context.Context, tree *trillian.Tree) error {
	limit := l.cfg.MaxBatch * 4
	for {
		n, err := tlog.IntegrateBatch(ctx, tree, limit, 0, 0, l.ts, l.storage, quota.Noop())
		if err != nil {
			return fmt.Errorf("integrating: %w", err)
		}
		if n < limit {
			return nil
		}
	}
}
