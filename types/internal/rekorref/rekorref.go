// Package rekorref runs Rekor's own entry types (a test-only dependency) so
// tests can compare our canonical leaves and index keys with the reference,
// byte for byte.
package rekorref

import (
	"bytes"
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/go-openapi/runtime"
	"github.com/sigstore/rekor/pkg/generated/models"
	rekortypes "github.com/sigstore/rekor/pkg/types"

	"github.com/signet-dev/signet/types"

	// Registering the kinds compared against.
	_ "github.com/sigstore/rekor/pkg/types/alpine/v0.0.1"
	_ "github.com/sigstore/rekor/pkg/types/cose/v0.0.1"
	_ "github.com/sigstore/rekor/pkg/types/dsse/v0.0.1"
	_ "github.com/sigstore/rekor/pkg/types/hashedrekord/v0.0.1"
	_ "github.com/sigstore/rekor/pkg/types/helm/v0.0.1"
	_ "github.com/sigstore/rekor/pkg/types/intoto/v0.0.1"
	_ "github.com/sigstore/rekor/pkg/types/intoto/v0.0.2"
	_ "github.com/sigstore/rekor/pkg/types/jar/v0.0.1"
	_ "github.com/sigstore/rekor/pkg/types/rekord/v0.0.1"
	_ "github.com/sigstore/rekor/pkg/types/rfc3161/v0.0.1"
	_ "github.com/sigstore/rekor/pkg/types/rpm/v0.0.1"
	_ "github.com/sigstore/rekor/pkg/types/tuf/v0.0.1"
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
	// In that order, as Rekor's API does (pkg/api/entries.go): canonicalizing
	// fills in what the keys are made of (rekord's data.hash when only the
	// content was sent).
	leaf, err := rekortypes.CanonicalizeEntry(context.Background(), e)
	if err != nil {
		return nil, nil, err
	}
	keys, err := e.IndexKeys()
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

// Matches parses proposal with reg as an insertion and fails t unless its
// canonical leaf and index keys are Rekor's; it returns our entry.
func Matches(t testing.TB, reg *types.Registry, proposal []byte) types.Entry {
	t.Helper()
	return MatchesWithExtraKeys(t, reg, proposal)
}

// MatchesWithExtraKeys is Matches for a kind that indexes more than Rekor
// does, on purpose: our keys must be Rekor's and extra, exactly.
func MatchesWithExtraKeys(t testing.TB, reg *types.Registry, proposal []byte, extra ...string) types.Entry {
	t.Helper()
	e, err := reg.ParseInsertable(context.Background(), proposal)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	wantLeaf, wantKeys, err := Canonicalize(proposal)
	if err != nil {
		t.Fatalf("rekor: %v", err)
	}
	if !bytes.Equal(e.Canonical(), wantLeaf) {
		t.Fatalf("leaf differs from Rekor's:\n ours  %s\n rekor %s", e.Canonical(), wantLeaf)
	}
	wantKeys = Normalize(append(wantKeys, extra...))
	if got := Normalize(e.IndexKeys()); strings.Join(got, "\n") != strings.Join(wantKeys, "\n") {
		t.Fatalf("index keys differ:\n ours  %v\n rekor %v", got, wantKeys)
	}
	return e
}
