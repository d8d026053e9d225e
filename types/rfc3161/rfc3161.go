// Package rfc3161 is the rfc3161 entry kind (0.0.1): an RFC 3161
// timestamp response, logged whole so that anyone can later show that a
// timestamp authority vouched for a digest at a time.
//
// As in Rekor 1.5, the response is checked structurally: status granted
// (or granted with modifications), a CMS SignedData token whose signature
// verifies with the certificate it carries. No chain is checked: the log
// records what a TSA said, not whom to trust. The canonical leaf is the
// response as sent.
package rfc3161

import (
	"context"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"strings"

	"github.com/digitorus/timestamp"

	"github.com/signet-dev/signet/internal/sigalg"
	"github.com/signet-dev/signet/types"
)

// Name is the kind's name on the wire.
const Name = "rfc3161"

// MaxResponseBytes bounds a response, as Rekor bounds it (10 KiB): a
// token with its chain fits many times over.
const MaxResponseBytes = 10 * 1024

// Kind returns the rfc3161 kind.
func Kind() types.Kind {
	return types.Kind{Name: Name, DefaultVersion: "0.0.1", Versions: map[string]types.Parser{"0.0.1": parseV001}}
}

// specV001 is Rekor's rfc3161 0.0.1 schema, proposed and canonical.
type specV001 struct {
	TSR *tsrV001 `json:"tsr"`
}

type tsrV001 struct {
	Content []byte `json:"content"`
}

// timeStampResp is RFC 3161's TimeStampResp, read far enough to judge the
// status before the token is parsed.
type timeStampResp struct {
	Status struct {
		Status       int
		StatusString []string       `asn1:"optional,utf8"`
		FailInfo     asn1.BitString `asn1:"optional"`
	}
	TimeStampToken asn1.RawValue `asn1:"optional"`
}

// The PKIStatus values RFC 3161 calls success.
const (
	statusGranted         = 0
	statusGrantedWithMods = 1
)

func parseV001(_ context.Context, raw json.RawMessage) (types.Entry, error) {
	var s specV001
	if err := types.DecodeStrict(raw, &s); err != nil {
		return nil, types.Invalid("rfc3161 spec: %v", err)
	}
	if s.TSR == nil || len(s.TSR.Content) == 0 {
		return nil, types.Invalid("rfc3161: 'content' must be specified for tsr (the DER timestamp response)")
	}
	der := s.TSR.Content
	if len(der) > MaxResponseBytes {
		return nil, types.Invalid("rfc3161: the timestamp response is %d bytes, more than %d", len(der), MaxResponseBytes)
	}
	var resp timeStampResp
	// Trailing bytes are ignored, as Rekor ignores them: the leaf is the
	// response as sent either way.
	if _, err := asn1.Unmarshal(der, &resp); err != nil {
		return nil, types.Invalid("rfc3161: not a DER timestamp response: %v", err)
	}
	if st := resp.Status.Status; st != statusGranted && st != statusGrantedWithMods {
		return nil, types.Invalid("rfc3161: the response's status is %d (%s), not granted: it holds no timestamp", st, strings.Join(resp.Status.StatusString, "; "))
	}
	if len(resp.TimeStampToken.FullBytes) == 0 {
		return nil, types.Invalid("rfc3161: the response holds no timestamp token")
	}
	ts, err := timestamp.Parse(resp.TimeStampToken.FullBytes)
	if err != nil {
		return nil, types.Invalid("rfc3161: the timestamp token: %v", err)
	}
	// timestamp.Parse verifies the token's signature only when it carries
	// certificates; Rekor cannot verify it otherwise and refuses it.
	if len(ts.Certificates) == 0 {
		return nil, types.Invalid("rfc3161: the token carries no certificate to check its signature with (request one: openssl ts -query -cert, or certReq)")
	}
	leaf, err := types.Canonicalize(Name, "0.0.1", specV001{TSR: &tsrV001{Content: der}})
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	// Rekor indexes the response's SHA-256. The message imprint is indexed
	// too (a deviation, on purpose): a search by an artifact's digest then
	// finds the timestamps over it.
	keys := []string{"sha256:" + hex.EncodeToString(sum[:])}
	if name, ok := sigalg.HashName(ts.HashAlgorithm); ok {
		keys = append(keys, name+":"+hex.EncodeToString(ts.HashedMessage))
	}
	return &types.Verified{Leaf: leaf, Keys: keys}, nil
}
