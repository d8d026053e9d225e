package tiles

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/trillian/storage/cache"
	"github.com/google/trillian/storage/storagepb"
	"github.com/google/trillian/storage/tree"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

var factory = &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

// store is a tree written the way the log writes one: batches of leaves
// appended to a compact range, every node it completes put into tiles by
// Trillian's own tile cache, the tiles it changes stored marshalled.
type store struct {
	mu     sync.Mutex
	tiles  map[string][]byte
	leaves [][]byte
	border *compact.Range
	reads  int
	// groupReads counts calls of groups, which serves the leaves with
	// wrong[i] in place of leaf i's hash.
	groupReads int
	wrong      map[uint64][]byte
}

func newStore() *store {
	return &store{tiles: map[string][]byte{}, border: factory.NewEmptyRange(0)}
}

func leafHash(i uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], i)
	return rfc6962.DefaultHasher.HashLeaf(b[:])
}

func (s *store) append(t testing.TB, n int) {
	t.Helper()
	var nodes []tree.Node
	for range n {
		h := leafHash(uint64(len(s.leaves)))
		s.leaves = append(s.leaves, h)
		if err := s.border.Append(h, func(id compact.NodeID, hash []byte) {
			nodes = append(nodes, tree.Node{ID: id, Hash: hash})
		}); err != nil {
			t.Fatal(err)
		}
	}
	c := cache.NewLogSubtreeCache(rfc6962.DefaultHasher)
	if err := c.SetNodes(nodes, func(ids [][]byte) ([]*storagepb.SubtreeProto, error) {
		var out []*storagepb.SubtreeProto
		for _, id := range ids {
			if raw, ok := s.tiles[string(id)]; ok {
				var p storagepb.SubtreeProto
				if err := proto.Unmarshal(raw, &p); err != nil {
					return nil, err
				}
				out = append(out, &p)
			}
		}
		return out, nil
	}); err != nil {
		t.Fatal(err)
	}
	updated, err := c.UpdatedTiles()
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range updated {
		raw, err := proto.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		s.tiles[string(p.Prefix)] = raw
	}
}

