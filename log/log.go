// Package log is Signet's transparency log engine. A log is a run of trees
// (Log): the current one, appended to by the append pipeline (appender),
// and the ones earlier keys signed, retired by key rotations and read-only
// (Tree), their indexes continuing one after the other. The pipeline gathers
// concurrent appends into batches, computes each batch's tiles and root
// from the tree's right border (log/integrate), has the storage driver
// (log/pgstore, the only place with SQL) write everything in one
// transaction, and answers every waiter with its index, inclusion proof and
// the new root. Proofs come from the stored tiles through a bounded cache
// (log/tiles), so memory does not grow with the tree.
// docs/architecture.md describes it. Personalities (log/rekorapi, the CT
// log) sit on top and hand the engine typed records of their leaves; the
// engine knows nothing of HTTP or entry formats. A replica that does not
// lead opens its log with Follow instead of Open: the same trees, read-only.
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
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/signet-dev/signet/log/note"
	"github.com/signet-dev/signet/log/pgstore"
	"github.com/signet-dev/signet/log/tiles"
)

var (
	// ErrNotFound means no such leaf is in the tree.
	ErrNotFound = errors.New("not found in the log")
	// ErrOverloaded means the append queue is full; retry later.
	ErrOverloaded = errors.New("the log's append queue is full")
	// ErrClosed means the log is shutting down.
	ErrClosed = errors.New("the log is shutting down")
)

// Leaf is an integrated entry, as stored: its index in its tree, RFC 6962
// leaf hash, value, the extra bytes stored with it (unhashed), when it was
// integrated, and the personality's sidecar (Records.Sidecars) when read
// with it.
type Leaf = pgstore.Leaf

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
	// C2SPKeyHint hints the checkpoint's key as c2sp.org/signed-note does
	// (note.C2SPSigner), which witnesses and Rekor v2 clients need of an
	// Ed25519 key; otherwise as Rekor v1 does (note.RekorSigner).
	C2SPKeyHint bool
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
	// such a start is refused. The retired tree stays readable (Retired),
	// frozen at the checkpoint last stored with it (by the hook, or after
	// each integration for a log without one); with a Hook the new tree's
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
// gives none: the compacted bottom tiles of some 60M entries (log/tiles).
const DefaultTileCacheBytes = 128 << 20

// Log is a log's trees: the current one, which the append pipeline
// extends, and the retired ones before it. Reads of the current tree are
// Tree's.
type Log struct {
	*Tree
	name    string
	store   *pgstore.Store
	app     *appender
	retired []*Tree
	// stop ends the pipeline and the readers' gatherers.
	stop      chan struct{}
	closeOnce sync.Once
}

// Open finds the named log's tree in store (creating and initialising it on
// first use, retiring the current one first if the key rotated), hands
// anything integrated but not yet seen by the hook to it, and starts the
// append pipeline.
func Open(ctx context.Context, store *pgstore.Store, cfg Config) (*Log, error) {
	cfg, signer, err := withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	l := &Log{name: cfg.Name, store: store, stop: make(chan struct{})}
	logger := cfg.Logger.With("log", cfg.Name)
	st, err := l.currentTree(ctx, cfg, logger)
	if err != nil {
		return nil, fmt.Errorf("log %s: %w", cfg.Name, err)
	}
	if err := l.openTrees(ctx, cfg, st, signer); err != nil {
		return nil, err
	}
	l.app = newAppender(cfg, l.Tree, logger, l.stop)
	// Leaves queued by a process that died before integrating them are
	// integrated, the hook catches up and the root is published.
	if _, _, err := l.app.integrateAndIndex(ctx); err != nil {
		return nil, fmt.Errorf("log %s: %w", cfg.Name, err)
	}
	l.Tree.gatherReads(l.stop)
	go l.app.runQueue()
	go l.app.run()
	return l, nil
}

// withDefaults fills in cfg's defaults and makes its checkpoint signer.
func withDefaults(cfg Config) (Config, note.Signer, error) {
	if cfg.Signer == nil {
		return cfg, note.Signer{}, errors.New("log: a signer is required")
	}
	newSigner := note.RekorSigner
	if cfg.C2SPKeyHint {
		newSigner = note.C2SPSigner
	}
	signer, err := newSigner(cfg.SignerName, cfg.Signer)
	if err != nil {
		return cfg, note.Signer{}, fmt.Errorf("log %s: checkpoint signer: %w", cfg.Name, err)
	}
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
	if cfg.Tiles == nil {
		cfg.Tiles = tiles.NewCache(DefaultTileCacheBytes, nil)
	}
	return cfg, signer, nil
}

