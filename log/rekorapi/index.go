package rekorapi

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	tlog "github.com/signet-dev/signet/log"
	"github.com/signet-dev/signet/log/rekorapi/model"
)

// Index is the search index in PostgreSQL. It is the log's integration hook:
// rows for a batch and the watermark are written in one transaction before
// the batch is acknowledged.
type Index struct {
	pool *pgxpool.Pool
	// maxResults bounds one lookup's answer.
	maxResults int
}

// NewIndex uses pool; lookups return at most maxResults entries.
func NewIndex(pool *pgxpool.Pool, maxResults int) *Index {
	return &Index{pool: pool, maxResults: maxResults}
}

// encodeKeys is what the log stores beside each leaf, so the index can be
// rebuilt from the log alone after a crash.
func encodeKeys(keys []string) ([]byte, error) { return json.Marshal(keys) }

// Watermark implements log.Integrated.
func (ix *Index) Watermark(ctx context.Context, treeID int64) (uint64, error) {
	var n int64
	err := ix.pool.QueryRow(ctx, "SELECT indexed_size FROM search_index_watermark WHERE tree_id = $1", treeID).Scan(&n)
	if err == pgx.ErrNoRows {
		return 0, nil
	}
	return uint64(n), err
}

// Integrated implements log.Integrated.
func (ix *Index) Integrated(ctx context.Context, treeID int64, leaves []tlog.Leaf, newSize uint64) error {
	var keys []string
	var hashes [][]byte
	for _, lf := range leaves {
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
			keys = append(keys, k)
			hashes = append(hashes, lf.Hash)
		}
	}
	tx, err := ix.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	if len(keys) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO search_index (key, tree_id, leaf_hash)
			SELECT k, $1, h FROM unnest($2::text[], $3::bytea[]) AS t(k, h)
			ON CONFLICT DO NOTHING`, treeID, keys, hashes); err != nil {
			return fmt.Errorf("writing index rows: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO search_index_watermark (tree_id, indexed_size) VALUES ($1, $2)
		ON CONFLICT (tree_id) DO UPDATE SET indexed_size = GREATEST(search_index_watermark.indexed_size, EXCLUDED.indexed_size)`,
		treeID, int64(newSize)); err != nil {
		return fmt.Errorf("advancing the index watermark: %w", err)
	}
	return tx.Commit(ctx)
}

// Lookup returns the entry IDs matching any of keys (already lower-cased).
func (ix *Index) Lookup(ctx context.Context, keys []string) (map[string]bool, error) {
	rows, err := ix.pool.Query(ctx, `SELECT DISTINCT tree_id, leaf_hash FROM search_index WHERE key = ANY($1) LIMIT $2`, keys, ix.maxResults+1)
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
