package log

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/trillian/storage/storagepb"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/signet-dev/signet/log/note"
	"github.com/signet-dev/signet/log/pgstore"
	"github.com/signet-dev/signet/log/tiles"
)

// appender is the append pipeline of a log's current tree: one goroutine
// (run) takes appends in batches, integrates each (commit.go), hands its
// leaves to the hook and publishes the new root on the tree; another
// (runQueue, queue.go) queues leaves acknowledged before integration.
type appender struct {
	cfg     Config
	tree    *Tree
	store   *pgstore.Tree
	logger  *slog.Logger
	metrics *Metrics

	queue chan *appendReq
	// exclusive runs work on the pipeline goroutine, between batches.
	exclusive chan exclusiveWork
	// enqueue feeds the queue goroutine (queue.go), which signals queued
	// when it queued leaves and closes queueStopped when it is done.
	enqueue      chan *enqueueReq
	queued       chan struct{}
	queueStopped chan struct{}
	stop         <-chan struct{}
	stopped      chan struct{}

	// ownReader proves from the tree's tiles with direct reads: the
	// pipeline's reads must work while it stops, after the gatherers have.
	ownReader tiles.Reader
	// border is the tree's right border at the last published root, from
	// which the next batch's nodes and root are computed; only the pipeline
	// goroutine (and Open before it) touches it. nil until read from the
	// tiles.
	border *compact.Range
	// behind is set while queued leaves may be waiting for integration;
	// only the pipeline goroutine touches it.
	behind bool
	// written are the tiles the pipeline last wrote, by ID, for the next
	// batch; only the pipeline goroutine touches it.
	written map[string]*storagepb.SubtreeProto
	// recent are the hashes of the leaves before recentEnd, the tree's
	// size at the last commit (the last batch's and up to GroupSize-1
	// before them); only the pipeline goroutine touches them.
	recent    [][]byte
	recentEnd uint64

	mu sync.Mutex
	// hook progress: leaves handed over so far and the size of the
	// checkpoint stored with them (loaded from the watermark once).
	hookLoaded   bool
	indexed      uint64
	storedCPSize uint64
	storedCP     bool
}

func newAppender(cfg Config, t *Tree, logger *slog.Logger, stop <-chan struct{}) *appender {
	a := &appender{
		cfg: cfg, tree: t, store: t.store, logger: logger, metrics: cfg.Metrics,
		queue: make(chan *appendReq, cfg.QueueSize), exclusive: make(chan exclusiveWork), stop: stop, stopped: make(chan struct{}),
		enqueue: make(chan *enqueueReq, cfg.QueueSize), queued: make(chan struct{}, 1), queueStopped: make(chan struct{}),
	}
	a.ownReader = tiles.Reader{Tree: t.TreeID(), Cache: cfg.Tiles,
		Fetch: func(ctx context.Context, ids [][]byte) ([][]byte, error) { return fetchTilesDirect(ctx, a.store, ids) },
		Leaves: func(ctx context.Context, groups []uint64) (map[uint64][]byte, error) {
			return a.store.LeafGroups(ctx, groups, tiles.GroupSize)
		},
	}
	return a
}

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

// append is Log.Append.
func (a *appender) append(ctx context.Context, value, extra []byte) (Appended, error) {
	return a.submit(ctx, &appendReq{ctx: ctx, value: value, extra: extra, hash: LeafHash(value), done: make(chan appendResult, 1)})
}

