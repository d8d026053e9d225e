// Package tuf is the tuf entry kind (0.0.1): a piece of TUF metadata
// (root, targets, snapshot or timestamp) logged with the root that
// vouches for it, so that anyone can later see which metadata a
// repository published. Both are checked with go-tuf/v2: the root is
// signed by a threshold of its own root keys, the metadata by a threshold
// of the keys the root gives its role, and neither has expired (as Rekor's
// go-tuf checks).
package tuf

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-dev/signet/internal/canonjson"
	"github.com/signet-dev/signet/types"
	"github.com/signet-dev/signet/types/pki"
)

// Name is the kind's name on the wire.
const Name = "tuf"

// Kind returns the tuf kind; now is the clock expiry is judged by.
func Kind() types.Kind { return KindAt(time.Now) }

// KindAt is Kind with another clock (tests, and a log importing old
// metadata would need one).
func KindAt(now func() time.Time) types.Kind {
	p := parser{now: now}
	return types.Kind{Name: Name, DefaultVersion: "0.0.1", Versions: map[string]types.Parser{"0.0.1": p.parseV001}}
}

type parser struct{ now func() time.Time }

// specV001 is Rekor's tuf 0.0.1 schema: each content is the metadata's
// JSON object, or its bytes in base64 (the canonical form).
type specV001 struct {
	Metadata    *content `json:"metadata"`
	Root        *content `json:"root"`
	SpecVersion string   `json:"spec_version,omitempty"`
}

type content struct {
	Content json.RawMessage `json:"content"`
}

// canonicalV001 is the leaf's spec: each content the base64 of its
// canonical JSON, as Rekor writes it.
type canonicalV001 struct {
	Metadata    canonicalContent `json:"metadata"`
	Root        canonicalContent `json:"root"`
	SpecVersion string           `json:"spec_version,omitempty"`
}

type canonicalContent struct {
	Content []byte `json:"content"`
}

// bytesOf reads a content: a JSON object as it is, a string as base64.
func bytesOf(field string, c *content) ([]byte, error) {
	if c == nil || len(c.Content) == 0 || bytes.Equal(c.Content, []byte("null")) {
		return nil, types.Invalid("tuf: %s.content is required", field)
	}
	if c.Content[0] != '"' {
		return c.Content, nil
	}
	var s string
	if err := json.Unmarshal(c.Content, &s); err != nil {
		return nil, types.Invalid("tuf: %s.content: %v", field, err)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, types.Invalid("tuf: %s.content is a string but not base64", field)
	}
	return b, nil
}

// signedEnvelope is TUF's {"signed", "signatures"} as Rekor's go-tuf
// reads and re-writes it: keyid and sig (hex) per signature, nothing
// else, so that is all the canonical form keeps.
type signedEnvelope struct {
	Signatures []struct {
		KeyID string   `json:"keyid"`
		Sig   hexBytes `json:"sig"`
	} `json:"signatures"`
	Signed json.RawMessage `json:"signed"`
}

// hexBytes is a signature in hex, written back in lower case.
type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	d, err := hex.DecodeString(s)
	if err != nil {
		return fmt.Errorf("sig is not hex: %w", err)
	}
	*h = d
	return nil
}

func (h hexBytes) MarshalJSON() ([]byte, error) { return json.Marshal(hex.EncodeToString(h)) }

// canonical is the metadata in RFC 8785 form after the round trip through
// signedEnvelope.
func canonical(field string, b []byte) ([]byte, error) {
	var env signedEnvelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, types.Invalid("tuf: %s is not TUF metadata: %v", field, err)
	}
	out, err := canonjson.Marshal(env)
	if err != nil {
		return nil, types.Invalid("tuf: %s: %v", field, err)
	}
	return out, nil
}

// MaxKeys bounds a document's signatures, its keys and each role's key IDs
// (duplicates refused): go-tuf re-encodes the signed part once per key ID
// of the role it verifies, so 64 KiB of repeated IDs cost 23 s. Real
// repositories have a handful.
const MaxKeys = 64