func (s *store) fetch(_ context.Context, ids [][]byte) ([][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	var out [][]byte
	for _, id := range ids {
		if raw, ok := s.tiles[string(id)]; ok {
			out = append(out, raw)
		}
	}
	return out, nil
}

// groups is the store's Leaves: the hashes of whole groups of leaves.
func (s *store) groups(_ context.Context, groups []uint64) (map[uint64][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groupReads++
	out := map[uint64][]byte{}
	for _, g := range groups {
		if (g+1)*GroupSize > uint64(len(s.leaves)) {
			continue
		}
		var b []byte
		for i := g * GroupSize; i < (g+1)*GroupSize; i++ {
			h := s.leaves[i]
			if w, ok := s.wrong[i]; ok {
				h = w
			}
			b = append(b, h...)
		}
		out[g] = b
	}
	return out, nil
}

func (s *store) root(t *testing.T, size uint64) []byte {
	t.Helper()
	cr := factory.NewEmptyRange(0)
	for _, h := range s.leaves[:size] {
		if err := cr.Append(h, nil); err != nil {
			t.Fatal(err)
		}
	}
	root, err := cr.GetRootHash(nil)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// Every node is in the tile Trillian's own cache puts it in.
func TestIDIsTrilliansLayout(t *testing.T) {
	for _, n := range []compact.NodeID{
		compact.NewNodeID(0, 0), compact.NewNodeID(0, 255), compact.NewNodeID(0, 256), compact.NewNodeID(3, 31),
		compact.NewNodeID(7, 1), compact.NewNodeID(8, 0), compact.NewNodeID(8, 257), compact.NewNodeID(15, 3),
		compact.NewNodeID(16, 1), compact.NewNodeID(0, 1<<40+17), compact.NewNodeID(23, 5), compact.NewNodeID(63, 1),
	} {
		var want [][]byte
		if err := cache.NewLogSubtreeCache(rfc6962.DefaultHasher).SetNodes([]tree.Node{{ID: n, Hash: make([]byte, 32)}},
			func(ids [][]byte) ([]*storagepb.SubtreeProto, error) { want = ids; return nil, nil }); err != nil {
			t.Fatal(err)
		}
		if len(want) != 1 || !bytes.Equal(ID(n), want[0]) {
			t.Errorf("node %d.%d: ID %x, Trillian's tile %x", n.Level, n.Index, ID(n), want)
		}
	}
}

// Proofs from tiles verify with transparency-dev/merkle against roots it
// computes on its own, at every size of a tree grown in uneven batches
// (partial tiles rewritten, tiles completed, a second stratum started), and
// the border at each size has the right root.
func TestProofsFromTilesVerify(t *testing.T) {
	for _, withLeaves := range []bool{true, false} {
		t.Run(fmt.Sprint("leaves=", withLeaves), func(t *testing.T) { testProofsFromTiles(t, withLeaves) })
	}
}

func testProofsFromTiles(t *testing.T, withLeaves bool) {
	ctx := context.Background()
	s := newStore()
	r := Reader{Tree: 1, Cache: NewCache(64<<20, nil), Fetch: s.fetch}
	if withLeaves {
		r.Leaves = s.groups
	}
	var sizes []uint64
	// The last batch takes the tree past 65,536 leaves: a third stratum.
	for _, n := range []int{1, 2, 5, 248, 1, 255, 256, 300, 1000, 64000, 800} {
		s.append(t, n)
		sizes = append(sizes, uint64(len(s.leaves)))
	}
	roots := map[uint64][]byte{}
	for _, size := range sizes {
		roots[size] = s.root(t, size)
	}
	for _, size := range sizes {
		root := roots[size]
		border, err := r.Border(ctx, size)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if got, err := border.GetRootHash(nil); err != nil || !bytes.Equal(got, root) {
			t.Fatalf("size %d: border root %x (%v), want %x", size, got, err, root)
		}
		for _, i := range []uint64{0, 1, size / 3, size / 2, size - 2, size - 1} {
			if i >= size {
				continue
			}
			p, err := r.Inclusion(ctx, i, size)
			if err != nil {
				t.Fatalf("inclusion %d at %d: %v", i, size, err)
			}
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, i, size, s.leaves[i], p, root); err != nil {
				t.Fatalf("inclusion %d at %d: %v", i, size, err)
			}
		}
		for _, from := range sizes {
			if from > size {
				continue
			}
			p, err := r.Consistency(ctx, from, size)
			if err != nil {
				t.Fatalf("consistency %d..%d: %v", from, size, err)
			}
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, from, size, p, roots[from], root); err != nil {
				t.Fatalf("consistency %d..%d: %v", from, size, err)
			}
		}
	}
}

// A complete bottom tile is cached compacted: proofs of its leaves read
// groups of 8 leaf hashes, not the tile, and still verify; leaves that do
// not hash to the tile's nodes are an error, not a wrong proof.
func TestCompactedTilesProveFromLeaves(t *testing.T) {
	ctx := context.Background()
	s := newStore()
	r := Reader{Tree: 1, Cache: NewCache(64<<20, nil), Fetch: s.fetch, Leaves: s.groups}
	s.append(t, 3*Width+10)
	size := uint64(len(s.leaves))
	root := s.root(t, size)
	prove := func(i uint64) error {
		p, err := r.Inclusion(ctx, i, size)
		if err != nil {
			return err
		}
		return proof.VerifyInclusion(rfc6962.DefaultHasher, i, size, s.leaves[i], p, root)
	}
	for _, i := range []uint64{5, Width + 5, 2*Width + 5} { // reads and caches the tiles
		if err := prove(i); err != nil {
			t.Fatal(err)
		}
	}
	if tl := r.Cache.get(1, ID(compact.NewNodeID(0, 5))); tl == nil || tl.low != GroupLevel {
		t.Fatalf("a complete bottom tile is cached as %+v, want compacted", tl)
	}
	if tl := r.Cache.get(1, ID(compact.NewNodeID(0, 3*Width))); tl == nil || tl.low != 0 {
		t.Fatalf("the partial tile at the right edge is cached as %+v, want whole", tl)
	}
	reads, groups := s.reads, s.groupReads
	for i := range size {
		if err := prove(i); err != nil {
			t.Fatalf("leaf %d: %v", i, err)
		}
	}
	// One group read per proof of a leaf in a complete tile, none for the
	// partial tile's leaves, and no tile read at all.
	if s.reads != reads || s.groupReads-groups != 3*Width {
		t.Fatalf("proving every leaf read %d tiles and %d groups, want 0 and %d", s.reads-reads, s.groupReads-groups, 3*Width)
	}
	for _, from := range []uint64{1, 7, 8, 9, 300, Width, 2*Width + 3} {
		p, err := r.Consistency(ctx, from, size)
		if err == nil {
			err = proof.VerifyConsistency(rfc6962.DefaultHasher, from, size, p, s.root(t, from), root)
		}
		if err != nil {
			t.Fatalf("consistency %d..%d: %v", from, size, err)
		}
	}
	s.wrong = map[uint64][]byte{300: leafHash(1 << 40)}
	if _, err := r.Inclusion(ctx, 301, size); err == nil || !strings.Contains(err.Error(), "inconsistent") {
		t.Fatalf("a wrong leaf hash in the group: %v, want an error", err)
	}
	if err := prove(310); err != nil {
		t.Fatalf("a proof from another group: %v", err)
	}
}

// A cached tile from before the tree grew lacks the new nodes; asking for
// one reads the tile again instead of failing or answering wrong.
func TestStaleCachedTileIsReadAgain(t *testing.T) {
	ctx := context.Background()
	s := newStore()
	r := Reader{Tree: 1, Cache: NewCache(64<<20, nil), Fetch: s.fetch}
	s.append(t, 10)
	if _, err := r.Inclusion(ctx, 3, 10); err != nil {
		t.Fatal(err)
	}
	s.append(t, 10)
	reads := s.reads
	p, err := r.Inclusion(ctx, 15, 20)
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, 15, 20, s.leaves[15], p, s.root(t, 20)); err != nil {
		t.Fatal(err)
	}
	if s.reads != reads+1 {
		t.Fatalf("%d tile reads for a node the cached tile lacks, want 1", s.reads-reads)
	}
	// Now cached in its new version: no read.
	if _, err := r.Inclusion(ctx, 19, 20); err != nil || s.reads != reads+1 {
		t.Fatalf("a second proof read tiles again (%d reads, %v)", s.reads-reads, err)
	}
	// A node the stored tile lacks too is an error, not a wrong proof.
	if _, err := r.Nodes(ctx, []compact.NodeID{compact.NewNodeID(0, 25)}); err == nil {
		t.Fatal("a node beyond the stored tree was served")
	}
}

