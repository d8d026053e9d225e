package memtree

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

func leaf(i uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], i)
	return rfc6962.DefaultHasher.HashLeaf(b[:])
}

// Roots and proofs at every size agree with transparency-dev/merkle's own
// compact ranges and proof verifiers, growing the tree in uneven steps.
func TestAgainstReferenceVerifiers(t *testing.T) {
	const n = 70
	tree := New()
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	ref := rf.NewEmptyRange(0)
	var roots [][]byte
	for i := uint64(0); i < n; {
		step := min(i%5+1, n-i)
		var batch [][]byte
		for j := i; j < i+step; j++ {
			batch = append(batch, leaf(j))
		}
		if err := tree.Append(batch...); err != nil {
			t.Fatal(err)
		}
		for _, h := range batch {
			ref.Append(h, nil) //nolint:errcheck
			want, _ := ref.GetRootHash(nil)
			roots = append(roots, want)
		}
		i += step
	}
	if tree.Size() != n {
		t.Fatalf("size %d, want %d", tree.Size(), n)
	}
	for size := uint64(1); size <= n; size++ {
		root, err := tree.RootAt(size)
		if err != nil || !bytes.Equal(root, roots[size-1]) {
			t.Fatalf("root at %d: %x %v, want %x", size, root, err, roots[size-1])
		}
		for i := uint64(0); i < size; i++ {
			p, err := tree.Inclusion(i, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, i, size, leaf(i), p, root); err != nil {
				t.Fatalf("inclusion %d in %d: %v", i, size, err)
			}
		}
		for from := uint64(1); from < size; from++ {
			p, err := tree.Consistency(from, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, from, size, p, roots[from-1], root); err != nil {
				t.Fatalf("consistency %d -> %d: %v", from, size, err)
			}
		}
	}
	if root, _ := tree.RootAt(0); !bytes.Equal(root, rfc6962.DefaultHasher.EmptyRoot()) {
		t.Fatal("empty root")
	}
}

func TestRefusesWhatItDoesNotHold(t *testing.T) {
	tree := New()
	tree.Append(leaf(0), leaf(1), leaf(2)) //nolint:errcheck
	for name, err := range map[string]error{
		"root beyond size":      func() error { _, err := tree.RootAt(4); return err }(),
		"inclusion beyond size": func() error { _, err := tree.Inclusion(1, 4); return err }(),
		"index beyond size":     func() error { _, err := tree.Inclusion(3, 3); return err }(),
		"consistency beyond":    func() error { _, err := tree.Consistency(2, 5); return err }(),
		"short leaf hash":       tree.Append(make([]byte, sha256.Size-1)),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if tree.Size() != 3 {
		t.Fatalf("a refused append changed the size to %d", tree.Size())
	}
}

func BenchmarkInclusionMillion(b *testing.B) {
	tree := New()
	batch := make([][]byte, 0, 1<<20)
	for i := uint64(0); i < 1<<20; i++ {
		batch = append(batch, leaf(i))
	}
	tree.Append(batch...) //nolint:errcheck
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := tree.Inclusion(uint64(i)%(1<<20), 1<<20); err != nil {
			b.Fatal(err)
		}
	}
}
