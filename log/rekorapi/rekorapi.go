// Package rekorapi is the Rekor v1 REST personality of the log engine:
// byte-compatible JSON, entry IDs, signed entry timestamps and search, so
// unmodified cosign, sigstore-go and rekor-cli work against it.
package rekorapi

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

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
}

// DefaultLimits are documented in docs/configuration.md.
var DefaultLimits = Limits{MaxBodyBytes: 10 << 20, MaxSearchResults: 1000}

// maxSearchItems is Rekor's cap on the items of one /log/entries/retrieve.
const maxSearchItems = 10

// Config wires the personality.
type Config struct {
	Log    *tlog.Log
	Index  *Index
	Types  *types.Registry
	Signer crypto.Signer
	Limits Limits
	Logger *slog.Logger
}

// API serves /api/v1/log and /api/v1/index.
type API struct {
	log    *tlog.Log
	index  *Index
	types  *types.Registry
	signer crypto.Signer
	limits Limits
	logger *slog.Logger
	logID  string
	pubPEM []byte
}

// New checks the signer and builds the API.
func New(cfg Config) (*API, error) {
	if _, ok := cfg.Signer.Public().(*ecdsa.PublicKey); !ok {
		return nil, fmt.Errorf("the Rekor log key must be ECDSA (clients verify signed entry timestamps only with ECDSA), got %T", cfg.Signer.Public())
	}
	der, err := x509.MarshalPKIXPublicKey(cfg.Signer.Public())
	if err != nil {
		return nil, fmt.Errorf("encoding the log public key: %w", err)
	}
	sum := sha256.Sum256(der)
	if cfg.Limits.MaxBodyBytes <= 0 {
		cfg.Limits.MaxBodyBytes = DefaultLimits.MaxBodyBytes
	}
	if cfg.Limits.MaxSearchResults <= 0 {
		cfg.Limits.MaxSearchResults = DefaultLimits.MaxSearchResults
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &API{
		log: cfg.Log, index: cfg.Index, types: cfg.Types, signer: cfg.Signer, limits: cfg.Limits, logger: cfg.Logger,
		logID:  hex.EncodeToString(sum[:]),
		pubPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
	}, nil
}

// LogID is hex SHA-256 of the log key's PKIX DER.
func (a *API) LogID() string { return a.logID }

// IndexKeysFor is what the log stores beside a leaf for the index.
func IndexKeysFor(e types.Entry) ([]byte, error) { return encodeKeys(e.IndexKeys()) }

// entry builds the LogEntry for a proven leaf, signing its SET.
func (a *API) entry(p tlog.Proven) (model.LogEntry, string, error) {
	body := base64.StdEncoding.EncodeToString(p.Leaf.Value)
	integrated := p.Leaf.IntegratedAt.Unix()
	index := int64(p.Leaf.Index)
	payload, err := model.SETPayload(body, integrated, a.logID, index)
	if err != nil {
		return nil, "", fmt.Errorf("building SET payload: %w", err)
	}
	digest := sha256.Sum256(payload)
	set, err := a.signer.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return nil, "", fmt.Errorf("signing SET: %w", err)
	}
	checkpoint, err := a.log.Checkpoint(p.Root)
	if err != nil {
		return nil, "", err
	}
	hashes := make([]string, len(p.Proof))
	for i, h := range p.Proof {
		hashes[i] = hex.EncodeToString(h)
	}
	id := model.EntryID(a.log.TreeID(), p.Leaf.Hash)
	return model.LogEntry{id: model.LogEntryAnon{
		Body: body, IntegratedTime: integrated, LogID: a.logID, LogIndex: index,
		Verification: &model.Verification{
			InclusionProof: &model.InclusionProof{
				Checkpoint: checkpoint, Hashes: hashes, LogIndex: index,
				RootHash: hex.EncodeToString(p.Root.Hash), TreeSize: int64(p.Root.Size),
			},
			SignedEntryTimestamp: set,
		},
	}}, id, nil
}

// Add validates and appends a proposed entry: the heart of POST /log/entries.
func (a *API) Add(ctx context.Context, body []byte) (model.LogEntry, string, bool, error) {
	e, err := a.types.ParseInsertable(ctx, body)
	if err != nil {
		return nil, "", false, err
	}
	extra, err := IndexKeysFor(e)
	if err != nil {
		return nil, "", false, err
	}
	res, err := a.log.Append(ctx, e.Canonical(), extra)
	if err != nil {
		return nil, "", false, err
	}
	if res.Duplicate {
		return nil, model.EntryID(a.log.TreeID(), res.Leaf.Hash), true, nil
	}
	le, id, err := a.entry(res.Proven)
	return le, id, false, err
}

// byID finds an entry by 64- or 80-hex ID; ok is false when it is not here.
func (a *API) byID(ctx context.Context, id string) (model.LogEntry, bool, error) {
	if !model.IsEntryID(id) {
		return nil, false, &unprocessable{fmt.Sprintf("entry UUID %q should match '^([0-9a-fA-F]{64}|[0-9a-fA-F]{80})$'", id)}
	}
	treeID, leafHash, err := model.ParseEntryID(id)
	if err != nil {
		return nil, false, &badRequest{err.Error()}
	}
	if treeID != 0 && treeID != a.log.TreeID() {
		return nil, false, nil
	}
	found, err := a.log.ByHash(ctx, [][]byte{leafHash})
	if err != nil {
		return nil, false, err
	}
	if len(found) == 0 {
		return nil, false, nil
	}
	le, _, err := a.entry(found[0])
	return le, err == nil, err
}

func (a *API) byIndex(ctx context.Context, index int64) (model.LogEntry, bool, error) {
	p, err := a.log.ByIndex(ctx, uint64(index))
	if errors.Is(err, tlog.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	le, _, err := a.entry(p)
	return le, err == nil, err
}

func (a *API) info(ctx context.Context) (model.LogInfo, error) {
	root, err := a.log.Latest(ctx)
	if err != nil {
		return model.LogInfo{}, err
	}
	cp, err := a.log.Checkpoint(root)
	if err != nil {
		return model.LogInfo{}, err
	}
	return model.LogInfo{
		RootHash: hex.EncodeToString(root.Hash), SignedTreeHead: cp,
		TreeID: strconv.FormatInt(a.log.TreeID(), 10), TreeSize: int64(root.Size),
	}, nil
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
