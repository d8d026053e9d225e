package rekorapi

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	tlog "github.com/signet-dev/signet/log"
	"github.com/signet-dev/signet/log/rekorapi/model"
)

// Index is the search index in PostgreSQL and the keeper of signed entry
// timestamps. It is the log's integration hook: index rows, SETs, the
// watermark and the checkpoint for a batch are written in one transaction
// before the batch is acknowledged.
type Index struct {
	pool *pgxpool.Pool
	// maxResults bounds one lookup's answer.
	maxResults int
	sets       *setSigner
}

// NewIndex uses pool and signs SETs with the log's current key; lookups
// return at most maxResults entries.
func NewIndex(pool *pgxpool.Pool, maxResults int, signer crypto.Signer) (*Index, error) {
	sets, err := newSETSigner(signer)
	if err != nil {
		return nil, err
	}
	return &Index{pool: pool, maxResults: maxResults, sets: sets}, nil
}

// encodeKeys is what the log stores beside each leaf, so the index can be
// rebuilt from the log alone after a crash.
func encodeKeys(keys []string) ([]byte, error) { return json.Marshal(keys) }

// Watermark implements log.Integrated.
func (ix *Index) Watermark(ctx context.Context, treeID int64) (uint64, string, error) {
	var n int64
	var cp *string
	err := ix.pool.QueryRow(ctx, "SELECT indexed_size, checkpoint FROM search_index_watermark WHERE tree_id = $1", treeID).Scan(&n, &cp)
	if err == pgx.ErrNoRows {
		return 0, "", nil
	}
	if err != nil || cp == nil {
		return uint64(n), "", err
	}
	return uint64(n), *cp, nil
}

// Integrated implements log.Integrated: index rows, SETs (also handed back
// as the leaves' sidecars), the watermark and the checkpoint.
func (ix *Index) Integrated(ctx context.Context, b tlog.Batch, q *pgx.Batch) error {
	var keys, hashes [][]byte
	for _, lf := range b.Leaves {
		var ks []string
		if len(lf.Extra) > 0 {
			if err := json.Unmarshal(lf.Extra, &ks); err != nil {
				return fmt.Errorf("leaf %d: decoding its index keys: %w", lf.Index, err)
			}
		}
		seen := map[string]bool{}
		for _, k := range ks {
			k = strings.ToLower(k)
			if k == "" || seen[k] {
				continue
			}
			seen[k] = true
			keys = append(keys, keyDigest(k))
			hashes = append(hashes, lf.Hash)
		}
	}
	sets, err := ix.sets.signAll(b.Offset, b.Leaves)
	if err != nil {
		return err
	}
	indexes := make([]int64, len(b.Leaves))
	for i := range b.Leaves {
		indexes[i] = int64(b.Leaves[i].Index)
		b.Leaves[i].Sidecar = sets[i]
	}
	// Leaves integrated by the same transaction have no rows yet, and
	// checking for earlier copies of each row was a tenth of PostgreSQL's
	// work per append. Catching up, a repeat keeps the first SET.
	onConflict := " ON CONFLICT DO NOTHING"
	if b.New {
		onConflict = ""
	}
	if len(keys) > 0 {
		q.Queue(`INSERT INTO search_index (key, tree_id, leaf_hash)
			SELECT k, $1, h FROM unnest($2::bytea[], $3::bytea[]) AS t(k, h)`+onConflict, b.TreeID, keys, hashes)
	}
	if len(sets) > 0 {
		q.Queue(`INSERT INTO rekor_sets (tree_id, leaf_index, set)
			SELECT $1, i, s FROM unnest($2::bigint[], $3::bytea[]) AS t(i, s)`+onConflict, b.TreeID, indexes, sets)
	}
	var cp *string
	if b.Checkpoint != "" {
		cp = &b.Checkpoint
	}
	q.Queue(`INSERT INTO search_index_watermark (tree_id, indexed_size, checkpoint) VALUES ($1, $2, $3)
		ON CONFLICT (tree_id) DO UPDATE SET indexed_size = GREATEST(search_index_watermark.indexed_size, EXCLUDED.indexed_size),
		checkpoint = COALESCE(EXCLUDED.checkpoint, search_index_watermark.checkpoint)`,
		b.TreeID, int64(b.NewSize), cp)
	return nil
}

// SETSidecar reads a leaf's stored SET with the leaf (log.Config.LeafSidecar).
const SETSidecar = "(SELECT x.set FROM rekor_sets x WHERE x.tree_id = s.TreeId AND x.leaf_index = s.SequenceNumber)"

// SET returns the signed entry timestamp stored for a leaf (nil if none:
// entries integrated before SETs were stored).
func (ix *Index) SET(ctx context.Context, treeID int64, index uint64) ([]byte, error) {
	var set []byte
	err := ix.pool.QueryRow(ctx, "SELECT set FROM rekor_sets WHERE tree_id = $1 AND leaf_index = $2", treeID, int64(index)).Scan(&set)
	if err == pgx.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the signed entry timestamp of leaf %d: %w", index, err)
	}
	return set, nil
}

// keyDigest is how a (lower-cased) search key is stored: its SHA-256.
func keyDigest(key string) []byte {
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

// Lookup returns the entry IDs matching any of keys (already lower-cased).
func (ix *Index) Lookup(ctx context.Context, keys []string) (map[string]bool, error) {
	digests := make([][]byte, len(keys))
	for i, k := range keys {
		digests[i] = keyDigest(k)
	}
	rows, err := ix.pool.Query(ctx, `SELECT DISTINCT tree_id, leaf_hash FROM search_index WHERE key = ANY($1) LIMIT $2`, digests, ix.maxResults+1)
	if err != nil {
		return nil, fmt.Errorf("searching the index: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var tree int64
		var h []byte
		if err := rows.Scan(&tree, &h); err != nil {
			return nil, err
		}
		out[model.EntryID(tree, h)] = true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) > ix.maxResults {
		return nil, &tooManyResults{limit: ix.maxResults}
	}
	return out, nil
}

type tooManyResults struct{ limit int }

func (e *tooManyResults) Error() string {
	return fmt.Sprintf("the search matches more than %d entries; narrow it with operator \"and\" and more criteria", e.limit)
}

func hexLower(b []byte) string { return hex.EncodeToString(b) }
