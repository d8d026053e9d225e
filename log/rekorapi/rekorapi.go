// Package rekorapi is the Rekor v1 REST personality of the log engine:
// byte-compatible JSON, entry IDs, signed entry timestamps and search, so
// unmodified cosign, sigstore-go and rekor-cli work against it.
package rekorapi

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"sync"

	tlog "github.com/signet-dev/signet/log"
	"github.com/signet-dev/signet/log/rekorapi/model"
	"github.com/signet-dev/signet/types"
)

// Limits bound what one request may ask of the log.
type Limits struct {
	// MaxBodyBytes bounds a request body (413 above it).
	MaxBodyBytes int64
	// MaxSearchResults bounds the entries one index search returns.
	MaxSearchResults int
	// MaxAttestationBytes bounds the attestation stored with an entry: a
	// larger one is not stored (the entry is logged all the same), as
	// Rekor's --max_attestation_size.
	MaxAttestationBytes int
}

// MaxIndexKeys bounds an entry's search keys: each is an index row written
// when its batch integrates, and an in-toto statement could list a
// subject per line of a 10 MiB body.
const MaxIndexKeys = 1024

// DefaultLimits are documented in docs/configuration.md.
var DefaultLimits = Limits{MaxBodyBytes: 10 << 20, MaxSearchResults: 1000, MaxAttestationBytes: 100 << 10}

// maxSearchItems is Rekor's cap on the items of one /log/entries/retrieve.
const maxSearchItems = 10

// Config wires the personality.
type Config struct {
	// Log is the active tree; the trees earlier keys signed (Log.Retired)
	// are served read-only before it, as Rekor's inactive shards.
	Log *tlog.Log
	// Index is the log's hook: search and the stored SETs.
	Index  *Index
	Types  *types.Registry
	Limits Limits
	Logger *slog.Logger
}

// shard is one tree of the log and the key that signed it.
type shard struct {
	tree   *tlog.Tree
	logID  string
	pubPEM []byte
}

// API serves /api/v1/log and /api/v1/index.
type API struct {
	// log takes the appends and answers searches across its trees.
	log *tlog.Log
	// shards are the retired trees, oldest first, then the active one.
	shards []*shard
	active *shard
	index  *Index
	types  *types.Registry
	limits Limits
	logger *slog.Logger
}

// New checks the log's keys and builds the API.
func New(cfg Config) (*API, error) {
	if cfg.Limits.MaxBodyBytes <= 0 {
		cfg.Limits.MaxBodyBytes = DefaultLimits.MaxBodyBytes
	}
	if cfg.Limits.MaxSearchResults <= 0 {
		cfg.Limits.MaxSearchResults = DefaultLimits.MaxSearchResults
	}
	if cfg.Limits.MaxAttestationBytes <= 0 {
		cfg.Limits.MaxAttestationBytes = DefaultLimits.MaxAttestationBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &API{log: cfg.Log, index: cfg.Index, types: cfg.Types, limits: cfg.Limits, logger: cfg.Logger}
	for _, l := range append(cfg.Log.Retired(), cfg.Log.Tree) {
		id, err := model.LogID(l.PublicKey())
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKIXPublicKey(l.PublicKey())
		if err != nil {
			return nil, err
		}
		a.shards = append(a.shards, &shard{tree: l, logID: id, pubPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})})
	}
	a.active = a.shards[len(a.shards)-1]
	if a.active.logID != cfg.Index.sets.logID {
		return nil, fmt.Errorf("the index signs SETs with log ID %s but the log's key has ID %s", cfg.Index.sets.logID, a.active.logID)
	}
	return a, nil
}

// LogID is hex SHA-256 of the active log key's PKIX DER.
func (a *API) LogID() string { return a.active.logID }

// extraFor is what the log stores beside e's leaf: its search keys, and
// its attestation when it has one within the limit.
func (a *API) extraFor(e types.Entry) ([]byte, error) {
	x := extra{Keys: e.IndexKeys()}
	if len(x.Keys) > MaxIndexKeys {
		return nil, types.Invalid("the entry would be found under %d search keys (an in-toto statement's subjects and materials, say), more than %d", len(x.Keys), MaxIndexKeys)
	}
	if at, ok := e.(types.Attested); ok {
		if att := at.Attestation(); len(att) > 0 && len(att) <= a.limits.MaxAttestationBytes {
			x.Attestation = att
		}
	}
	return x.encode()
}