func (a *appender) submit(ctx context.Context, req *appendReq) (Appended, error) {
	select {
	case <-a.stop:
		return Appended{}, ErrClosed
	default:
	}
	select {
	case a.queue <- req:
	default:
		a.metrics.appends.WithLabelValues(a.cfg.Name, "overloaded").Inc()
		return Appended{}, ErrOverloaded
	}
	a.metrics.queueLength.WithLabelValues(a.cfg.Name).Set(float64(len(a.queue)))
	select {
	case r := <-req.done:
		return r.res, r.err
	case <-a.stopped:
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

func (a *appender) run() {
	defer close(a.stopped)
	retry := time.NewTicker(a.cfg.IntegrateEvery)
	defer retry.Stop()
	for {
		var first *appendReq
		select {
		case first = <-a.queue:
		case <-retry.C:
			if a.behind {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				if _, _, err := a.integrateAndIndex(ctx); err != nil {
					a.logger.Error("integrating queued leaves failed; will retry", "err", err)
				}
				cancel()
			}
			continue
		case x := <-a.exclusive:
			// As for a batch: what the queue acknowledged comes first.
			select {
			case <-a.queued:
				a.behind = true
			default:
			}
			x.done <- x.f()
			continue
		case <-a.queued:
			a.behind = true
			continue
		case <-a.stop:
			a.drain(ErrClosed)
			// Every leaf the queue acknowledged is known before the last
			// integration.
			<-a.queueStopped
			select {
			case <-a.queued:
				a.behind = true
			default:
			}
			a.integrateBeforeStop()
			return
		}
		// Leaves the queue acknowledged before these appends were made
		// are integrated before them (the queue signals before it answers).
		select {
		case <-a.queued:
			a.behind = true
		default:
		}
		batch := []*appendReq{first}
	gather:
		for len(batch) < a.cfg.MaxBatch {
			select {
			case r := <-a.queue:
				batch = append(batch, r)
			default:
				break gather
			}
		}
		a.metrics.queueLength.WithLabelValues(a.cfg.Name).Set(float64(len(a.queue)))
		a.process(batch)
	}
}

// integrateBeforeStop integrates leaves that were acknowledged when queued
// (EnqueueIdentified: a CT log's SCT promises inclusion within the maximum
// merge delay) before the pipeline stops, so a clean stop never leaves them
// waiting for the next start, which may be a key rotation's or never come.
// A failure is logged: the leaves stay durably queued, and the next Open
// (or a rotation) integrates them.
func (a *appender) integrateBeforeStop() {
	if !a.behind {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), stopIntegrationTimeout)
	defer cancel()
	if _, _, err := a.integrateAndIndex(ctx); err != nil {
		a.logger.Error("integrating queued leaves before stopping failed; the next start integrates them", "err", err)
		return
	}
	a.logger.Info("integrated the queued leaves before stopping")
}

// stopIntegrationTimeout bounds how long a clean stop spends integrating
// queued leaves.
const stopIntegrationTimeout = 30 * time.Second

func (a *appender) drain(err error) {
	for {
		select {
		case r := <-a.queue:
			r.answer(appendResult{err: err})
		default:
			return
		}
	}
}

// process queues, integrates, hands to the hook and proves one batch.
func (a *appender) process(batch []*appendReq) {
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
	var leaves pgstore.Leaves
	for _, r := range live {
		k := string(r.hash)
		if _, seen := byHash[k]; !seen {
			leaves.Hashes = append(leaves.Hashes, r.hash)
			leaves.Values = append(leaves.Values, r.value)
			leaves.Extras = append(leaves.Extras, r.extra)
		}
		byHash[k] = append(byHash[k], r)
	}
	// The batch runs on its own deadline: callers' contexts only decide
	// whether they still wait for the answer.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	results, err := a.commitBatch(ctx, leaves)
	a.metrics.integrate.WithLabelValues(a.cfg.Name).Observe(time.Since(start).Seconds())
	a.metrics.batchSize.WithLabelValues(a.cfg.Name).Observe(float64(len(live)))
	if err != nil {
		a.logger.Error("append batch failed", "leaves", len(leaves.Hashes), "err", err)
		for _, r := range live {
			r.answer(appendResult{err: err})
		}
		a.metrics.appends.WithLabelValues(a.cfg.Name, "error").Add(float64(len(live)))
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
			a.metrics.appends.WithLabelValues(a.cfg.Name, outcome).Inc()
			r.answer(appendResult{res: out})
		}
	}
}