// The cache stays within its budget, keeps what is used, and of two
// versions of a tile keeps the larger.
func TestCacheBudget(t *testing.T) {
	full := func(tile uint64, bottom int) *Tile {
		p := &storagepb.SubtreeProto{Prefix: ID(compact.NewNodeID(0, tile*Width)), Depth: Height, Leaves: map[string][]byte{}}
		for i := range bottom {
			p.Leaves[keyOf(byte(i))] = leafHash(uint64(i))
		}
		tl, err := FromProto(p)
		if err != nil {
			t.Fatal(err)
		}
		return tl
	}
	one := full(0, Width).compacted().bytes()
	if whole := full(0, Width).bytes(); one*7 > whole {
		t.Fatalf("a compacted bottom tile costs %d bytes, the whole one %d", one, whole)
	}
	c := NewCache(3*one, nil)
	for i := range uint64(3) {
		c.Put(7, full(i, Width))
	}
	if c.get(7, full(0, 1).id) == nil { // 0 becomes the most recently used
		t.Fatal("tile 0 evicted within the budget")
	}
	c.Put(7, full(3, Width)) // evicts 1, the least recently used
	if c.get(7, full(1, 1).id) != nil || c.get(7, full(0, 1).id) == nil || c.used > c.max {
		t.Fatalf("after eviction: tile 1 kept %v, tile 0 kept %v, %d of %d bytes", c.get(7, full(1, 1).id) != nil, c.get(7, full(0, 1).id) != nil, c.used, c.max)
	}
	if c.get(8, full(0, 1).id) != nil {
		t.Fatal("a tile of another tree was served")
	}
	c.Put(7, full(0, 10))
	if got := c.get(7, full(0, 1).id); got.bottom != Width {
		t.Fatalf("an older version (%d bottom nodes) replaced a newer one", got.bottom)
	}
}

// keyOf is a bottom node's key in a stored tile (see bottomIndex).
func keyOf(i byte) string { return base64.StdEncoding.EncodeToString([]byte{Height, i}) }

