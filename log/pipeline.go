package log

import (
	"context"
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
	// in the same batch); only Leaf.Hash is set then.
	Duplicate bool
	Proven
}

type appendReq struct {
	ctx   context.Context
	value []byte
	extra []byte
	hash  []byte
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
	return l.submit(ctx, &appendReq{ctx: ctx, value: value, extra: extra, hash: LeafHash(value), done: make(chan appendResult, 1)})
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
	case <-l.stopped:
		// The pipeline answered everything it took before it stopped.
		select {
		case r := <-req.done:
			return r.res, r.err
		default:
			return Appended{}, ErrClosed
		}
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
			// As for a batch: what the queue acknowledged comes first.
			select {
			case <-l.queued:
				l.behind = true
			default:
			}
			x.done <- x.f()
			continue
		case <-l.queued:
			l.behind = true
			continue
		case <-l.stop:
			l.drain(ErrClosed)
			// Every leaf the queue acknowledged is known before the last
			// integration.
			<-l.queueStopped
			select {
			case <-l.queued:
				l.behind = true
			default:
			}
			l.integrateBeforeStop()
			return
		}
		// Leaves the queue acknowledged before these appends were made
		// are integrated before them (the queue signals before it answers).
		select {
		case <-l.queued:
			l.behind = true
		default:
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
	// A batch must not carry one leaf twice: its insert would see its own
	// row. Later copies are duplicates of the first.
	byHash := map[string][]*appendReq{}
	var leaves []*trillian.LogLeaf
	for _, r := range live {
		k := string(r.hash)
		if _, seen := byHash[k]; !seen {
			leaves = append(leaves, &trillian.LogLeaf{LeafValue: r.value, ExtraData: r.extra, MerkleLeafHash: r.hash, LeafIdentityHash: r.hash})
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

// commitBatch integrates the leaves (distinct hashes) in one transaction
// (commitDirectly), having first caught up from storage if the pipeline is
// behind it: leaves queued by EnqueueIdentified or left by a crash, records
// the personality has not taken, or a commit that failed but may have been
// applied.
func (l *Log) commitBatch(ctx context.Context, leaves []*trillian.LogLeaf, byHash map[string][]*appendReq) (map[string]Appended, error) {
	if !l.canCommitDirectly() {
		l.metrics.catchUps.WithLabelValues(l.cfg.Name).Inc()
		if _, _, err := l.integrateAndIndex(ctx); err != nil {
			return nil, fmt.Errorf("catching up before the batch: %w", err)
		}
	}
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
	proven, err := l.prove(ctx, l.ownReader, added, root)
	if err != nil {
		return nil, fmt.Errorf("proving the new leaves: %w", err)
	}
	for _, p := range proven {
		results[string(p.Leaf.Hash)] = Appended{Proven: p}
	}
	return results, nil
}

// integrateAndIndex integrates everything queued, hands it to the hook,
// brings the right border to the new root and publishes it. It returns the
// stored root and the leaves handed to the hook (nil when there were many,
// as after a long outage).
func (l *Log) integrateAndIndex(ctx context.Context) (Root, []Leaf, error) {
	n, err := l.integrateQueue(ctx, l.tree)
	if n > 0 || err != nil {
		// Trillian's sequencer rewrote tiles behind the pipeline's back
		// (a failed pass may have committed too).
		l.written = nil
	}
	if err != nil {
		return Root{}, nil, err
	}
	if n > 0 {
		l.metrics.commits.WithLabelValues(l.cfg.Name, "trillian").Inc()
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
		// Known from now on, also when there is nothing to catch up: the
		// one-transaction path needs it (canCommitDirectly).
		l.mu.Lock()
		l.hookLoaded, l.indexed, l.storedCP, l.storedCPSize = true, from, hasCP, cpSize
		l.mu.Unlock()
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

// integrateQueue integrates everything queued for tree (this log's or one
// it is retiring) with Trillian's sequencer, in batches, and returns how
// many leaves it integrated.
func (l *Log) integrateQueue(ctx context.Context, tree *trillian.Tree) (int, error) {
	limit := l.cfg.MaxBatch * 4
	total := 0
	for {
		n, err := tlog.IntegrateBatch(ctx, tree, limit, 0, 0, l.ts, l.storage, quota.Noop())
		total += n
		if err != nil {
			return total, fmt.Errorf("integrating: %w", err)
		}
		if n < limit {
			return total, nil
		}
	}
}