// entry builds the LogEntry for a proven leaf of sh, with the SET signed
// when it was integrated.
func (a *API) entry(ctx context.Context, sh *shard, p tlog.Proven) (model.LogEntry, string, error) {
	body := base64.StdEncoding.EncodeToString(p.Leaf.Value)
	integrated := p.Leaf.IntegratedAt.Unix()
	index := int64(sh.tree.Offset() + p.Leaf.Index)
	// The engine reads the stored SET with the leaf.
	set := p.Leaf.Sidecar
	var err error
	if set == nil && sh == a.active {
		// Integrated before SETs were stored: the current key signed it.
		if set, err = a.index.sets.sign(sh.tree.Offset(), p.Leaf); err != nil {
			return nil, "", err
		}
	}
	checkpoint, err := sh.tree.Checkpoint(p.Root)
	if err != nil {
		return nil, "", err
	}
	hashes := make([]string, len(p.Proof))
	for i, h := range p.Proof {
		hashes[i] = hex.EncodeToString(h)
	}
	id := model.EntryID(sh.tree.TreeID(), p.Leaf.Hash)
	var att *model.Attestation
	if x, err := decodeExtra(p.Leaf.Extra); err != nil {
		return nil, "", fmt.Errorf("entry %s: decoding what is stored beside it: %w", id, err)
	} else if x.Attestation != nil {
		att = &model.Attestation{Data: x.Attestation}
	}
	return model.LogEntry{id: model.LogEntryAnon{
		Attestation: att, Body: body, IntegratedTime: integrated, LogID: sh.logID, LogIndex: index,
		Verification: &model.Verification{
			InclusionProof: &model.InclusionProof{
				Checkpoint: checkpoint, Hashes: hashes, LogIndex: int64(p.Leaf.Index),
				RootHash: hex.EncodeToString(p.Root.Hash), TreeSize: int64(p.Root.Size),
			},
			SignedEntryTimestamp: set,
		},
	}}, id, nil
}

// Add validates and appends a proposed entry to the active tree: the heart
// of POST /log/entries. Only the active tree is checked for duplicates, as
// in Rekor.
func (a *API) Add(ctx context.Context, body []byte) (model.LogEntry, string, bool, error) {
	e, err := a.types.ParseInsertable(ctx, body)
	if err != nil {
		return nil, "", false, err
	}
	x, err := a.extraFor(e)
	if err != nil {
		return nil, "", false, err
	}
	l := a.log
	res, err := l.Append(ctx, e.Canonical(), x)
	if err != nil {
		return nil, "", false, err
	}
	if res.Duplicate {
		return nil, model.EntryID(l.TreeID(), res.Leaf.Hash), true, nil
	}
	le, id, err := a.entry(ctx, a.active, res.Proven)
	return le, id, false, err
}

// Import validates proposed entries as Add does and appends them to the
// active tree in one bulk import (log.Log.Import), in order, with the index
// rows and SETs the API would write: for filling a log offline. An invalid
// entry, or one already in the log, fails the whole import.
func (a *API) Import(ctx context.Context, bodies [][]byte) (tlog.Root, error) {
	values := make([][]byte, len(bodies))
	extras := make([][]byte, len(bodies))
	errs := make([]error, len(bodies))
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(bodies); i += workers {
				e, err := a.types.ParseInsertable(ctx, bodies[i])
				if err == nil {
					values[i] = e.Canonical()
					extras[i], err = a.extraFor(e)
				}
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return tlog.Root{}, fmt.Errorf("entry %d of %d: %w", i, len(bodies), err)
		}
	}
	return a.log.Import(ctx, values, extras)
}

// shardByTree finds the shard of a tree ID.
func (a *API) shardByTree(treeID int64) *shard {
	for _, sh := range a.shards {
		if sh.tree.TreeID() == treeID {
			return sh
		}
	}
	return nil
}

// ByID is the entry of a 64- or 80-hex ID, with its inclusion proof and
// SET; ok is false when it is not in the log.
func (a *API) ByID(ctx context.Context, id string) (model.LogEntry, bool, error) {
	return a.byID(ctx, id)
}

