// Package log is Signet's transparency log engine: Trillian's log storage and
// sequencer running in this process on PostgreSQL, with an append pipeline
// that gathers concurrent appends into batches, integrates each batch at once
// (in one transaction of its own when it can, see commit.go) and answers
// every waiter with its index, inclusion proof and the new root. Proofs come
// from the stored tiles through a bounded cache (log/tiles, read.go), so
// memory does not grow with the tree. docs/architecture.md describes it.
// Personalities (log/rekorapi, the CT log) sit on top; the engine knows
// nothing of HTTP or entry formats.
package log

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/trillian"
	"github.com/google/trillian/extension"
	tlog "github.com/google/trillian/log"
	"github.com/google/trillian/monitoring"
	"github.com/google/trillian/quota"
	"github.com/google/trillian/server"
	"github.com/google/trillian/storage"
	"github.com/google/trillian/storage/postgresql"
	"github.com/google/trillian/storage/storagepb"
	"github.com/google/trillian/types"
	"github.com/google/trillian/util/clock"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/signet-dev/signet/log/note"
	"github.com/signet-dev/signet/log/tiles"
)

var (
	// ErrNotFound means no such leaf is in the tree.
	ErrNotFound = errors.New("not found in the log")
	// ErrOverloaded means the append queue is full; retry later.
	ErrOverloaded = errors.New("the log's append queue is full")
	// ErrClosed means the log is shutting down.
	ErrClosed = errors.New("the log is shutting down")
	// ErrFrozen means the tree was retired by a key rotation and takes no
	// more entries.
	ErrFrozen = errors.New("the tree is frozen: the log's key was rotated")
)

// Leaf is an integrated entry.
type Leaf struct {
	Index        uint64
	Hash         []byte // RFC 6962 leaf hash
	Value        []byte
	Extra        []byte // personality data stored beside the leaf, not hashed
	IntegratedAt time.Time
	// Sidecar is what the personality keeps beside the leaf
	// (Records.Sidecars), read with it.
	Sidecar []byte
}

// Root is a tree head.
type Root struct {
	Size      uint64
	Hash      []byte
	Timestamp time.Time
}

// Batch is what the hook is told after an integration.
type Batch struct {
	TreeID int64
	// Offset is the tree's first index in the log's index space across key
	// rotations: the sizes of the trees this log retired before it.
	Offset uint64
	Leaves []Leaf
	// NewSize is the tree size the hook has seen once it takes Leaves.
	NewSize uint64
	// Checkpoint is the signed checkpoint at NewSize, set when NewSize is
	// the tree's size. The engine stores it with the records: if the key
	// rotates, the tree is frozen at the stored checkpoint, which is then
	// the only signature of the old key left.
	Checkpoint string
	// New is set when the leaves were integrated by this very transaction
	// (the one-transaction path), so no record of them can exist yet;
	// catching up after a crash or after Trillian's sequencer, it is not.
	New bool
}

// Config describes one log.
type Config struct {
	// Name identifies the log's tree in the database ("rekor", "ct", ...).
	Name string
	// OriginFor names the checkpoint origin (its first line) for the tree.
	OriginFor func(treeID int64) string
	// SignerName is the name on the checkpoint's signature line.
	SignerName string
	Signer     crypto.Signer
	// MaxBatch caps how many appends one integration takes (default 1024).
	MaxBatch int
	// QueueSize caps appends waiting for a batch before ErrOverloaded (default 8192).
	QueueSize int
	// IntegrateEvery is the longest leaves queued by EnqueueIdentified wait
	// for integration when no append needs them integrated at once
	// (default 200 ms).
	IntegrateEvery time.Duration
	Hook           Integrated
	Logger         *slog.Logger
	Metrics        *Metrics
	// Tiles caches the decoded tiles every proof is made from; logs may
	// share one. Nil: a private cache of DefaultTileCacheBytes.
	Tiles *tiles.Cache
	// RotateOnKeyChange makes a signer other than the tree's a key rotation:
	// the tree is retired (see RetiredKeys) and a new one starts. Without it
	// such a start is refused. With a Hook, the retired tree stays readable
	// (Retired), frozen at the checkpoint the hook stored, and the new tree's
	// indexes continue after it (Offset).
	RotateOnKeyChange bool
}

