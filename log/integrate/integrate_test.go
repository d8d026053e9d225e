package integrate

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/google/trillian/storage/cache"
	"github.com/google/trillian/storage/storagepb"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"google.golang.org/protobuf/proto"

	"github.com/signet-dev/signet/log/tiles"
)

func leafHash(i uint64) []byte { return rfc6962.DefaultHasher.HashLeaf(fmt.Appendf(nil, "%d", i)) }

// Appending batches of many sizes past the third stratum's first tile
// (65,536 leaves), storing what UpdateTiles returns in a map:
//   - each batch's root is the one transparency-dev/merkle computes over
//     every leaf from scratch;
//   - every tile Unstored names is absent from the map and every other tile
//     the batch touches is there;
//   - the tiles are Trillian's: its PopulateLogTile reads each, and proofs
//     read from them (package tiles) verify with merkle at every size.
func TestAppendWritesTrilliansTiles(t *testing.T) {
	stored := map[string]*storagepb.SubtreeProto{}
	border := factory.NewEmptyRange(0)
	var leaves [][]byte
	sizes := []int{1, 1, 3, 250, 1, 1, 300, 256, 511, 1024, 3000}
	reader := tiles.Reader{Tree: 1, Cache: tiles.NewCache(1<<30, nil), Fetch: func(_ context.Context, ids [][]byte) ([][]byte, error) {
		var out [][]byte
		for _, id := range ids {
			if p, ok := stored[string(id)]; ok {
				raw, err := proto.Marshal(p)
				if err != nil {
					return nil, err
				}
				out = append(out, raw)
			}
		}
		return out, nil
	}}
	for i := 0; border.End() < 70000; i++ {
		size := border.End()
		n := sizes[i%len(sizes)]
		hashes := make([][]byte, n)
		for j := range hashes {
			hashes[j] = leafHash(size + uint64(j))
		}
		b, err := Append(border, hashes)
		if err != nil {
			t.Fatal(err)
		}
		if border.End() != size {
			t.Fatalf("Append moved the border it was given to %d", border.End())
		}
		leaves = append(leaves, hashes...)
		fresh := factory.NewEmptyRange(0)
		for _, h := range leaves {
			if err := fresh.Append(h, nil); err != nil {
				t.Fatal(err)
			}
		}
		want, err := fresh.GetRootHash(nil)
		if err != nil || !bytes.Equal(b.Root, want) {
			t.Fatalf("appending %d at size %d: root %x, merkle's %x (%v)", n, size, b.Root, want, err)
		}
		unstored := Unstored(b.Nodes, size)
		for _, id := range TileIDs(b.Nodes) {
			if _, ok := stored[string(id)]; ok == unstored[string(id)] {
				t.Fatalf("appending %d at size %d: tile %x stored %v, Unstored says not stored %v", n, size, id, ok, unstored[string(id)])
			}
		}
		w, err := UpdateTiles(b.Nodes, stored)
		if err != nil {
			t.Fatal(err)
		}
		for j, tl := range w.Tiles {
			if !bytes.Equal(w.IDs[j], tl.Prefix) {
				t.Fatalf("tile %x written under ID %x", tl.Prefix, w.IDs[j])
			}
			// What storage holds is the encoding.
			p, err := Unmarshal(w.Blobs[j])
			if err != nil {
				t.Fatal(err)
			}
			if err := cache.PopulateLogTile(proto.Clone(p).(*storagepb.SubtreeProto), rfc6962.DefaultHasher); err != nil {
				t.Fatalf("Trillian cannot read tile %x: %v", tl.Prefix, err)
			}
			stored[string(tl.Prefix)] = p
		}
		for _, k := range []uint64{0, size / 2, border.End(), border.End() + uint64(n) - 1} {
			end := size + uint64(n)
			if k >= end {
				continue
			}
			p, err := reader.Inclusion(context.Background(), k, end)
			if err == nil {
				err = proof.VerifyInclusion(rfc6962.DefaultHasher, k, end, leaves[k], p, b.Root)
			}
			if err != nil {
				t.Fatalf("leaf %d at size %d, proven from the tiles: %v", k, end, err)
			}
		}
		if err := border.AppendRange(mustRange(t, size, hashes), nil); err != nil {
			t.Fatal(err)
		}
	}
}

// mustRange is the compact range of hashes appended from begin.
func mustRange(t *testing.T, begin uint64, hashes [][]byte) *compact.Range {
	t.Helper()
	r := factory.NewEmptyRange(begin)
	for _, h := range hashes {
		if err := r.Append(h, nil); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// BenchmarkBatch is the pipeline's pure work for a batch of 32 appends to a
// tree of 10M leaves: nodes and root from the border, then the tiles to
// write from the stored ones (the bottom tile 5/8 full, upper tiles partial).
func BenchmarkBatch(b *testing.B) {
	const base, filled, n = 10_000_000 / tiles.Width * tiles.Width, 160, 32
	rf := &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	ids := compact.RangeNodes(0, base, nil)
	dummy := make([][]byte, len(ids))
	for i := range dummy {
		dummy[i] = leafHash(uint64(i) + 1<<40)
	}
	border, err := rf.NewRange(0, base, dummy)
	if err != nil {
		b.Fatal(err)
	}
	// The batch before leaves the stored tiles.
	first := make([][]byte, filled)
	for i := range first {
		first[i] = leafHash(base + uint64(i))
	}
	before, err := Append(border, first)
	if err != nil {
		b.Fatal(err)
	}
	w, err := UpdateTiles(before.Nodes, map[string]*storagepb.SubtreeProto{})
	if err != nil {
		b.Fatal(err)
	}
	hashes := make([][]byte, n)
	for i := range hashes {
		hashes[i] = leafHash(base + filled + uint64(i))
	}
	b.ReportAllocs()
	for b.Loop() {
		start, err := rf.NewRange(0, before.Border.End(), before.Border.Hashes())
		if err != nil {
			b.Fatal(err)
		}
		batch, err := Append(start, hashes)
		if err != nil {
			b.Fatal(err)
		}
		stored := map[string]*storagepb.SubtreeProto{}
		for _, t := range w.Tiles {
			stored[string(t.Prefix)] = proto.Clone(t).(*storagepb.SubtreeProto)
		}
		if _, err := UpdateTiles(batch.Nodes, stored); err != nil {
			b.Fatal(err)
		}
	}
}