// Corrupt tiles are errors, never panics. A tile that decodes agrees with
// Trillian's own reading of it: the internal nodes it stores (a partial
// tile) or rebuilds (PopulateLogTile, a full one) are the decoded ones.
func FuzzDecode(f *testing.F) {
	s := newStore()
	s.append(f, 300)
	for _, raw := range s.tiles {
		f.Add(raw)
	}
	f.Add([]byte{})
	f.Add([]byte("\x08\x01\x12\x00"))
	// A key longer than any suffix of a tile.
	if raw, err := proto.Marshal(&storagepb.SubtreeProto{Depth: Height, Leaves: map[string][]byte{"CAAAAAAAAAA=": leafHash(0)}}); err == nil {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		tl, err := Decode(raw)
		if err != nil {
			return
		}
		var p storagepb.SubtreeProto
		if err := proto.Unmarshal(raw, &p); err != nil {
			t.Fatalf("decoded a tile proto.Unmarshal refuses: %v", err)
		}
		// The protowire reading agrees with the proto library's.
		if viaProto, err := FromProto(&p); err != nil || !bytes.Equal(viaProto.hashes, tl.hashes) || !bytes.Equal(viaProto.id, tl.id) {
			t.Fatalf("decoded differently through proto.Unmarshal (%v)", err)
		}
		if tl.bottom == Width {
			if err := cache.PopulateLogTile(&p, rfc6962.DefaultHasher); err != nil {
				t.Fatalf("decoded a full tile Trillian cannot populate: %v", err)
			}
		}
		checked := 0
		for k := uint(1); k < Height; k++ {
			for j := range uint64(tl.bottom >> k) {
				key := base64.StdEncoding.EncodeToString([]byte{byte(Height - k), byte(j << k)})
				if want, ok := p.InternalNodes[key]; ok {
					checked++
					if !bytes.Equal(tl.node(k, j), want) {
						t.Fatalf("node %d.%d: decoded %x, Trillian's %x", k, j, tl.node(k, j), want)
					}
				}
			}
		}
		if tl.bottom == Width && checked != Width-2 {
			t.Fatalf("compared %d internal nodes of a full tile with Trillian's, want %d", checked, Width-2)
		}
	})
}

// A stored tile proto.Unmarshal refuses is refused by Decode too, however
// it is read: here an unknown field whose number is beyond protobuf's range.
func TestDecodeRefusesWhatProtoRefuses(t *testing.T) {
	s := newStore()
	s.append(t, 3)
	good := s.tiles[string(ID(compact.NewNodeID(0, 0)))]
	bad := protowire.AppendTag(append([]byte{}, good...), protowire.MaxValidNumber+1, protowire.VarintType)
	bad = protowire.AppendVarint(bad, 1)
	if err := proto.Unmarshal(bad, &storagepb.SubtreeProto{}); err == nil {
		t.Fatal("proto.Unmarshal accepts the tile; the test needs one it refuses")
	}
	if _, err := Decode(bad); err == nil {
		t.Fatal("Decode accepts a tile proto.Unmarshal refuses")
	}
	if _, err := Decode(good); err != nil {
		t.Fatalf("the good tile: %v", err)
	}
}

