// Package client talks to a Signet (or any Rekor v1 compatible) instance and
// verifies what it returns. It must not link the server: no Trillian, no pgx.
package client

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/signet-dev/signet/log/note"
	"github.com/signet-dev/signet/log/rekorapi/model"
)

// MaxResponseBytes bounds any response body read from the server.
const MaxResponseBytes = 32 << 20

// Log is a client of the Rekor v1 API.
type Log struct {
	base string
	http *http.Client
	// pinned are the log keys to trust (a rotated log has several), by log
	// ID; when none are pinned, the server's keys are fetched and trusted on
	// first use.
	pinned map[string]crypto.PublicKey
	// fetched are keys trusted on first use, by tree ("" for the active one).
	mu      sync.Mutex
	fetched map[string]crypto.PublicKey
}

// LogOption configures a Log client.
type LogOption func(*Log)

// WithLogPublicKey pins log keys (recommended: never trust the server's own
// answer). Give every key of a rotated log to read its older entries.
func WithLogPublicKey(pubs ...crypto.PublicKey) LogOption {
	return func(l *Log) {
		for _, pub := range pubs {
			if id, err := model.LogID(pub); err == nil {
				l.pinned[id] = pub
			}
		}
	}
}

// WithHTTPClient replaces the default HTTP client (30 s timeout).
func WithHTTPClient(c *http.Client) LogOption { return func(l *Log) { l.http = c } }

// NewLog returns a client for the instance at baseURL (e.g. http://127.0.0.1:8080).
func NewLog(baseURL string, opts ...LogOption) *Log {
	l := &Log{
		base: strings.TrimSuffix(baseURL, "/"), http: &http.Client{Timeout: 30 * time.Second},
		pinned: map[string]crypto.PublicKey{}, fetched: map[string]crypto.PublicKey{},
	}
	for _, o := range opts {
		o(l)
	}
	return l
}

// APIError is a non-2xx answer.
type APIError struct {
	Status   int
	Message  string
	Location string
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("log returned HTTP %d", e.Status)
	}
	return fmt.Sprintf("log returned HTTP %d: %s", e.Status, e.Message)
}

// ErrNotFound is a 404 from an entry lookup.
var ErrNotFound = errors.New("entry not found in the log")

func (l *Log) do(ctx context.Context, method, path string, body any, out any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, l.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := l.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return resp, fmt.Errorf("%s %s: reading response: %w", method, path, err)
	}
	if len(data) > MaxResponseBytes {
		return resp, fmt.Errorf("%s %s: response larger than %d bytes", method, path, MaxResponseBytes)
	}
	if resp.StatusCode == http.StatusNotFound && len(bytes.TrimSpace(data)) == 0 {
		return resp, ErrNotFound
	}
	if resp.StatusCode/100 != 2 {
		var e model.Error
		_ = json.Unmarshal(data, &e)
		return resp, &APIError{Status: resp.StatusCode, Message: e.Message, Location: resp.Header.Get("Location")}
	}
	if out == nil {
		return resp, nil
	}
	if s, ok := out.(*[]byte); ok {
		*s = data
		return resp, nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return resp, fmt.Errorf("%s %s: decoding response: %w", method, path, err)
	}
	return resp, nil
}

// PublicKey returns the key the log signs with now: the server's answer,
// accepted only if it is pinned (or trusted on first use if none is).
func (l *Log) PublicKey(ctx context.Context) (crypto.PublicKey, error) {
	return l.treeKey(ctx, "")
}

// treeKey is the key of a tree ("": the active one).
func (l *Log) treeKey(ctx context.Context, treeID string) (crypto.PublicKey, error) {
	if len(l.pinned) == 1 {
		for _, pub := range l.pinned {
			return pub, nil
		}
	}
	l.mu.Lock()
	pub, ok := l.fetched[treeID]
	l.mu.Unlock()
	if ok {
		return pub, nil
	}
	path := "/api/v1/log/publicKey"
	if treeID != "" {
		path += "?treeID=" + url.QueryEscape(treeID)
	}
	var data []byte
	if _, err := l.do(ctx, http.MethodGet, path, nil, &data); err != nil {
		return nil, err
	}
	pub, err := ParsePublicKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("log public key: %w", err)
	}
	if len(l.pinned) > 0 {
		id, err := model.LogID(pub)
		if err != nil {
			return nil, err
		}
		if l.pinned[id] == nil {
			return nil, fmt.Errorf("the log's key (ID %s) is none of the pinned keys", id)
		}
	}
	l.mu.Lock()
	l.fetched[treeID] = pub
	l.mu.Unlock()
	return pub, nil
}

