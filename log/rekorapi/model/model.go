// Package model holds the Rekor v1 wire types and the signed-entry-timestamp
// payload, shared by the server personality and the client (so it imports
// nothing of the server).
package model

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"

	"github.com/signet-dev/signet/internal/canonjson"
)

// LogEntry is the one-key map {entryID: entry} that every entry endpoint returns.
type LogEntry map[string]LogEntryAnon

// LogEntryAnon is one entry; field names as in Rekor's openapi.yaml.
type LogEntryAnon struct {
	Attestation    *Attestation  `json:"attestation,omitempty"`
	Body           string        `json:"body"`
	IntegratedTime int64         `json:"integratedTime"`
	LogID          string        `json:"logID"`
	LogIndex       int64         `json:"logIndex"`
	Verification   *Verification `json:"verification,omitempty"`
}

// Attestation is the attestation stored with an entry (intoto, cose).
type Attestation struct {
	Data []byte `json:"data,omitempty"`
}

// Verification proves the entry: inclusion in a signed tree and the log's
// promise (SET).
type Verification struct {
	InclusionProof       *InclusionProof `json:"inclusionProof,omitempty"`
	SignedEntryTimestamp []byte          `json:"signedEntryTimestamp,omitempty"`
}

// InclusionProof is an RFC 6962 audit path, leaf to root, with the
// checkpoint that commits to RootHash.
type InclusionProof struct {
	Checkpoint string   `json:"checkpoint"`
	Hashes     []string `json:"hashes"`
	LogIndex   int64    `json:"logIndex"`
	RootHash   string   `json:"rootHash"`
	TreeSize   int64    `json:"treeSize"`
}

// LogInfo is GET /api/v1/log.
type LogInfo struct {
	InactiveShards []InactiveShardLogInfo `json:"inactiveShards,omitempty"`
	RootHash       string                 `json:"rootHash"`
	SignedTreeHead string                 `json:"signedTreeHead"`
	TreeID         string                 `json:"treeID"`
	TreeSize       int64                  `json:"treeSize"`
}

// InactiveShardLogInfo describes a frozen shard.
type InactiveShardLogInfo struct {
	RootHash       string `json:"rootHash"`
	SignedTreeHead string `json:"signedTreeHead"`
	TreeID         string `json:"treeID"`
	TreeSize       int64  `json:"treeSize"`
}

// ConsistencyProof is GET /api/v1/log/proof.
type ConsistencyProof struct {
	Hashes   []string `json:"hashes"`
	RootHash string   `json:"rootHash"`
}

// SearchIndex is POST /api/v1/index/retrieve.
type SearchIndex struct {
	Email     string                `json:"email,omitempty"`
	Hash      string                `json:"hash,omitempty"`
	PublicKey *SearchIndexPublicKey `json:"publicKey,omitempty"`
	Subject   string                `json:"subject,omitempty"`
	Operator  string                `json:"operator,omitempty"`
}

// SearchIndexPublicKey is a key to search by; only format x509 is indexed.
type SearchIndexPublicKey struct {
	Format  string `json:"format"`
	Content []byte `json:"content,omitempty"`
	URL     string `json:"url,omitempty"`
}

// SearchLogQuery is POST /api/v1/log/entries/retrieve.
type SearchLogQuery struct {
	EntryUUIDs []string          `json:"entryUUIDs,omitempty"`
	LogIndexes []*int64          `json:"logIndexes,omitempty"`
	Entries    []json.RawMessage `json:"entries,omitempty"`
}

// Error is every non-404 error body.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// SETPayload is what a signed entry timestamp signs: RFC 8785 JSON of
// {body, integratedTime, logID, logIndex}.
func SETPayload(body string, integratedTime int64, logID string, logIndex int64) ([]byte, error) {
	payload := struct {
		Body           string `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogID          string `json:"logID"`
		LogIndex       int64  `json:"logIndex"`
	}{body, integratedTime, logID, logIndex}
	if exactInJSON(integratedTime) && exactInJSON(logIndex) {
		return canonjson.MarshalSorted(payload)
	}
	return canonjson.Marshal(payload)
}

// exactInJSON tells whether RFC 8785 writes n as its decimal digits: it
// writes numbers as IEEE doubles, exact up to 2^53.
func exactInJSON(n int64) bool { return n > -(1<<53) && n < 1<<53 }

var (
	uuidPattern = regexp.MustCompile(`^([0-9a-fA-F]{64}|[0-9a-fA-F]{80})$`)
)

// LogID is Rekor's logID of a log key: hex SHA-256 of its PKIX DER.
func LogID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encoding the log key: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// EntryID is the 80-hex ID of a leaf in a tree: %016x tree ID + leaf hash.
func EntryID(treeID int64, leafHash []byte) string {
	return fmt.Sprintf("%016x", treeID) + hex.EncodeToString(leafHash)
}

// IsEntryID reports whether id has the shape of a 64- or 80-hex entry ID.
func IsEntryID(id string) bool { return uuidPattern.MatchString(id) }

// ParseEntryID splits a 64- or 80-hex ID; treeID is 0 for a bare 64-hex UUID.
func ParseEntryID(id string) (treeID int64, leafHash []byte, err error) {
	if !uuidPattern.MatchString(id) {
		return 0, nil, fmt.Errorf("entry UUID %q must be 64 or 80 hex characters", id)
	}
	if len(id) == 80 {
		tid, err := strconv.ParseUint(id[:16], 16, 64)
		if err != nil || tid == 0 || tid > 1<<63-1 {
			return 0, nil, fmt.Errorf("entry ID %q has an invalid tree ID %q", id, id[:16])
		}
		treeID = int64(tid)
		id = id[16:]
	}
	leafHash, _ = hex.DecodeString(id)
	return treeID, leafHash, nil
}
