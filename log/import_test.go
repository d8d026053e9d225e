package log

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A bulk import writes the tree an append would: Trillian's storage code
// reads every leaf and proves it at the root, the log's own reads agree,
// appends go on from it in one round trip, and an import holding a leaf
// already in the log writes nothing.
func TestImportWritesTheTreeAppendsWrite(t *testing.T) {
	ctx := context.Background()
	l := openTestLog(t)
	hashes := map[uint64][]byte{}
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
	checkTrillianReads(t, l, hashes, root)
	p, err := l.ByIndex(ctx, 25) // 3 imported, 20 appended, then "imported 1 0"
	if err != nil || string(p.Leaf.Extra) != "extra 1 2" {
		t.Fatalf("leaf 25's extra %q (%v), want the imported one", p.Leaf.Extra, err)
	}
	if one := testutil.ToFloat64(l.metrics.commits.WithLabelValues("test", "one_round_trip")); one == 0 {
		t.Fatal("appends after imports did not take one round trip")
	}

	if _, err := l.Import(ctx, [][]byte{[]byte("new"), []byte("imported 1 7")}, [][]byte{nil, nil}); err == nil {
		t.Fatal("an import with a leaf already in the log succeeded")
	}
	if after, err := l.Latest(ctx); err != nil || after.Size != root.Size {
		t.Fatalf("size after a failed import %d (%v), want %d", after.Size, err, root.Size)
	}
	res, err := l.Append(ctx, []byte("new"), nil)
	if err != nil || res.Duplicate || res.Leaf.Index != root.Size {
		t.Fatalf("append after a failed import: %+v, %v; want index %d", res, err, root.Size)
	}
}