// openTrees sets up the log's current tree st and the retired ones before
// it, for reading.
func (l *Log) openTrees(ctx context.Context, cfg Config, st *pgstore.Tree, signer note.Signer) error {
	// Retired trees stay readable (the tiles of every tree are served);
	// only a log with a Hook (Rekor's) numbers its entries on across them,
	// a CT log starts each tree at 0.
	var err error
	if l.retired, err = openRetired(ctx, l.store, cfg); err != nil {
		return fmt.Errorf("log %s: %w", cfg.Name, err)
	}
	var offset uint64
	if cfg.Hook != nil {
		for _, r := range l.retired {
			offset += r.frozen.root.Size
		}
	}
	origin := strconv.FormatInt(st.ID(), 10)
	if cfg.OriginFor != nil {
		origin = cfg.OriginFor(st.ID())
	}
	l.Tree = newTree(cfg, st, cfg.Signer.Public(), offset, origin)
	l.Tree.signer = signer
	return nil
}

// currentTree is the tree the log's key signs: the stored one, or a new one
// when there is none or (RotateOnKeyChange) the key rotated, in which case
// the old tree is retired.
func (l *Log) currentTree(ctx context.Context, cfg Config, logger *slog.Logger) (*pgstore.Tree, error) {
	pubDER, err := x509.MarshalPKIXPublicKey(cfg.Signer.Public())
	if err != nil {
		return nil, fmt.Errorf("encoding its public key: %w", err)
	}
	t, storedKey, err := l.store.CurrentTree(ctx, cfg.Name)
	switch {
	case errors.Is(err, pgstore.ErrNoTree):
	case err != nil:
		return nil, err
	case bytes.Equal(storedKey, pubDER):
		return t, nil
	case !cfg.RotateOnKeyChange:
		return nil, &KeyChangedError{Log: cfg.Name, Tree: t.ID(), OldKeyID: keyID(storedKey), NewKeyID: keyID(pubDER)}
	default:
		if err := checkFreezable(ctx, cfg, t, storedKey); err != nil {
			return nil, err
		}
		// Leaves acknowledged when queued (a CT log's SCTs) and left queued
		// by a crash go into the tree their key promised, before it stops
		// taking entries; nothing integrates a retired tree's queue later.
		if _, err := t.IntegrateQueued(ctx, integrateLimit(cfg)); err != nil {
			return nil, fmt.Errorf("integrating tree %d's queued leaves before retiring it: %w", t.ID(), err)
		}
		if err := l.store.RetireTree(ctx, cfg.Name, t.ID()); err != nil {
			return nil, err
		}
		logger.Warn("KEY ROTATION: the configured signer is not the key of the current tree; it is retired (its key stays in the trusted root) and a new tree starts",
			"retired_tree_id", t.ID(), "old_key_id", keyID(storedKey), "new_key_id", keyID(pubDER))
	}
	t, err = l.store.CreateTree(ctx, cfg.Name, pubDER)
	if err != nil {
		return nil, err
	}
	logger.Info("created log tree", "tree_id", t.ID())
	return t, nil
}

// KeyChangedError is a start with a signer other than the current tree's
// key, when rotating was not allowed (Config.RotateOnKeyChange).
type KeyChangedError struct {
	Log      string
	Tree     int64
	OldKeyID string // SHA-256 of the PKIX key, hex
	NewKeyID string
}

func (e *KeyChangedError) Error() string {
	return fmt.Sprintf("the configured signer's key (ID %s) is not the key tree %d of log %s was created with (ID %s); "+
		"starting would publish signatures clients cannot check against the old key", e.NewKeyID, e.Tree, e.Log, e.OldKeyID)
}

// integrateLimit is how many queued leaves one of Trillian's sequencer
// transactions takes.
func integrateLimit(cfg Config) int { return cfg.MaxBatch * 4 }

// checkFreezable refuses a rotation that would lose acknowledged entries:
// the retiring tree is frozen at the checkpoint the hook stored, which must
// cover every leaf the hook took (those are the ones ever acknowledged).
func checkFreezable(ctx context.Context, cfg Config, t *pgstore.Tree, oldKey []byte) error {
	if cfg.Hook == nil {
		return nil
	}
	size, cp, err := t.Watermark(ctx)
	if err != nil {
		return fmt.Errorf("before rotating its key: %w", err)
	}
	if size == 0 {
		return nil
	}
	var got uint64
	if cp != "" {
		pub, err := x509.ParsePKIXPublicKey(oldKey)
		if err != nil {
			return fmt.Errorf("tree %d's key: %w", t.ID(), err)
		}
		c, err := note.Verify(cp, "", pub)
		if err != nil {
			return fmt.Errorf("tree %d's stored checkpoint: %w", t.ID(), err)
		}
		got = c.Size
	}
	if got != size {
		return fmt.Errorf("cannot rotate the key yet: tree %d has %d entries but its last stored checkpoint covers %d. "+
			"Start once with the old key (that records the final checkpoint), stop cleanly, then start with the new key", t.ID(), size, got)
	}
	return nil
}