// ParsePublicKeyPEM reads one PEM PUBLIC KEY.
func ParsePublicKeyPEM(data []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("not a PEM PUBLIC KEY")
	}
	return x509.ParsePKIXPublicKey(block.Bytes)
}

// Info returns the log's state after verifying its checkpoint signature.
func (l *Log) Info(ctx context.Context) (*model.LogInfo, note.Checkpoint, error) {
	var info model.LogInfo
	if _, err := l.do(ctx, http.MethodGet, "/api/v1/log", nil, &info); err != nil {
		return nil, note.Checkpoint{}, err
	}
	pub, err := l.PublicKey(ctx)
	if err != nil {
		return nil, note.Checkpoint{}, err
	}
	cp, err := note.Verify(info.SignedTreeHead, "", pub)
	if err != nil {
		return nil, note.Checkpoint{}, fmt.Errorf("log checkpoint: %w", err)
	}
	if hex.EncodeToString(cp.RootHash) != info.RootHash || int64(cp.Size) != info.TreeSize {
		return nil, note.Checkpoint{}, errors.New("log info does not match its signed checkpoint")
	}
	return &info, cp, nil
}

// VerifyShard checks an inactive shard's final checkpoint with the key of
// its tree and returns it with the key.
func (l *Log) VerifyShard(ctx context.Context, s model.InactiveShardLogInfo) (note.Checkpoint, crypto.PublicKey, error) {
	pub, err := l.treeKey(ctx, s.TreeID)
	if err != nil {
		return note.Checkpoint{}, nil, err
	}
	cp, err := note.Verify(s.SignedTreeHead, "", pub)
	if err != nil {
		return note.Checkpoint{}, nil, fmt.Errorf("tree %s's checkpoint: %w", s.TreeID, err)
	}
	if hex.EncodeToString(cp.RootHash) != s.RootHash || int64(cp.Size) != s.TreeSize {
		return note.Checkpoint{}, nil, fmt.Errorf("tree %s's info does not match its signed checkpoint", s.TreeID)
	}
	return cp, pub, nil
}

// Entry is a verified log entry.
type Entry struct {
	ID string
	model.LogEntryAnon
}

// RawBody is the entry's canonical body, the log's leaf.
func (e *Entry) RawBody() ([]byte, error) {
	body, err := base64.StdEncoding.DecodeString(e.Body)
	if err != nil {
		return nil, fmt.Errorf("entry body is not base64: %w", err)
	}
	return body, nil
}

// LeafHash is the RFC 6962 hash of the entry's body.
func (e *Entry) LeafHash() ([]byte, error) {
	body, err := e.RawBody()
	if err != nil {
		return nil, err
	}
	return rfc6962.DefaultHasher.HashLeaf(body), nil
}

// Upload proposes an entry. A duplicate returns the existing entry and a
// *APIError with Status 409 alongside it.
func (l *Log) Upload(ctx context.Context, proposed json.RawMessage) (*Entry, error) {
	var le model.LogEntry
	_, err := l.do(ctx, http.MethodPost, "/api/v1/log/entries", proposed, &le)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusConflict && apiErr.Location != "" {
		id := apiErr.Location[strings.LastIndex(apiErr.Location, "/")+1:]
		existing, gerr := l.GetByUUID(ctx, id)
		if gerr != nil {
			return nil, fmt.Errorf("%w (and fetching the existing entry failed: %v)", err, gerr)
		}
		return existing, err
	}
	if err != nil {
		return nil, err
	}
	return l.verified(ctx, le)
}