// Defaults of Config, also the configuration's (internal/config, where
// docs/configuration.md documents them).
const (
	DefaultMaxBatch       = 1024
	DefaultQueueSize      = 8192
	DefaultIntegrateEvery = 200 * time.Millisecond
)

// readers is how many goroutines gather each kind of read.
const readers = 4

// DefaultTileCacheBytes bounds a log's tile cache when the configuration
// gives none: 8,000 full tiles, the bottom tiles of 2M entries.
const DefaultTileCacheBytes = 128 << 20

// Log is one Merkle tree and its append pipeline.
type Log struct {
	cfg     Config
	tree    *trillian.Tree
	storage storage.LogStorage
	rpc     *server.TrillianLogRPCServer
	ts      clock.TimeSource
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
	// leafReads and tileReads gather concurrent reads into shared queries.
	leafReads *gatherer[[]Leaf]
	tileReads *gatherer[[]byte]
	stop      chan struct{}
	closeOnce sync.Once
	stopped   chan struct{}

	pool *pgxpool.Pool
	pub  crypto.PublicKey
	// reader proves from the tree's tiles for readers (misses gathered
	// with other readers'); ownReader is the pipeline's, whose reads must
	// work while it stops, after the gatherers have.
	reader, ownReader tiles.Reader
	// border is the tree's right border at the last published root, from
	// which the next batch's nodes and root are computed; only the pipeline
	// goroutine (and Open before it) touches it. nil until read from the
	// tiles.
	border *compact.Range
	// root is the root readers see (published once the hook has taken its
	// leaves).
	root atomic.Pointer[Root]
	// offset is where this tree starts in the log's index space.
	offset uint64
	// frozen is set on a retired tree: its final root and checkpoint.
	frozen *frozenTree
	// retired are the trees key rotations froze, oldest first.
	retired []*Log

	mu sync.Mutex
	// checkpoints are the latest signed, newest last: answers to a batch
	// still being written ask for theirs while the next batch signs its own.
	checkpoints []cachedCheckpoint
	// hook progress: leaves handed over so far and the size of the
	// checkpoint stored with them (loaded from Watermark once).
	hookLoaded   bool
	indexed      uint64
	storedCPSize uint64
	storedCP     bool
	origin       string
	// behind is set while queued leaves may be waiting for integration;
	// only the pipeline goroutine touches it.
	behind bool
	// written are the tiles the pipeline last wrote, by ID, for the next
	// batch; only the pipeline goroutine touches it.
	written map[string]*storagepb.SubtreeProto
}

type frozenTree struct {
	root Root
	note string
}

type cachedCheckpoint struct {
	size uint64
	hash string
	note string
}

