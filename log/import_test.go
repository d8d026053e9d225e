package log

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/signet-dev/signet/internal/db/dbtest"
	"github.com/signet-dev/signet/log/pgstore"
)

// A bulk import writes the tree an append would: Trillian's storage code
// reads every leaf and proves it at the root, the log's own reads agree,
// appends go on from it in one round trip, and an import holding a leaf
// already in the log writes nothing.
func TestImportWritesTheTreeAppendsWrite(t *testing.T) {
	ctx := context.Background()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hook := poisonHook{}
	pool := dbtest.NewPool(t)
	l, err := Open(ctx, pgstore.New(pool), Config{Name: "test", SignerName: "test", Signer: key, Hook: hook})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	hashes := map[uint64][]byte{}
	oneBefore := testutil.ToFloat64(l.app.metrics.commits.WithLabelValues("test", "one_round_trip"))
	// Uneven imports cross tiles and strata, between appends.
	for chunk, n := range []int{3, 300, 1, 700} {
		values, extras := make([][]byte, n), make([][]byte, n)
		for i := range n {
			values[i] = fmt.Appendf(nil, "imported %d %d", chunk, i)
			extras[i] = fmt.Appendf(nil, "extra %d %d", chunk, i)
		}
		before, err := l.Latest(ctx)
		if err != nil {
			t.Fatal(err)
		}
		root, err := l.Import(ctx, values, extras)
		if err != nil {
			t.Fatalf("import %d: %v", chunk, err)
		}
		if root.Size != before.Size+uint64(n) {
			t.Fatalf("import %d: size %d, want %d", chunk, root.Size, before.Size+uint64(n))
		}
		for i, v := range values {
			hashes[before.Size+uint64(i)] = LeafHash(v)
		}
		for i, h := range appendConcurrently(t, l, fmt.Sprintf("appended after import %d", chunk), 20) {
			hashes[i] = h
		}
	}
	root, err := l.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := rootOf(t, hashes, root.Size); root.Size != 1084 || string(root.Hash) != string(want) {
		t.Fatalf("root %d/%x, want 1084/%x", root.Size, root.Hash, want)
	}
	checkTrillianReads(t, pool, l, hashes, root)
	p, err := l.ByIndex(ctx, 25) // 3 imported, 20 appended, then "imported 1 0"
	if err != nil || string(p.Leaf.Extra) != "extra 1 2" || string(p.Leaf.Sidecar) != "sidecar extra 1 2" {
		t.Fatalf("leaf 25's extra %q and sidecar %q (%v), want the imported one and its record", p.Leaf.Extra, p.Leaf.Sidecar, err)
	}
	if one := testutil.ToFloat64(l.app.metrics.commits.WithLabelValues("test", "one_round_trip")); one < oneBefore+4 {
		t.Fatalf("%v appends after imports took one round trip, want at least one after each of the 4", one-oneBefore)
	}

	// Imports that fail write nothing and leave nothing behind in the
	// tiles the next append builds on (the pipeline keeps the tiles it last
	// wrote, and an import updates them in memory before it commits): one
	// the personality refuses, one with a leaf already in the log (it fails
	// at the COPY), each followed by an append.
	for i, bad := range [][][]byte{
		{[]byte("refused 1"), []byte("poison")},
		{[]byte("refused 2"), []byte("imported 1 7")},
	} {
		if _, err := l.Import(ctx, bad, make([][]byte, len(bad))); err == nil {
			t.Fatalf("import of %q succeeded", bad)
		}
		if after, err := l.Latest(ctx); err != nil || after.Size != root.Size+uint64(i) {
			t.Fatalf("size after a failed import %d (%v), want %d", after.Size, err, root.Size+uint64(i))
		}
		res, err := l.Append(ctx, fmt.Appendf(nil, "new %d", i), nil)
		if err != nil || res.Duplicate || res.Leaf.Index != root.Size+uint64(i) {
			t.Fatalf("append after a failed import: %+v, %v; want index %d", res, err, root.Size+uint64(i))
		}
		hashes[res.Leaf.Index] = res.Leaf.Hash
	}
	root, err = l.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkTrillianReads(t, pool, l, hashes, root)
}

// poisonHook keeps "sidecar <extra>" beside each leaf and refuses a batch
// holding the value "poison".
type poisonHook struct{}

func (poisonHook) Integrated(_ context.Context, b Batch) (Records, error) {
	r := Records{Sidecars: make([][]byte, len(b.Leaves))}
	for i, lf := range b.Leaves {
		if string(lf.Value) == "poison" {
			return Records{}, errors.New("poisoned")
		}
		r.Sidecars[i] = append([]byte("sidecar "), lf.Extra...)
	}
	return r, nil
}
