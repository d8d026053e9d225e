package rekorapi

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	tlog "github.com/signet-dev/signet/log"
	"github.com/signet-dev/signet/log/rekorapi/model"
)

// Index is the Rekor personality's records of its leaves: search keys and
// signed entry timestamps. It is the log's integration hook: the engine
// writes what it returns in the transaction that integrates the batch,
// before the batch is acknowledged.
type Index struct {
	sets *setSigner
}

// NewIndex signs SETs with the log's current key.
func NewIndex(signer crypto.Signer) (*Index, error) {
	sets, err := newSETSigner(signer)
	if err != nil {
		return nil, err
	}
	return &Index{sets: sets}, nil
}

// extra is what the log stores beside each leaf (unhashed, durable with
// it), so the index can be rebuilt from the log alone after a crash: the
// search keys, and the entry's attestation when it has one. A leaf without
// an attestation stores the bare JSON array of its keys, as every leaf did
// before attestations were stored.
type extra struct {
	Keys        []string `json:"keys"`
	Attestation []byte   `json:"attestation,omitempty"`
}

func (x extra) encode() ([]byte, error) {
	if x.Attestation == nil {
		return json.Marshal(x.Keys)
	}
	return json.Marshal(x)
}

func decodeExtra(b []byte) (extra, error) {
	var x extra
	switch {
	case len(b) == 0:
		return x, nil
	case b[0] == '[':
		return x, json.Unmarshal(b, &x.Keys)
	default:
		return x, json.Unmarshal(b, &x)
	}
}

// Integrated implements log.Integrated: the leaves' search keys (from the
// keys stored beside each leaf) and SETs, kept as their sidecars.
func (ix *Index) Integrated(_ context.Context, b tlog.Batch) (tlog.Records, error) {
	var keys []tlog.IndexKey
	for _, lf := range b.Leaves {
		x, err := decodeExtra(lf.Extra)
		if err != nil {
			return tlog.Records{}, fmt.Errorf("leaf %d: decoding its index keys: %w", lf.Index, err)
		}
		seen := map[string]bool{}
		for _, k := range x.Keys {
			k = strings.ToLower(k)
			if k == "" || seen[k] {
				continue
			}
			seen[k] = true
			keys = append(keys, tlog.IndexKey{Key: keyDigest(k), Leaf: lf.Hash})
		}
	}
	sets, err := ix.sets.signAll(b.Offset, b.Leaves)
	if err != nil {
		return tlog.Records{}, err
	}
	return tlog.Records{Sidecars: sets, Keys: keys}, nil
}

// keyDigest is how a (lower-cased) search key is stored: its SHA-256.
func keyDigest(key string) []byte {
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

// lookup returns the IDs of the entries of l (any of its trees) matching
// any of keys (already lower-cased), at most maxResults of them.
func lookup(ctx context.Context, l *tlog.Log, keys []string, maxResults int) (map[string]bool, error) {
	digests := make([][]byte, len(keys))
	for i, k := range keys {
		digests[i] = keyDigest(k)
	}
	found, err := l.Lookup(ctx, digests, maxResults+1)
	if err != nil {
		return nil, err
	}
	if len(found) > maxResults {
		return nil, &tooManyResults{limit: maxResults}
	}
	out := make(map[string]bool, len(found))
	for _, f := range found {
		out[model.EntryID(f.TreeID, f.Hash)] = true
	}
	return out, nil
}

type tooManyResults struct{ limit int }

func (e *tooManyResults) Error() string {
	return fmt.Sprintf("the search matches more than %d entries; narrow it with operator \"and\" and more criteria", e.limit)
}

func hexLower(b []byte) string { return hex.EncodeToString(b) }
