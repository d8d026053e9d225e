package ctapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// A v1 MerkleTreeLeaf is version (1 byte), leaf_type (1), timestamp (8),
// then the entry: entry_type, the certificate or precertificate, and the
// extensions. Every leaf this log writes has that shape.
const (
	timestampStart = 2
	timestampEnd   = timestampStart + 8
)

// identityTag keeps an entry identity apart from an RFC 6962 leaf hash
// (SHA-256 of 0x00 and the leaf), the identity of the leaves this log
// stored before it deduplicated.
const identityTag = "signet CT entry identity v1\x00"

// entryIdentity is what the log finds an entry by when it is submitted
// again (its LeafIdentityHash): SHA-256 of the leaf without its timestamp.
// Two submissions have the same identity exactly when their leaves differ
// in nothing but the timestamp, so an SCT for either leaf's timestamp
// covers the other's entry and extensions. (CTFE hashes the submitted
// certificate alone; hashing the whole entry also tells apart one
// precertificate TBS under two issuer keys.)
func entryIdentity(leaf []byte) []byte {
	h := sha256.New()
	h.Write([]byte(identityTag))
	h.Write(leaf[:timestampStart])
	h.Write(leaf[timestampEnd:])
	return h.Sum(nil)
}

// storedTimestamp is the timestamp of stored, the leaf the log keeps for
// leaf's identity, after checking that the two leaves differ in nothing
// else: a duplicate's SCT is the stored leaf's, signed over stored.
func storedTimestamp(leaf, stored []byte) (uint64, error) {
	if len(stored) != len(leaf) || !bytes.Equal(stored[:timestampStart], leaf[:timestampStart]) || !bytes.Equal(stored[timestampEnd:], leaf[timestampEnd:]) {
		return 0, fmt.Errorf("the leaf stored for entry identity %x is not this entry (%d bytes, want %d)", entryIdentity(leaf), len(stored), len(leaf))
	}
	return binary.BigEndian.Uint64(stored[timestampStart:timestampEnd]), nil
}
