// Package pgstore is the log engine's storage driver: the one place with SQL
// for the trees. A tree is stored in Trillian's PostgreSQL schema (LeafData,
// SequencedLeafData, Subtree tiles, TreeHead, Unsequenced, Trees), exactly as
// Trillian's own sequencer would leave it, so Trillian v1.8's storage code
// reads a Signet database (internal/server/trillian_test.go) and its
// sequencer integrates what is queued. Beside them are Signet's tables: which
// tree a log name owns and with which key (signet_logs), and the
// personality's records of its leaves (search_index, rekor_sets) with how
// far they go (search_index_watermark).
//
// The driver speaks in bytes and columns: tiles are encoded blobs, leaves
// and records are written as arrays, so one batch of appends is one
// statement per table. What the bytes mean is the engine's (log,
// log/integrate, log/tiles).
package pgstore

import (
	"context"
	"errors"
	"fmt"
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
	"github.com/google/trillian/types"
	"github.com/google/trillian/util/clock"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Store is a PostgreSQL database holding trees.
type Store struct {
	pool  *pgxpool.Pool
	logs  storage.LogStorage
	admin storage.AdminStorage
	rpc   *server.TrillianLogRPCServer
	clock clock.TimeSource
	// fence is the writer lease's take every batch must still hold
	// (Fence); nil checks nothing.
	fence atomic.Pointer[fence]
}

type fence struct {
	token  int64
	holder string
}

// ErrFenced is a batch refused because this server no longer holds the
// database's writer lease (internal/lease): another server took it, and
// only it may commit.
var ErrFenced = errors.New("this server no longer holds the database's writer lease; another signet-server writes to the log now")

// Fence makes every batch's transaction check that token and holder are
// still the writer lease's, and roll back otherwise (ErrFenced).
func (s *Store) Fence(token int64, holder string) {
	s.fence.Store(&fence{token: token, holder: holder})
}

// New is the store in the database pool connects to (migrated by
// internal/db).
func New(pool *pgxpool.Pool) *Store {
	// Trillian's sequencer keeps its metrics in package variables that must
	// exist before IntegrateBatch runs; the engine keeps its own.
	tlog.InitMetrics(monitoring.InertMetricFactory{})
	s := &Store{
		pool:  pool,
		logs:  postgresql.NewLogStorage(pool, monitoring.InertMetricFactory{}),
		admin: postgresql.NewAdminStorage(pool),
		clock: clock.System,
	}
	s.rpc = server.NewTrillianLogRPCServer(extension.Registry{AdminStorage: s.admin, LogStorage: s.logs, QuotaManager: quota.Noop()}, s.clock)
	return s
}

// Tree is one tree's storage.
type Tree struct {
	s *Store
	t *trillian.Tree
}

// ID is the tree's Trillian ID.
func (t *Tree) ID() int64 { return t.t.TreeId }

// CreatedAt is when the tree was created.
func (t *Tree) CreatedAt() time.Time { return t.t.GetCreateTime().AsTime() }

// ErrNoTree means the log name owns no tree yet.
var ErrNoTree = errors.New("the log has no tree")

// CurrentTree is the tree log name owns and the PKIX DER of the key it was
// created for (ErrNoTree if none).
func (s *Store) CurrentTree(ctx context.Context, name string) (*Tree, []byte, error) {
	var id int64
	var key []byte
	err := s.pool.QueryRow(ctx, "SELECT tree_id, public_key FROM signet_logs WHERE name = $1", name).Scan(&id, &key)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, ErrNoTree
	}
	if err != nil {
		return nil, nil, fmt.Errorf("looking up log %s's tree: %w", name, err)
	}
	t, err := s.OpenTree(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	return t, key, nil
}

// OpenTree is the tree of this ID.
func (s *Store) OpenTree(ctx context.Context, id int64) (*Tree, error) {
	t, err := storage.GetTree(ctx, s.admin, id)
	if err != nil {
		return nil, fmt.Errorf("loading tree %d: %w", id, err)
	}
	return &Tree{s: s, t: t}, nil
}

// CreateTree creates and initialises an empty tree (a root of size 0) and
// records it as log name's, for the key of PKIX DER pubKey.
func (s *Store) CreateTree(ctx context.Context, name string, pubKey []byte) (*Tree, error) {
	t, err := storage.CreateTree(ctx, s.admin, &trillian.Tree{
		TreeState:       trillian.TreeState_ACTIVE,
		TreeType:        trillian.TreeType_LOG,
		DisplayName:     truncate(name, 20),
		MaxRootDuration: durationpb.New(0),
	})
	if err != nil {
		return nil, fmt.Errorf("creating a tree for log %s: %w", name, err)
	}
	if _, err := s.rpc.InitLog(ctx, &trillian.InitLogRequest{LogId: t.TreeId}); err != nil {
		return nil, fmt.Errorf("initialising tree %d: %w", t.TreeId, err)
	}
	if _, err := s.pool.Exec(ctx, "INSERT INTO signet_logs (name, tree_id, public_key) VALUES ($1, $2, $3)", name, t.TreeId, pubKey); err != nil {
		return nil, fmt.Errorf("recording tree %d as log %s's: %w", t.TreeId, name, err)
	}
	return &Tree{s: s, t: t}, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// RetireTree makes tree id no longer log name's current tree; it stays
// listed among the log's retired trees.
func (s *Store) RetireTree(ctx context.Context, name string, id int64) error {
	tag, err := s.pool.Exec(ctx, "UPDATE signet_logs SET name = name || '@' || tree_id, retired_at = now() WHERE name = $1 AND tree_id = $2", name, id)
	if err != nil {
		return fmt.Errorf("retiring tree %d of log %s: %w", id, name, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("retiring tree %d of log %s: it is not the log's current tree", id, name)
	}
	return nil
}

// RetiredTree is a tree a log name owned before a key rotation.
type RetiredTree struct {
	ID int64
	// PublicKey is the PKIX DER of the key that signed it.
	PublicKey []byte
	// Created and Retired bound when the key signed.
	Created, Retired time.Time
}

// RetiredTrees lists the trees log name owned before, oldest first.
func (s *Store) RetiredTrees(ctx context.Context, name string) ([]RetiredTree, error) {
	rows, err := s.pool.Query(ctx, `SELECT l.tree_id, l.public_key, t.CreateTimeMillis, l.retired_at
		FROM signet_logs l JOIN Trees t ON t.TreeId = l.tree_id
		WHERE l.name = $1 || '@' || l.tree_id AND l.retired_at IS NOT NULL ORDER BY l.retired_at`, name)
	if err != nil {
		return nil, fmt.Errorf("listing log %s's retired trees: %w", name, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RetiredTree, error) {
		var t RetiredTree
		var createdMillis int64
		err := r.Scan(&t.ID, &t.PublicKey, &createdMillis, &t.Retired)
		t.Created = time.UnixMilli(createdMillis)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("listing log %s's retired trees: %w", name, err)
	}
	return out, nil
}

// Head is a stored tree head.
type Head struct {
	Size      uint64
	Hash      []byte
	Timestamp time.Time
}

// LatestHead is the tree's newest stored head.
func (t *Tree) LatestHead(ctx context.Context) (Head, error) {
	tx, err := t.s.logs.SnapshotForTree(ctx, t.t)
	if err != nil {
		return Head{}, fmt.Errorf("opening a snapshot of tree %d: %w", t.ID(), err)
	}
	defer tx.Close()
	slr, err := tx.LatestSignedLogRoot(ctx)
	if err != nil {
		return Head{}, fmt.Errorf("reading tree %d's root: %w", t.ID(), err)
	}
	var r types.LogRootV1
	if err := r.UnmarshalBinary(slr.GetLogRoot()); err != nil {
		return Head{}, fmt.Errorf("decoding tree %d's root: %w", t.ID(), err)
	}
	return Head{Size: r.TreeSize, Hash: r.RootHash, Timestamp: time.Unix(0, int64(r.TimestampNanos))}, tx.Commit(ctx)
}