// commitBatch integrates the leaves (distinct hashes) in one transaction
// (commitDirectly), having first caught up from storage if the pipeline is
// behind it: leaves queued by EnqueueIdentified or left by a crash, records
// the personality has not taken, or a commit that failed but may have been
// applied.
func (a *appender) commitBatch(ctx context.Context, leaves pgstore.Leaves) (map[string]Appended, error) {
	if !a.canCommitDirectly() {
		a.metrics.catchUps.WithLabelValues(a.cfg.Name).Inc()
		if _, _, err := a.integrateAndIndex(ctx); err != nil {
			return nil, fmt.Errorf("catching up before the batch: %w", err)
		}
	}
	dups, root, added, err := a.commitDirectly(ctx, leaves)
	if err != nil {
		return nil, err
	}
	results := make(map[string]Appended, len(leaves.Hashes))
	for i, h := range leaves.Hashes {
		if dups[i] {
			results[string(h)] = Appended{Duplicate: true, Proven: Proven{Leaf: Leaf{Hash: h}}}
		}
	}
	a.recentGroups(added)
	proven, err := a.tree.prove(ctx, a.ownReader, added, root)
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
func (a *appender) integrateAndIndex(ctx context.Context) (Root, []Leaf, error) {
	n, err := a.store.IntegrateQueued(ctx, integrateLimit(a.cfg))
	if n > 0 || err != nil {
		// Trillian's sequencer rewrote tiles behind the pipeline's back
		// (a failed pass may have committed too).
		a.written = nil
	}
	if err != nil {
		return Root{}, nil, err
	}
	if n > 0 {
		a.metrics.commits.WithLabelValues(a.cfg.Name, "trillian").Inc()
	}
	head, err := a.store.LatestHead(ctx)
	if err != nil {
		return Root{}, nil, err
	}
	root := Root(head)
	if a.cfg.Hook == nil && n > 0 {
		// A log without a personality's records (the CT log) keeps its
		// latest signed checkpoint all the same, before publishing the
		// root: a key rotation freezes the tree there (the old key is
		// gone by then), and the frozen tree is served up to it.
		cp, err := a.tree.Checkpoint(root)
		if err != nil {
			return Root{}, nil, fmt.Errorf("signing the checkpoint of size %d: %w", root.Size, err)
		}
		if err := a.store.WriteRecords(ctx, pgstore.Records{Size: root.Size, Checkpoint: cp}); err != nil {
			return Root{}, nil, err
		}
	}
	leaves, err := a.catchUpHook(ctx, root)
	if err != nil {
		return Root{}, nil, err
	}
	if err := a.syncBorder(ctx, root, leaves); err != nil {
		return Root{}, nil, err
	}
	a.behind = false
	return root, leaves, nil
}

// catchUpHook hands the hook every integrated leaf of the stored root it has
// not seen, and the signed checkpoint of the tree to store with them. It
// returns those leaves unless there were more than a few batches' worth.
func (a *appender) catchUpHook(ctx context.Context, root Root) ([]Leaf, error) {
	if a.cfg.Hook == nil {
		return nil, nil
	}
	var err error
	a.mu.Lock()
	loaded, from, cpSize, hasCP := a.hookLoaded, a.indexed, a.storedCPSize, a.storedCP
	a.mu.Unlock()
	if !loaded {
		var cp string
		if from, cp, err = a.store.Watermark(ctx); err != nil {
			return nil, err
		}
		if hasCP = cp != ""; hasCP {
			c, err := note.Verify(cp, "", a.tree.pub)
			if err != nil {
				return nil, fmt.Errorf("the stored checkpoint: %w", err)
			}
			cpSize = c.Size
		}
		// Known from now on, also when there is nothing to catch up: the
		// one-transaction path needs it (canCommitDirectly).
		a.mu.Lock()
		a.hookLoaded, a.indexed, a.storedCP, a.storedCPSize = true, from, hasCP, cpSize
		a.mu.Unlock()
	}
	if from == root.Size && hasCP && cpSize == root.Size {
		return nil, nil
	}
	var handed []Leaf
	keep := from+uint64(4*a.cfg.MaxBatch) >= root.Size
	cp, err := a.tree.Checkpoint(root)
	if err != nil {
		return nil, fmt.Errorf("signing the checkpoint at size %d: %w", root.Size, err)
	}
	const chunk = 1000
	for {
		n := min(uint64(chunk), root.Size-from)
		var leaves []Leaf
		if n > 0 {
			if leaves, err = a.store.LeavesInRange(ctx, from, n, pgstore.With{}); err != nil {
				return nil, fmt.Errorf("indexing: %w", err)
			}
			if uint64(len(leaves)) != n {
				return nil, fmt.Errorf("reading leaves %d..%d for indexing: got %d", from, from+n, len(leaves))
			}
		}
		b := Batch{TreeID: a.store.ID(), Offset: a.tree.offset, Leaves: leaves, NewSize: from + n}
		if b.NewSize == root.Size {
			b.Checkpoint = cp
		}
		records, err := a.records(ctx, b)
		if err != nil {
			return nil, fmt.Errorf("indexing leaves %d..%d: %w", from, from+n, err)
		}
		if err := a.store.WriteRecords(ctx, records); err != nil {
			return nil, err
		}
		from += n
		a.mu.Lock()
		a.hookLoaded, a.indexed = true, from
		if b.Checkpoint != "" {
			a.storedCPSize, a.storedCP = from, true
		}
		a.mu.Unlock()
		if keep {
			handed = append(handed, leaves...)
		}
		if from == root.Size {
			return handed, nil
		}
	}
}

// syncBorder brings the right border (and the published root) to the stored
// root: by appending leaves when they are exactly the ones missing,
// otherwise by reading it from the tiles. Either way the border must hash to
// the root stored with the tiles; if it does not, storage contradicts itself
// and nothing is published.
func (a *appender) syncBorder(ctx context.Context, root Root, leaves []Leaf) error {
	if cur := a.tree.published(); a.border != nil && a.border.End() == root.Size && cur != nil &&
		cur.Size == root.Size && bytes.Equal(cur.Hash, root.Hash) {
		return nil
	}
	n := len(leaves)
	if a.border != nil && n > 0 && leaves[0].Index == a.border.End() && leaves[n-1].Index+1 == root.Size {
		for _, lf := range leaves {
			if err := a.border.Append(lf.Hash, nil); err != nil {
				return err
			}
		}
	} else {
		b, err := a.ownReader.Border(ctx, root.Size)
		if err != nil {
			return err
		}
		a.border = b
	}
	got, err := a.border.GetRootHash(nil)
	if root.Size == 0 {
		got = rfc6962.DefaultHasher.EmptyRoot()
	}
	if err != nil || !bytes.Equal(got, root.Hash) {
		// Drop it: the next sync reads it again from the tiles.
		a.border = nil
		return fmt.Errorf("the tree's tiles at size %d hash to %x, but the stored root is %x (%v): storage is inconsistent", root.Size, got, root.Hash, err)
	}
	a.tree.publish(root)
	return nil
}