// Open finds the named log's tree (creating and initialising it on first
// use), hands anything integrated but not yet seen by the hook to it, and
// starts the append pipeline.
func Open(ctx context.Context, pool *pgxpool.Pool, cfg Config) (*Log, error) {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.IntegrateEvery <= 0 {
		cfg.IntegrateEvery = DefaultIntegrateEvery
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.Signer == nil {
		return nil, errors.New("log: a signer is required")
	}
	// Trillian's sequencer keeps its metrics in package variables that must
	// exist before IntegrateBatch runs; ours are in Metrics.
	tlog.InitMetrics(monitoring.InertMetricFactory{})
	ls := postgresql.NewLogStorage(pool, monitoring.InertMetricFactory{})
	admin := postgresql.NewAdminStorage(pool)
	ts := clock.System
	rpc := server.NewTrillianLogRPCServer(extension.Registry{
		AdminStorage: admin, LogStorage: ls, QuotaManager: quota.Noop(),
	}, ts)
	l := &Log{
		cfg: cfg, storage: ls, rpc: rpc, ts: ts, logger: cfg.Logger.With("log", cfg.Name), metrics: cfg.Metrics,
		queue: make(chan *appendReq, cfg.QueueSize), exclusive: make(chan exclusiveWork), stop: make(chan struct{}), stopped: make(chan struct{}),
		enqueue: make(chan *enqueueReq, cfg.QueueSize), queued: make(chan struct{}, 1), queueStopped: make(chan struct{}),
		pub: cfg.Signer.Public(), pool: pool,
	}
	if cfg.Tiles == nil {
		cfg.Tiles = tiles.NewCache(DefaultTileCacheBytes, nil)
		l.cfg.Tiles = cfg.Tiles
	}
	tree, err := l.findOrCreateTree(ctx, pool, admin)
	if err != nil {
		return nil, err
	}
	l.tree = tree
	l.reader = tiles.Reader{Tree: tree.TreeId, Cache: cfg.Tiles, Fetch: l.fetchTiles}
	l.ownReader = tiles.Reader{Tree: tree.TreeId, Cache: cfg.Tiles, Fetch: l.fetchTilesDirect}
	l.origin = strconv.FormatInt(tree.TreeId, 10)
	if cfg.OriginFor != nil {
		l.origin = cfg.OriginFor(tree.TreeId)
	}
	if cfg.Hook != nil {
		if l.retired, err = l.openRetired(ctx, pool, admin); err != nil {
			return nil, err
		}
		for _, r := range l.retired {
			l.offset += r.frozen.root.Size
		}
	}
	// Leaves queued by a process that died before integrating them are
	// integrated, the hook catches up and the root is published.
	if _, _, err := l.integrateAndIndex(ctx); err != nil {
		return nil, fmt.Errorf("log %s: %w", cfg.Name, err)
	}
	l.leafReads = newGatherer(readers, l.stop, l.leavesByHashes)
	l.tileReads = newGatherer(readers, l.stop, l.tilesByID)
	go l.runQueue()
	go l.run()
	return l, nil
}

func (l *Log) findOrCreateTree(ctx context.Context, pool *pgxpool.Pool, admin storage.AdminStorage) (*trillian.Tree, error) {
	pubDER, err := x509.MarshalPKIXPublicKey(l.cfg.Signer.Public())
	if err != nil {
		return nil, fmt.Errorf("log %s: encoding its public key: %w", l.cfg.Name, err)
	}
	var treeID int64
	var storedKey []byte
	err = pool.QueryRow(ctx, "SELECT tree_id, public_key FROM signet_logs WHERE name = $1", l.cfg.Name).Scan(&treeID, &storedKey)
	if err == nil && !bytes.Equal(storedKey, pubDER) && l.cfg.RotateOnKeyChange {
		if err := l.checkFreezable(ctx, treeID, storedKey); err != nil {
			return nil, err
		}
		// Leaves acknowledged when queued (a CT log's SCTs) and left queued
		// by a crash go into the tree their key promised, before it stops
		// taking entries; nothing integrates a retired tree's queue later.
		retiring, getErr := storage.GetTree(ctx, admin, treeID)
		if getErr != nil {
			return nil, fmt.Errorf("log %s: loading tree %d to retire it: %w", l.cfg.Name, treeID, getErr)
		}
		if _, err := l.integrateQueue(ctx, retiring); err != nil {
			return nil, fmt.Errorf("log %s: integrating tree %d's queued leaves before retiring it: %w", l.cfg.Name, treeID, err)
		}
		if _, err := pool.Exec(ctx, "UPDATE signet_logs SET name = name || '@' || tree_id, retired_at = now() WHERE name = $1 AND tree_id = $2", l.cfg.Name, treeID); err != nil {
			return nil, fmt.Errorf("log %s: retiring tree %d: %w", l.cfg.Name, treeID, err)
		}
		l.logger.Warn("KEY ROTATION: the configured signer is not the key of the current tree; it is retired (its key stays in the trusted root) and a new tree starts",
			"retired_tree_id", treeID, "old_key_id", keyID(storedKey), "new_key_id", keyID(pubDER))
		err = pgx.ErrNoRows
	}
	if err == nil {
		if !bytes.Equal(storedKey, pubDER) {
			return nil, fmt.Errorf("log %s: the configured signer's key (ID %s) is not the key tree %d was created with (ID %s); "+
				"starting would publish signatures clients cannot check against the old key. Configure the original key", l.cfg.Name, keyID(pubDER), treeID, keyID(storedKey))
		}
		tree, err := storage.GetTree(ctx, admin, treeID)
		if err != nil {
			return nil, fmt.Errorf("log %s: loading tree %d: %w", l.cfg.Name, treeID, err)
		}
		return tree, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("log %s: looking up its tree: %w", l.cfg.Name, err)
	}
	tree, err := storage.CreateTree(ctx, admin, &trillian.Tree{
		TreeState:       trillian.TreeState_ACTIVE,
		TreeType:        trillian.TreeType_LOG,
		DisplayName:     truncate(l.cfg.Name, 20),
		MaxRootDuration: durationpb.New(0),
	})
	if err != nil {
		return nil, fmt.Errorf("log %s: creating tree: %w", l.cfg.Name, err)
	}
	if _, err := l.rpc.InitLog(ctx, &trillian.InitLogRequest{LogId: tree.TreeId}); err != nil {
		return nil, fmt.Errorf("log %s: initialising tree %d: %w", l.cfg.Name, tree.TreeId, err)
	}
	if _, err := pool.Exec(ctx, "INSERT INTO signet_logs (name, tree_id, public_key) VALUES ($1, $2, $3)", l.cfg.Name, tree.TreeId, pubDER); err != nil {
		return nil, fmt.Errorf("log %s: recording tree %d: %w", l.cfg.Name, tree.TreeId, err)
	}
	l.logger.Info("created log tree", "tree_id", tree.TreeId)
	return tree, nil
}

// checkFreezable refuses a rotation that would lose acknowledged entries:
// the retiring tree is frozen at the checkpoint the hook stored, which must
// cover every leaf the hook took (those are the ones ever acknowledged).
func (l *Log) checkFreezable(ctx context.Context, treeID int64, oldKey []byte) error {
	if l.cfg.Hook == nil {
		return nil
	}
	size, cp, err := l.watermark(ctx, treeID)
	if err != nil {
		return fmt.Errorf("log %s: reading tree %d's watermark before rotating its key: %w", l.cfg.Name, treeID, err)
	}
	if size == 0 {
		return nil
	}
	var got uint64
	if cp != "" {
		pub, err := x509.ParsePKIXPublicKey(oldKey)
		if err != nil {
			return fmt.Errorf("log %s: tree %d's key: %w", l.cfg.Name, treeID, err)
		}
		c, err := note.Verify(cp, "", pub)
		if err != nil {
			return fmt.Errorf("log %s: tree %d's stored checkpoint: %w", l.cfg.Name, treeID, err)
		}
		got = c.Size
	}
	if got != size {
		return fmt.Errorf("log %s: cannot rotate the key yet: tree %d has %d entries but its last stored checkpoint covers %d. "+
			"Start once with the old key (that records the final checkpoint), stop cleanly, then start with the new key", l.cfg.Name, treeID, size, got)
	}
	return nil
}

// openRetired opens the trees earlier keys signed, frozen at their stored
// checkpoints, oldest first, each starting where the one before ended.
func (l *Log) openRetired(ctx context.Context, pool *pgxpool.Pool, admin storage.AdminStorage) ([]*Log, error) {
	keys, err := RetiredKeys(ctx, pool, l.cfg.Name)
	if err != nil {
		return nil, err
	}
	var out []*Log
	var offset uint64
	for _, k := range keys {
		tree, err := storage.GetTree(ctx, admin, k.TreeID)
		if err != nil {
			return nil, fmt.Errorf("log %s: loading retired tree %d: %w", l.cfg.Name, k.TreeID, err)
		}
		size, cp, err := l.watermark(ctx, k.TreeID)
		if err != nil {
			return nil, fmt.Errorf("log %s: reading retired tree %d's final checkpoint: %w", l.cfg.Name, k.TreeID, err)
		}
		frozen := &frozenTree{root: Root{Hash: rfc6962.DefaultHasher.EmptyRoot()}, note: cp}
		origin := strconv.FormatInt(k.TreeID, 10)
		if size > 0 || cp != "" {
			c, err := note.Verify(cp, "", k.PublicKey)
			if err != nil {
				return nil, fmt.Errorf("log %s: retired tree %d's final checkpoint: %w", l.cfg.Name, k.TreeID, err)
			}
			frozen.root = Root{Size: c.Size, Hash: c.RootHash, Timestamp: k.End}
			origin = c.Origin
		}
		r := &Log{
			cfg: l.cfg, tree: tree, storage: l.storage, rpc: l.rpc, ts: l.ts, logger: l.logger.With("tree_id", k.TreeID),
			metrics: l.metrics, stop: make(chan struct{}), stopped: make(chan struct{}),
			pub: k.PublicKey, offset: offset, frozen: frozen, origin: origin, pool: pool,
		}
		r.reader = tiles.Reader{Tree: tree.TreeId, Cache: l.cfg.Tiles, Fetch: r.fetchTiles}
		r.ownReader = tiles.Reader{Tree: tree.TreeId, Cache: l.cfg.Tiles, Fetch: r.fetchTilesDirect}
		r.publish(frozen.root)
		r.cfg.Signer = nil
		close(r.stopped)
		offset += frozen.root.Size
		out = append(out, r)
	}
	return out, nil
}

// Retired are the trees earlier keys of this log signed, frozen and
// readable, oldest first.
func (l *Log) Retired() []*Log { return l.retired }

// Offset is where this tree starts in the log's index space: the entries of
// the trees retired before it.
func (l *Log) Offset() uint64 { return l.offset }

// PublicKey is the key that signs (or signed) this tree's checkpoints.
func (l *Log) PublicKey() crypto.PublicKey { return l.pub }

// RetiredKey is the key of a tree retired by a key rotation and when it signed.
type RetiredKey struct {
	TreeID     int64
	PublicKey  crypto.PublicKey
	Start, End time.Time
}

// RetiredKeys lists the keys log name used before, oldest first.
func RetiredKeys(ctx context.Context, pool *pgxpool.Pool, name string) ([]RetiredKey, error) {
	rows, err := pool.Query(ctx, "SELECT l.tree_id, l.public_key, t.CreateTimeMillis, l.retired_at FROM signet_logs l JOIN Trees t ON t.TreeId = l.tree_id WHERE l.name = $1 || '@' || l.tree_id AND l.retired_at IS NOT NULL ORDER BY l.retired_at", name)
	if err != nil {
		return nil, fmt.Errorf("log %s: listing retired keys: %w", name, err)
	}
	defer rows.Close()
	var out []RetiredKey
	for rows.Next() {
		var k RetiredKey
		var der []byte
		var createdMillis int64
		if err := rows.Scan(&k.TreeID, &der, &createdMillis, &k.End); err != nil {
			return nil, err
		}
		if k.PublicKey, err = x509.ParsePKIXPublicKey(der); err != nil {
			return nil, fmt.Errorf("log %s: retired tree %d key: %w", name, k.TreeID, err)
		}
		k.Start = time.UnixMilli(createdMillis)
		out = append(out, k)
	}
	return out, rows.Err()
}

func keyID(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// TreeID is the Trillian tree behind this log.
func (l *Log) TreeID() int64 { return l.tree.TreeId }

// Close stops the pipeline; appends waiting in the queue get ErrClosed.
func (l *Log) Close() {
	l.closeOnce.Do(func() { close(l.stop) })
	<-l.stopped
	if l.leafReads != nil {
		l.leafReads.wait()
		l.tileReads.wait()
	}
}

// Latest returns the newest root readers may see: the one the pipeline
// last published, a frozen tree's final one.
func (l *Log) Latest(ctx context.Context) (Root, error) {
	if r := l.published(); r != nil {
		return *r, nil
	}
	return Root{}, fmt.Errorf("log %s: no root published yet", l.cfg.Name)
}

// Checkpoint signs (or returns the cached signature of) a root; a frozen
// tree has only its final checkpoint.
func (l *Log) Checkpoint(root Root) (string, error) {
	if l.frozen != nil {
		if root.Size != l.frozen.root.Size || !bytes.Equal(root.Hash, l.frozen.root.Hash) {
			return "", fmt.Errorf("log %s: tree %d is frozen at size %d; no checkpoint for size %d", l.cfg.Name, l.tree.TreeId, l.frozen.root.Size, root.Size)
		}
		return l.frozen.note, nil
	}
	key := string(root.Hash)
	l.mu.Lock()
	for _, c := range l.checkpoints {
		if c.size == root.Size && c.hash == key {
			l.mu.Unlock()
			return c.note, nil
		}
	}
	l.mu.Unlock()
	signed, err := note.Sign(note.Checkpoint{Origin: l.origin, Size: root.Size, RootHash: root.Hash}, l.cfg.SignerName, l.cfg.Signer)
	if err != nil {
		return "", err
	}
	l.mu.Lock()
	if n := len(l.checkpoints); n == 0 || root.Size >= l.checkpoints[n-1].size {
		const kept = 4
		if n == kept {
			l.checkpoints = append(l.checkpoints[:0], l.checkpoints[1:]...)
		}
		l.checkpoints = append(l.checkpoints, cachedCheckpoint{size: root.Size, hash: key, note: signed})
	}
	l.mu.Unlock()
	return signed, nil
}

// Proven is a leaf with its inclusion proof at a root.
type Proven struct {
	Leaf  Leaf
	Root  Root
	Proof [][]byte
}

// LeavesByRange returns up to count integrated leaves from start.
func (l *Log) LeavesByRange(ctx context.Context, start, count uint64) ([]Leaf, error) {
	root, err := l.Latest(ctx)
	if err != nil || start >= root.Size {
		return nil, err
	}
	return l.leavesInRange(ctx, start, min(count, root.Size-start))
}

// ErrBadRange is a consistency proof request the tree cannot answer.
type ErrBadRange struct{ Msg string }

func (e *ErrBadRange) Error() string { return e.Msg }

// ConsistencyProof proves that the tree at size from is a prefix of the
// tree at size to; it returns the latest root too.
func (l *Log) ConsistencyProof(ctx context.Context, from, to uint64) ([][]byte, Root, error) {
	root, err := l.Latest(ctx)
	if err == nil {
		err = checkConsistencyRange(from, to, root.Size)
	}
	if err != nil || from == 0 || from == to {
		return nil, root, err
	}
	hashes, err := l.reader.Consistency(ctx, from, to)
	if err != nil {
		return nil, root, fmt.Errorf("log %s: proving size %d consistent with %d: %w", l.cfg.Name, from, to, err)
	}
	return hashes, root, nil
}

func checkConsistencyRange(from, to, size uint64) error {
	if to > size {
		return &ErrBadRange{Msg: fmt.Sprintf("the tree size requested(%d) was greater than what is currently observable(%d)", to, size)}
	}
	if from > to {
		return &ErrBadRange{Msg: fmt.Sprintf("firstSize(%d) must be less than lastSize(%d)", from, to)}
	}
	return nil
}

func toRoot(slr *trillian.SignedLogRoot) (Root, error) {
	var r types.LogRootV1
	if err := r.UnmarshalBinary(slr.GetLogRoot()); err != nil {
		return Root{}, fmt.Errorf("decoding the log root: %w", err)
	}
	return Root{Size: r.TreeSize, Hash: r.RootHash, Timestamp: time.Unix(0, int64(r.TimestampNanos))}, nil
}

// LeafHash is the RFC 6962 hash of a leaf value.
func LeafHash(value []byte) []byte { return rfc6962.DefaultHasher.HashLeaf(value) }

// Metrics are the append pipeline's Prometheus metrics.
type Metrics struct {
	batchSize   *prometheus.HistogramVec
	integrate   *prometheus.HistogramVec
	appends     *prometheus.CounterVec
	queueLength *prometheus.GaugeVec
	commits     *prometheus.CounterVec
	catchUps    *prometheus.CounterVec
}

// NewMetrics registers the pipeline metrics with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "signet_log_batch_size", Help: "Appends integrated per batch.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}, []string{"log"}),
		integrate: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "signet_log_batch_seconds", Help: "Time to queue, integrate, index and prove one batch.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"log"}),
		appends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_log_appends_total", Help: "Appends by outcome.",
		}, []string{"log", "outcome"}),
		queueLength: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "signet_log_queue_length", Help: "Appends waiting for the next batch.",
		}, []string{"log"}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_log_commits_total",
			Help: "Batches committed, by path: one_round_trip (all leaves new, tiles known), two_round_trips (tiles read or duplicates sorted out), trillian (queued leaves integrated by Trillian's sequencer).",
		}, []string{"log", "path"}),
		catchUps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_log_catch_ups_total",
			Help: "Batches that first caught up from storage (queued leaves, records not taken, a failed commit); appends alone should not need it.",
		}, []string{"log"}),
	}
	if reg != nil {
		reg.MustRegister(m.batchSize, m.integrate, m.appends, m.queueLength, m.commits, m.catchUps)
	}
	return m
}