// GetByUUID fetches and verifies an entry by 64- or 80-hex ID.
func (l *Log) GetByUUID(ctx context.Context, id string) (*Entry, error) {
	var le model.LogEntry
	if _, err := l.do(ctx, http.MethodGet, "/api/v1/log/entries/"+url.PathEscape(id), nil, &le); err != nil {
		return nil, err
	}
	e, err := l.verified(ctx, le)
	if err != nil {
		return nil, err
	}
	if !strings.HasSuffix(e.ID, strings.ToLower(id)) && !strings.HasSuffix(strings.ToLower(id), e.ID[16:]) {
		return nil, fmt.Errorf("asked for entry %s, the log returned %s", id, e.ID)
	}
	return e, nil
}

// GetByIndex fetches and verifies the entry at a log index.
func (l *Log) GetByIndex(ctx context.Context, index int64) (*Entry, error) {
	var le model.LogEntry
	if _, err := l.do(ctx, http.MethodGet, "/api/v1/log/entries?logIndex="+strconv.FormatInt(index, 10), nil, &le); err != nil {
		return nil, err
	}
	e, err := l.verified(ctx, le)
	if err != nil {
		return nil, err
	}
	if e.LogIndex != index {
		return nil, fmt.Errorf("asked for index %d, the log returned %d", index, e.LogIndex)
	}
	return e, nil
}