func TestDecodeRefusesCorruptTiles(t *testing.T) {
	good := func() *storagepb.SubtreeProto {
		p := &storagepb.SubtreeProto{Prefix: []byte{0, 0, 0, 0, 0, 0, 1}, Depth: Height, Leaves: map[string][]byte{}}
		for i := range 4 {
			p.Leaves[keyOf(byte(i))] = leafHash(uint64(i))
		}
		return p
	}
	for name, spoil := range map[string]func(p *storagepb.SubtreeProto){
		"depth":        func(p *storagepb.SubtreeProto) { p.Depth = 7 },
		"gap":          func(p *storagepb.SubtreeProto) { delete(p.Leaves, keyOf(1)); p.Leaves[keyOf(9)] = leafHash(9) },
		"short hash":   func(p *storagepb.SubtreeProto) { p.Leaves[keyOf(2)] = []byte{1, 2} },
		"internal key": func(p *storagepb.SubtreeProto) { delete(p.Leaves, keyOf(3)); p.Leaves["BwA="] = leafHash(3) },
		"garbage key":  func(p *storagepb.SubtreeProto) { delete(p.Leaves, keyOf(3)); p.Leaves["!!"] = leafHash(3) },
		"long id":      func(p *storagepb.SubtreeProto) { p.Prefix = make([]byte, 8) },
		"long key":     func(p *storagepb.SubtreeProto) { delete(p.Leaves, keyOf(3)); p.Leaves["CAAAAAAAAAA="] = leafHash(3) },
		"wrong internal node": func(p *storagepb.SubtreeProto) {
			p.InternalNodes = map[string][]byte{base64.StdEncoding.EncodeToString([]byte{Height - 1, 1 << 1}): leafHash(7)}
		},
		"internal node not complete": func(p *storagepb.SubtreeProto) {
			p.InternalNodes = map[string][]byte{base64.StdEncoding.EncodeToString([]byte{Height - 3, 1 << 3}): leafHash(7)}
		},
	} {
		p := good()
		// Trillian stores a partial tile's internal nodes: node 1.1 here.
		p.InternalNodes = map[string][]byte{base64.StdEncoding.EncodeToString([]byte{Height - 1, 1 << 1}): rfc6962.DefaultHasher.HashChildren(leafHash(2), leafHash(3))}
		if _, err := FromProto(p); err != nil {
			t.Fatalf("the good tile: %v", err)
		}
		spoil(p)
		if _, err := FromProto(p); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

// BenchmarkDecode decodes a full stored tile, as a read that misses the
// cache does.
func BenchmarkDecode(b *testing.B) {
	s := newStore()
	s.append(b, Width)
	raw := s.tiles[string(ID(compact.NewNodeID(0, 0)))]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// A proof given its leaf's group reads nothing for a compacted tile; a
// wrong group is an error, and an incomplete one is not used.
func TestInclusionWithGroup(t *testing.T) {
	ctx := context.Background()
	s := newStore()
	r := Reader{Tree: 1, Cache: NewCache(64<<20, nil), Fetch: s.fetch, Leaves: s.groups}
	s.append(t, 2*Width+3)
	size := uint64(len(s.leaves))
	root := s.root(t, size)
	if _, err := r.Inclusion(ctx, 0, size); err != nil { // caches the tiles
		t.Fatal(err)
	}
	group := func(i uint64) []byte {
		return bytes.Join(s.leaves[i/GroupSize*GroupSize:i/GroupSize*GroupSize+GroupSize], nil)
	}
	reads, groups := s.reads, s.groupReads
	for _, i := range []uint64{1, 100, 255} {
		p, err := r.InclusionWith(ctx, i, size, group(i))
		if err == nil {
			err = proof.VerifyInclusion(rfc6962.DefaultHasher, i, size, s.leaves[i], p, root)
		}
		if err != nil {
			t.Fatalf("leaf %d: %v", i, err)
		}
	}
	if s.reads != reads || s.groupReads != groups {
		t.Fatalf("proofs given their groups read %d tiles and %d groups, want none", s.reads-reads, s.groupReads-groups)
	}
	if _, err := r.InclusionWith(ctx, 1, size, group(9)); err == nil {
		t.Fatal("a proof from another group's hashes was served")
	}
	if p, err := r.InclusionWith(ctx, 2, size, group(2)[:3*hashSize]); err != nil || proof.VerifyInclusion(rfc6962.DefaultHasher, 2, size, s.leaves[2], p, root) != nil {
		t.Fatalf("with an incomplete group: %v", err)
	}
	// Without a Leaves source, a group given serves its own leaf's proof,
	// and any other node of a compacted tile reads the tile again; at an
	// older size too.
	bare := Reader{Tree: 1, Cache: r.Cache, Fetch: s.fetch}
	for _, at := range []uint64{size, 300, 13} {
		i := uint64(9)
		p, err := bare.InclusionWith(ctx, i, at, group(i))
		if err == nil {
			err = proof.VerifyInclusion(rfc6962.DefaultHasher, i, at, s.leaves[i], p, s.root(t, at))
		}
		if err != nil {
			t.Fatalf("leaf %d at size %d without Leaves: %v", i, at, err)
		}
	}
	if p, err := bare.Consistency(ctx, 13, size); err != nil || proof.VerifyConsistency(rfc6962.DefaultHasher, 13, size, p, s.root(t, 13), root) != nil {
		t.Fatalf("consistency from 13 without Leaves: %v", err)
	}
}
