// Package rekorref runs Rekor's own entry types (a test-only dependency) so
// tests can compare our canonical leaves and index keys with the reference,
// byte for byte.
package rekorref

import (
	"bytes"
	"context"
	"sort"
	"strings"

	"github.com/go-openapi/runtime"
	"github.com/sigstore/rekor/pkg/generated/models"
	rekortypes "github.com/sigstore/rekor/pkg/types"

	// Registering the kinds compared against.
	_ "github.com/sigstore/rekor/pkg/types/dsse/v0.0.1"
	_ "github.com/sigstore/rekor/pkg/types/hashedrekord/v0.0.1"
)

// Canonicalize returns Rekor's canonical leaf and sorted, lower-cased index
// keys for a proposed entry.
func Canonicalize(proposal []byte) ([]byte, []string, error) {
	pe, err := models.UnmarshalProposedEntry(bytes.NewReader(proposal), runtime.JSONConsumer())
	if err != nil {
		return nil, nil, err
	}
	e, err := rekortypes.UnmarshalEntry(pe)
	if err != nil {
		return nil, nil, err
	}
	keys, err := e.IndexKeys()
	if err != nil {
		return nil, nil, err
	}
	leaf, err := rekortypes.CanonicalizeEntry(context.Background(), e)
	if err != nil {
		return nil, nil, err
	}
	return leaf, Normalize(keys), nil
}

// Normalize lower-cases, de-duplicates and sorts index keys.
func Normalize(keys []string) []string {
	set := map[string]bool{}
	for _, k := range keys {
		set[strings.ToLower(k)] = true
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