// checkShape refuses TUF documents that would cost seconds to read: more
// than MaxKeys signatures, keys or key IDs per role, repeated key IDs, or
// an object too big to canonicalize quickly.
func checkShape(b []byte) error {
	if err := canonjson.CheckMembers(b, canonjson.MaxMembers); err != nil {
		return err
	}
	var shape struct {
		Signatures []json.RawMessage `json:"signatures"`
		Signed     struct {
			Keys  map[string]json.RawMessage `json:"keys"`
			Roles map[string]struct {
				KeyIDs []string `json:"keyids"`
			} `json:"roles"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(b, &shape); err != nil {
		return err
	}
	if len(shape.Signatures) > MaxKeys || len(shape.Signed.Keys) > MaxKeys {
		return fmt.Errorf("more than %d signatures or keys", MaxKeys)
	}
	// go-tuf loads RSA keys of any size (a 512 Kib one cost 13 s a root).
	for id, raw := range shape.Signed.Keys {
		var k metadata.Key
		if err := json.Unmarshal(raw, &k); err != nil {
			return fmt.Errorf("key %s: %w", id, err)
		}
		if pub, err := k.ToPublicKey(); err == nil {
			if err := pki.CheckKey(pub); err != nil {
				return fmt.Errorf("key %s: %w", id, err)
			}
		}
	}
	for name, role := range shape.Signed.Roles {
		if len(role.KeyIDs) > MaxKeys {
			return fmt.Errorf("role %q lists more than %d key IDs", name, MaxKeys)
		}
		seen := map[string]bool{}
		for _, id := range role.KeyIDs {
			if seen[id] {
				return fmt.Errorf("role %q lists key ID %q twice", name, id)
			}
			seen[id] = true
		}
	}
	return nil
}

// CanonicalRoot is a root as tuf entries store it; entries it signs are
// indexed under the hex SHA-256 of these bytes (Rekor's search by a "tuf"
// public key). The root must be signed by a threshold of its own keys.
func CanonicalRoot(b []byte) ([]byte, error) {
	if err := checkShape(b); err != nil {
		return nil, err
	}
	root, err := metadata.Root().FromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("not TUF root metadata: %w", err)
	}
	if err := root.VerifyDelegate(metadata.ROOT, root); err != nil {
		return nil, fmt.Errorf("the root is not signed by a threshold of its own root keys: %w", err)
	}
	return canonical("root", b)
}

func (p parser) parseV001(_ context.Context, raw json.RawMessage) (types.Entry, error) {
	var s specV001
	if err := types.DecodeStrict(raw, &s); err != nil {
		return nil, types.Invalid("tuf spec: %v", err)
	}
	rootBytes, err := bytesOf("root", s.Root)
	if err != nil {
		return nil, err
	}
	mdBytes, err := bytesOf("metadata", s.Metadata)
	if err != nil {
		return nil, err
	}
	for _, doc := range []struct {
		field string
		b     []byte
	}{{"root", rootBytes}, {"metadata", mdBytes}} {
		if err := checkShape(doc.b); err != nil {
			return nil, types.Invalid("tuf: %s: %v", doc.field, err)
		}
	}
	now := p.now()
	root, err := metadata.Root().FromBytes(rootBytes)
	if err != nil {
		return nil, types.Invalid("tuf: root is not TUF root metadata: %v", err)
	}
	if err := root.VerifyDelegate(metadata.ROOT, root); err != nil {
		return nil, types.Invalid("tuf: the root is not signed by a threshold of its own root keys: %v", err)
	}
	if root.Signed.IsExpired(now) {
		return nil, types.Invalid("tuf: the root expired at %s", root.Signed.Expires.UTC().Format(time.RFC3339))
	}
	var head struct {
		Signed struct {
			Type    string `json:"_type"`
			Version int    `json:"version"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(mdBytes, &head); err != nil {
		return nil, types.Invalid("tuf: metadata is not TUF metadata: %v", err)
	}
	var expires time.Time
	var verr error
	switch role := head.Signed.Type; role {
	case metadata.ROOT:
		md, err := metadata.Root().FromBytes(mdBytes)
		if err != nil {
			return nil, types.Invalid("tuf: metadata: %v", err)
		}
		verr, expires = root.VerifyDelegate(role, md), md.Signed.Expires
	case metadata.TARGETS:
		md, err := metadata.Targets().FromBytes(mdBytes)
		if err != nil {
			return nil, types.Invalid("tuf: metadata: %v", err)
		}
		verr, expires = root.VerifyDelegate(role, md), md.Signed.Expires
	case metadata.SNAPSHOT:
		md, err := metadata.Snapshot().FromBytes(mdBytes)
		if err != nil {
			return nil, types.Invalid("tuf: metadata: %v", err)
		}
		verr, expires = root.VerifyDelegate(role, md), md.Signed.Expires
	case metadata.TIMESTAMP:
		md, err := metadata.Timestamp().FromBytes(mdBytes)
		if err != nil {
			return nil, types.Invalid("tuf: metadata: %v", err)
		}
		verr, expires = root.VerifyDelegate(role, md), md.Signed.Expires
	default:
		return nil, types.Invalid("tuf: metadata of type %q: want root, targets, snapshot or timestamp", role)
	}
	if verr != nil {
		return nil, types.Invalid("tuf: the %s metadata is not signed by a threshold of the root's %s keys: %v", head.Signed.Type, head.Signed.Type, verr)
	}
	if !expires.After(now) {
		return nil, types.Invalid("tuf: the %s metadata expired at %s", head.Signed.Type, expires.UTC().Format(time.RFC3339))
	}
	canonRoot, err := canonical("root", rootBytes)
	if err != nil {
		return nil, err
	}
	canonMD, err := canonical("metadata", mdBytes)
	if err != nil {
		return nil, err
	}
	leaf, err := types.Canonicalize(Name, "0.0.1", canonicalV001{
		Metadata: canonicalContent{Content: canonMD}, Root: canonicalContent{Content: canonRoot}, SpecVersion: root.Signed.SpecVersion,
	})
	if err != nil {
		return nil, err
	}
	mdHash, rootHash := sha256.Sum256(canonMD), sha256.Sum256(canonRoot)
	// Rekor's keys: the metadata's digest, its role and version (as they
	// are: a search for "targets" finds every targets metadata), the
	// root's digest.
	keys := []string{hex.EncodeToString(mdHash[:]), head.Signed.Type, strconv.Itoa(head.Signed.Version), hex.EncodeToString(rootHash[:])}
	return &types.Verified{Leaf: leaf, Keys: keys}, nil
}