func treeLabel(id int64) string { return strconv.FormatInt(id, 10) }

// ProveInclusion finds a leaf by hash and proves it in the tree of the given
// size (0: the latest).
func (l *Log) ProveInclusion(ctx context.Context, leafHash []byte, size uint64) (uint64, [][]byte, Root, error) {
	root, err := l.Latest(ctx)
	if err != nil {
		return 0, nil, Root{}, err
	}
	if size == 0 {
		size = root.Size
	}
	if size > root.Size {
		return 0, nil, root, &ErrBadRange{Msg: fmt.Sprintf("tree size %d is beyond the current size %d", size, root.Size)}
	}
	leaves, err := l.leavesByHash(ctx, [][]byte{leafHash})
	if err != nil {
		return 0, nil, root, fmt.Errorf("log %s: reading leaves by hash: %w", l.cfg.Name, err)
	}
	for _, lf := range leaves {
		if lf.Index < size {
			hashes, err := l.reader.Inclusion(ctx, lf.Index, size)
			if err != nil {
				return 0, nil, root, fmt.Errorf("log %s: proving leaf %d at size %d: %w", l.cfg.Name, lf.Index, size, err)
			}
			return lf.Index, hashes, root, nil
		}
	}
	return 0, nil, root, ErrNotFound
}

// ProveIndex proves the leaf at index in the tree of the given size.
func (l *Log) ProveIndex(ctx context.Context, index, size uint64) (Leaf, [][]byte, error) {
	root, err := l.Latest(ctx)
	if err != nil {
		return Leaf{}, nil, err
	}
	if size > root.Size || index >= size {
		return Leaf{}, nil, &ErrBadRange{Msg: fmt.Sprintf("leaf %d is not in a tree of size %d (current size %d)", index, size, root.Size)}
	}
	leaves, err := l.leavesInRange(ctx, index, 1)
	if err != nil {
		return Leaf{}, nil, fmt.Errorf("log %s: reading leaf %d: %w", l.cfg.Name, index, err)
	}
	if len(leaves) != 1 {
		return Leaf{}, nil, ErrNotFound
	}
	hashes, err := l.reader.Inclusion(ctx, index, size)
	if err != nil {
		return Leaf{}, nil, fmt.Errorf("log %s: proving leaf %d at size %d: %w", l.cfg.Name, index, size, err)
	}
	return leaves[0], hashes, nil
}

// CreatedAt is when the log's tree was created: the start of its key's
// validity in the trust root.
func (l *Log) CreatedAt() time.Time { return l.tree.GetCreateTime().AsTime() }