// ByIndex is the entry at a log index (across every tree of the log).
func (a *API) ByIndex(ctx context.Context, index int64) (model.LogEntry, bool, error) {
	return a.byIndex(ctx, index)
}

// Info is /api/v1/log: the active tree's head and the frozen trees'.
func (a *API) Info(ctx context.Context) (model.LogInfo, error) { return a.info(ctx) }

// IsClientError reports whether err is the asker's fault (a malformed ID,
// a query that is none, one that matches too much): what the API answers
// with a 4xx, and an embedder shows as is.
func IsClientError(err error) bool {
	var br *badRequest
	var un *unprocessable
	var tm *tooManyResults
	var ve *types.ValidationError
	return errors.As(err, &br) || errors.As(err, &un) || errors.As(err, &tm) || errors.As(err, &ve)
}

// byID finds an entry by 64- or 80-hex ID; ok is false when it is not here.
// A 64-hex ID is looked for in the active tree first, then the older ones.
func (a *API) byID(ctx context.Context, id string) (model.LogEntry, bool, error) {
	if !model.IsEntryID(id) {
		return nil, false, &unprocessable{fmt.Sprintf("entry UUID %q should match '^([0-9a-fA-F]{64}|[0-9a-fA-F]{80})$'", id)}
	}
	treeID, leafHash, err := model.ParseEntryID(id)
	if err != nil {
		return nil, false, &badRequest{err.Error()}
	}
	var candidates []*shard
	if treeID != 0 {
		if sh := a.shardByTree(treeID); sh != nil {
			candidates = append(candidates, sh)
		}
	} else {
		for i := len(a.shards) - 1; i >= 0; i-- {
			candidates = append(candidates, a.shards[i])
		}
	}
	for _, sh := range candidates {
		found, err := sh.tree.ByHash(ctx, [][]byte{leafHash})
		if err != nil {
			return nil, false, err
		}
		if len(found) > 0 {
			le, _, err := a.entry(ctx, sh, found[0])
			return le, err == nil, err
		}
	}
	return nil, false, nil
}

// byIndex finds an entry by its index across every tree of the log.
func (a *API) byIndex(ctx context.Context, index int64) (model.LogEntry, bool, error) {
	for i, sh := range a.shards {
		if i+1 < len(a.shards) && uint64(index) >= a.shards[i+1].tree.Offset() {
			continue
		}
		p, err := sh.tree.ByIndex(ctx, uint64(index)-sh.tree.Offset())
		if errors.Is(err, tlog.ErrNotFound) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		le, _, err := a.entry(ctx, sh, p)
		return le, err == nil, err
	}
	return nil, false, nil
}

func (a *API) info(ctx context.Context) (model.LogInfo, error) {
	var out model.LogInfo
	for _, sh := range a.shards {
		root, err := sh.tree.Latest(ctx)
		if err != nil {
			return model.LogInfo{}, err
		}
		cp, err := sh.tree.Checkpoint(root)
		if err != nil {
			return model.LogInfo{}, err
		}
		info := model.InactiveShardLogInfo{
			RootHash: hex.EncodeToString(root.Hash), SignedTreeHead: cp,
			TreeID: strconv.FormatInt(sh.tree.TreeID(), 10), TreeSize: int64(root.Size),
		}
		if sh != a.active {
			out.InactiveShards = append(out.InactiveShards, info)
			continue
		}
		out.RootHash, out.SignedTreeHead, out.TreeID, out.TreeSize = info.RootHash, info.SignedTreeHead, info.TreeID, info.TreeSize
	}
	return out, nil
}

type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

type unprocessable struct{ msg string }

func (e *unprocessable) Error() string { return e.msg }

// decodeJSON decodes a request body strictly.
func decodeJSON(body []byte, v any) error {
	if err := types.DecodeStrict(body, v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return &badRequest{fmt.Sprintf("request body is not valid JSON: %v", err)}
		case errors.As(err, &typ):
			return &unprocessable{fmt.Sprintf("%s in body must be of type %s: %q", typ.Field, typ.Type, typ.Value)}
		default:
			return &unprocessable{fmt.Sprintf("request body: %v", err)}
		}
	}
	return nil
}