// Retrieve runs /api/v1/log/entries/retrieve and verifies every entry.
func (l *Log) Retrieve(ctx context.Context, q model.SearchLogQuery) ([]*Entry, error) {
	var les []model.LogEntry
	if _, err := l.do(ctx, http.MethodPost, "/api/v1/log/entries/retrieve", q, &les); err != nil {
		return nil, err
	}
	out := make([]*Entry, 0, len(les))
	for _, le := range les {
		e, err := l.verified(ctx, le)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// Search runs /api/v1/index/retrieve and returns entry IDs.
func (l *Log) Search(ctx context.Context, q model.SearchIndex) ([]string, error) {
	var ids []string
	if _, err := l.do(ctx, http.MethodPost, "/api/v1/index/retrieve", q, &ids); err != nil {
		return nil, err
	}
	return ids, nil
}

// Consistency fetches a consistency proof between two tree sizes and
// verifies it against the two root hashes the caller already trusts.
func (l *Log) Consistency(ctx context.Context, first, last uint64, firstRoot, lastRoot []byte) error {
	return l.ConsistencyInTree(ctx, "", first, last, firstRoot, lastRoot)
}

// ConsistencyInTree is Consistency in one tree of the log ("": the active
// one), such as an inactive shard a key rotation froze.
func (l *Log) ConsistencyInTree(ctx context.Context, treeID string, first, last uint64, firstRoot, lastRoot []byte) error {
	switch {
	case first > last:
		return fmt.Errorf("consistency proof %d -> %d: the log shrank", first, last)
	case first == 0:
		// Every tree extends the empty one, whose root is fixed.
		if !bytes.Equal(firstRoot, rfc6962.DefaultHasher.EmptyRoot()) {
			return errors.New("consistency proof 0 -> n: the old root is not the empty tree's root")
		}
		return nil
	case first == last:
		if !bytes.Equal(firstRoot, lastRoot) {
			return fmt.Errorf("consistency proof %d -> %d: different roots for the same size (%x, and now %x)", first, last, firstRoot, lastRoot)
		}
		return nil
	}
	var cp model.ConsistencyProof
	path := fmt.Sprintf("/api/v1/log/proof?firstSize=%d&lastSize=%d", first, last)
	if treeID != "" {
		path += "&treeID=" + url.QueryEscape(treeID)
	}
	if _, err := l.do(ctx, http.MethodGet, path, nil, &cp); err != nil {
		return err
	}
	hashes, err := decodeHashes(cp.Hashes)
	if err != nil {
		return err
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, first, last, hashes, firstRoot, lastRoot); err != nil {
		return fmt.Errorf("consistency proof %d -> %d: %w", first, last, readableProofError(err))
	}
	return nil
}

func decodeHashes(in []string) ([][]byte, error) {
	out := make([][]byte, len(in))
	for i, h := range in {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("proof hash %d is not 64 hex characters", i)
		}
		out[i] = b
	}
	return out, nil
}

func (l *Log) verified(ctx context.Context, le model.LogEntry) (*Entry, error) {
	if len(le) != 1 {
		return nil, fmt.Errorf("log returned %d entries where one was expected", len(le))
	}
	for id, anon := range le {
		e := &Entry{ID: id, LogEntryAnon: anon}
		pub := l.pinned[e.LogID]
		if pub == nil {
			// Nothing pinned for this log ID: the tree's key, if trusted.
			treeID, err := strconv.ParseUint(id[:min(len(id), 16)], 16, 64)
			if err != nil {
				return nil, fmt.Errorf("entry ID %q does not start with a tree ID", id)
			}
			if pub, err = l.treeKey(ctx, strconv.FormatUint(treeID, 10)); err != nil {
				return nil, err
			}
		}
		if err := VerifyEntry(e, pub); err != nil {
			return nil, fmt.Errorf("entry %s: %w", id, err)
		}
		return e, nil
	}
	panic("unreachable")
}

// VerifyEntry checks an entry offline against the log's keys (the one whose
// ID the entry names): the entry ID matches the body, the SET, the
// checkpoint signature, and the inclusion proof against the checkpoint's root.
func VerifyEntry(e *Entry, pubs ...crypto.PublicKey) error {
	var pub crypto.PublicKey
	for _, p := range pubs {
		if id, err := model.LogID(p); err == nil && id == e.LogID {
			pub = p
		}
	}
	if pub == nil {
		if len(pubs) != 1 {
			return fmt.Errorf("entry logID %s is the ID of none of the %d log keys given", e.LogID, len(pubs))
		}
		pub = pubs[0] // and the logID check below says why it fails
	}
	leafHash, err := e.LeafHash()
	if err != nil {
		return err
	}
	if len(e.ID) != 80 || e.ID[16:] != hex.EncodeToString(leafHash) {
		return fmt.Errorf("entry ID %s does not end in the body's leaf hash %x", e.ID, leafHash)
	}
	ecPub, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return fmt.Errorf("log key is %T; signed entry timestamps need ECDSA", pub)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(der)
	if e.LogID != hex.EncodeToString(sum[:]) {
		return fmt.Errorf("entry logID %s is not the log key's ID %x", e.LogID, sum)
	}
	if e.Verification == nil || e.Verification.InclusionProof == nil || len(e.Verification.SignedEntryTimestamp) == 0 {
		return errors.New("entry carries no inclusion proof or signed entry timestamp")
	}
	payload, err := model.SETPayload(e.Body, e.IntegratedTime, e.LogID, e.LogIndex)
	if err != nil {
		return err
	}
	digest := sha256.Sum256(payload)
	if !ecdsa.VerifyASN1(ecPub, digest[:], e.Verification.SignedEntryTimestamp) {
		return errors.New("signed entry timestamp does not verify with the log key")
	}
	ip := e.Verification.InclusionProof
	cp, err := note.Verify(ip.Checkpoint, "", pub)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	treeID, err := strconv.ParseUint(e.ID[:16], 16, 64)
	if err != nil {
		return err
	}
	if !strings.HasSuffix(cp.Origin, " - "+strconv.FormatUint(treeID, 10)) {
		return fmt.Errorf("checkpoint origin %q is not for tree %d", cp.Origin, treeID)
	}
	root, err := hex.DecodeString(ip.RootHash)
	if err != nil || !bytes.Equal(root, cp.RootHash) || int64(cp.Size) != ip.TreeSize {
		return errors.New("inclusion proof root and size do not match the checkpoint")
	}
	hashes, err := decodeHashes(ip.Hashes)
	if err != nil {
		return err
	}
	if ip.LogIndex < 0 || ip.TreeSize < 0 {
		return errors.New("negative index or tree size in the inclusion proof")
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(ip.LogIndex), uint64(ip.TreeSize), leafHash, hashes, root); err != nil {
		return fmt.Errorf("inclusion proof: %w", readableProofError(err))
	}
	return nil
}

// readableProofError says in hex what transparency-dev/merkle's
// RootMismatchError prints as Go byte slices.
func readableProofError(err error) error {
	var mismatch proof.RootMismatchError
	if errors.As(err, &mismatch) {
		return fmt.Errorf("the proof leads to root %x, not the expected %x", mismatch.CalculatedRoot, mismatch.ExpectedRoot)
	}
	return err
}