// openRetired opens the trees earlier keys signed, frozen at their stored
// checkpoints, oldest first, each starting where the one before ended.
func openRetired(ctx context.Context, store *pgstore.Store, cfg Config) ([]*Tree, error) {
	keys, err := RetiredKeys(ctx, store, cfg.Name)
	if err != nil {
		return nil, err
	}
	var out []*Tree
	var offset uint64
	for _, k := range keys {
		st, err := store.OpenTree(ctx, k.TreeID)
		if err != nil {
			return nil, fmt.Errorf("retired tree: %w", err)
		}
		size, cp, err := st.Watermark(ctx)
		if err != nil {
			return nil, fmt.Errorf("retired tree's final checkpoint: %w", err)
		}
		frozen := &frozenTree{root: Root{Hash: rfc6962.DefaultHasher.EmptyRoot()}, note: cp}
		origin := strconv.FormatInt(k.TreeID, 10)
		if size > 0 || cp != "" {
			c, err := note.Verify(cp, "", k.PublicKey)
			if err != nil {
				return nil, fmt.Errorf("retired tree %d's final checkpoint: %w", k.TreeID, err)
			}
			frozen.root = Root{Size: c.Size, Hash: c.RootHash, Timestamp: k.End}
			origin = c.Origin
		}
		r := newTree(cfg, st, k.PublicKey, offset, origin)
		r.frozen = frozen
		r.publish(frozen.root)
		offset += frozen.root.Size
		out = append(out, r)
	}
	return out, nil
}

// Retired are the trees earlier keys of this log signed, frozen and
// readable, oldest first.
func (l *Log) Retired() []*Tree { return l.retired }

// RetiredKey is the key of a tree retired by a key rotation and when it signed.
type RetiredKey struct {
	TreeID     int64
	PublicKey  crypto.PublicKey
	Start, End time.Time
}

// RetiredKeys lists the keys log name used before, oldest first.
func RetiredKeys(ctx context.Context, store *pgstore.Store, name string) ([]RetiredKey, error) {
	trees, err := store.RetiredTrees(ctx, name)
	if err != nil {
		return nil, err
	}
	out := make([]RetiredKey, len(trees))
	for i, t := range trees {
		pub, err := x509.ParsePKIXPublicKey(t.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("log %s: retired tree %d's key: %w", name, t.ID, err)
		}
		out[i] = RetiredKey{TreeID: t.ID, PublicKey: pub, Start: t.Created, End: t.Retired}
	}
	return out, nil
}

func keyID(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// StoredCheckpoint is the signed checkpoint last stored with the current
// tree's records ("" before any), for a personality that must check what
// its tree was signed as.
func (l *Log) StoredCheckpoint(ctx context.Context) (string, error) {
	_, cp, err := l.Tree.store.Watermark(ctx)
	return cp, err
}

// Append adds a leaf to the current tree and returns once it is integrated,
// handed to the hook and provable at the new root (or is a duplicate).
// extra is stored with the leaf, unhashed, for the hook's use after a
// crash.
func (l *Log) Append(ctx context.Context, value, extra []byte) (Appended, error) {
	if l.app == nil {
		return Appended{}, ErrFollower
	}
	return l.app.append(ctx, value, extra)
}

// EnqueueIdentified adds a leaf to the current tree and returns once it is
// durably queued; see appender.enqueueIdentified.
func (l *Log) EnqueueIdentified(ctx context.Context, identity, value, extra []byte) (stored []byte, duplicate bool, err error) {
	if l.app == nil {
		return nil, false, ErrFollower
	}
	return l.app.enqueueIdentified(ctx, identity, value, extra)
}

// Import appends leaves (values with their extras) to the current tree in
// index order, all new, in one transaction, and returns the new root. A
// leaf already in the log fails the whole import with nothing written.
// Appends waiting meanwhile are integrated after it.
func (l *Log) Import(ctx context.Context, values, extras [][]byte) (Root, error) {
	if len(values) != len(extras) {
		return Root{}, fmt.Errorf("log %s: importing %d values with %d extras", l.name, len(values), len(extras))
	}
	if l.app == nil {
		return Root{}, ErrFollower
	}
	var root Root
	err := l.app.onPipeline(ctx, func() error {
		var err error
		root, err = l.app.importBatch(ctx, values, extras)
		return err
	})
	if err != nil {
		return Root{}, fmt.Errorf("log %s: importing %d leaves: %w", l.name, len(values), err)
	}
	return root, nil
}

// IndexedLeaf is a leaf Lookup found: its tree and hash.
type IndexedLeaf = pgstore.Found

// Lookup finds the leaves filed under any of keys (Records.Keys) in this
// log's trees (the current one and those retired by key rotations), at most
// limit of them.
func (l *Log) Lookup(ctx context.Context, keys [][]byte, limit int) ([]IndexedLeaf, error) {
	trees := []int64{l.TreeID()}
	for _, r := range l.retired {
		trees = append(trees, r.TreeID())
	}
	found, err := l.store.Lookup(ctx, trees, keys, limit)
	if err != nil {
		return nil, fmt.Errorf("log %s: %w", l.name, err)
	}
	return found, nil
}

// Close stops the pipeline; appends waiting in the queue get ErrClosed.
func (l *Log) Close() {
	l.closeOnce.Do(func() { close(l.stop) })
	if l.app != nil {
		<-l.app.stopped
	}
	l.Tree.waitReads()
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
