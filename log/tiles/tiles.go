// Package tiles reads a Merkle tree's node hashes from Trillian's log
// tiles, the unit in which Signet (as Trillian) stores a tree.
//
// A tile spans Height levels. It stores the hashes of up to 256 nodes on
// its bottom level, left to right with none missing; the nodes above them
// are recomputed when the tile is read, and the tile's own root is a bottom
// node of the tile above. A node at level L and index i therefore lives in
// the tile of stratum L/8, at level L%8 of it: tile index i >> (8 - L%8),
// local index the low 8 - L%8 bits of i. A tile is named by its index's
// big-endian bytes, 7 - L/8 of them (the length says the stratum), which is
// Trillian's SubtreeId.
//
// Every node a proof needs is a complete subtree of the tree, and a complete
// node's hash never changes; tiles only grow at the tree's right edge. So a
// tile read at any time holds correct hashes for the nodes it has, and a
// node missing from a cached tile only means the tile must be read again.
//
// Proofs come from tiles through a Cache bounded in bytes: memory does not
// grow with the tree. A proof at size n touches about log2(n)/8 tiles, and
// the ones near the root, which every proof touches, stay cached. Nearly
// all tiles are complete tiles of the bottom stratum, one per 256 leaves,
// and a read of a random leaf needs one: the cache keeps those without
// their three lowest levels (62 hashes instead of 511, ~2 KiB), and a
// proof's nodes there are recomputed from the 8 leaf hashes under them
// (Reader.Leaves), which the database reads far more cheaply than a whole
// tile. 128 MiB of cache then holds the bottom tiles of some 60 million
// leaves.
package tiles

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/google/trillian/storage/storagepb"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"google.golang.org/protobuf/encoding/protowire"
)

const (
	// Height is the number of levels a tile spans (Trillian's strata).
	Height = 8
	// Width is the most nodes a tile stores on its bottom level.
	Width = 1 << Height
	// hashSize is the size of a node hash (SHA-256, RFC 6962).
	hashSize = 32
	// GroupLevel is the lowest level a compacted tile keeps: its nodes
	// below come from groups of GroupSize leaves.
	GroupLevel = 3
	GroupSize  = 1 << GroupLevel
)

// ID names the tile that holds node n.
func ID(n compact.NodeID) []byte {
	stratum := n.Level / Height
	tile := n.Index >> (Height - n.Level%Height)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], tile)
	return b[stratum+1:]
}

// local is where node n sits inside its tile: its level above the tile's
// bottom and its index along that level.
func local(n compact.NodeID) (level uint, index uint64) {
	level = n.Level % Height
	return level, n.Index & (1<<(Height-level) - 1)
}

// Tile is a stored tile decoded: the hashes of its complete nodes below its
// root.
type Tile struct {
	id []byte
	// bottom is how many nodes the tile stores on its bottom level.
	bottom int
	// low is the lowest level held: 0, or GroupLevel for a complete tile
	// of the bottom stratum compacted for the cache.
	low uint
	// hashes are the complete nodes level by level from low, left to
	// right: bottom nodes, then bottom/2 nodes of the level above, ...
	hashes []byte
	// start[k] is the position (in hashes) of level k's first node.
	start [Height]int
}

// Decode decodes a tile as stored (Trillian's SubtreeProto) and recomputes
// its nodes. The bytes come from the database, but a corrupt row must be an
// error naming the tile, never a panic or a wrong hash.
//
// The proto is read with protowire rather than unmarshalled: its two maps
// of up to 256 entries each cost a read more than the rest of its proof
// (half of a read's CPU at 10M entries, where most reads miss the cache).
// The entries are read in place and no map is built.
func Decode(raw []byte) (*Tile, error) {
	var (
		prefix   []byte
		depth    int32
		bottom   [Width][]byte
		n        int
		internal [][2][]byte
	)
	for len(raw) > 0 {
		num, typ, l := protowire.ConsumeTag(raw)
		if l < 0 {
			return nil, fmt.Errorf("decoding a stored tile: %w", protowire.ParseError(l))
		}
		if num > protowire.MaxValidNumber {
			// proto.Unmarshal refuses these; so must we.
			return nil, fmt.Errorf("decoding a stored tile: field number %d is out of range", num)
		}
		raw = raw[l:]
		known := num == 1 || num == 2 || num == 4 || num == 5 || num == 6
		wantType := protowire.BytesType
		if num == 2 || num == 6 {
			wantType = protowire.VarintType
		}
		if known && typ != wantType {
			return nil, fmt.Errorf("decoding a stored tile: field %d has wire type %d", num, typ)
		}
		switch num {
		case 1:
			prefix, l = protowire.ConsumeBytes(raw)
		case 2:
			var v uint64
			v, l = protowire.ConsumeVarint(raw)
			depth = int32(v)
		case 4, 5:
			var entry []byte
			if entry, l = protowire.ConsumeBytes(raw); l < 0 {
				break
			}
			key, value, err := mapEntry(entry)
			if err != nil {
				return nil, fmt.Errorf("decoding a stored tile: %w", err)
			}
			if num == 5 {
				internal = append(internal, [2][]byte{key, value})
				break
			}
			i, err := bottomIndex(key)
			if err != nil {
				return nil, fmt.Errorf("tile %x: %w", prefix, err)
			}
			if bottom[i] != nil {
				return nil, fmt.Errorf("tile %x: bottom node %d stored twice", prefix, i)
			}
			if len(value) != hashSize {
				return nil, fmt.Errorf("tile %x: bottom node %d has a %d-byte hash", prefix, i, len(value))
			}
			bottom[i] = value
			n++
		default:
			l = protowire.ConsumeFieldValue(num, typ, raw)
		}
		if l < 0 {
			return nil, fmt.Errorf("decoding a stored tile: %w", protowire.ParseError(l))
		}
		raw = raw[l:]
	}
	if depth != Height {
		return nil, fmt.Errorf("tile %x: depth %d, want %d", prefix, depth, Height)
	}
	if len(prefix) > 7 {
		return nil, fmt.Errorf("tile %x: a tile ID has at most 7 bytes", prefix)
	}
	for i := range n {
		if bottom[i] == nil {
			// n distinct nodes, so one is at n or beyond.
			return nil, fmt.Errorf("tile %x: %d bottom nodes but not node %d: the stored nodes must be the leftmost ones", prefix, n, i)
		}
	}
	t := newTile(prefix, bottom[:n])
	for _, kv := range internal {
		if err := t.checkInternal(string(kv[0]), kv[1]); err != nil {
			return nil, fmt.Errorf("tile %x: %w", prefix, err)
		}
	}
	return t, nil
}

// mapEntry reads a proto map entry: key (field 1) and value (field 2),
// both length-delimited and absent when empty.
func mapEntry(b []byte) (key, value []byte, err error) {
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return nil, nil, protowire.ParseError(l)
		}
		if num > protowire.MaxValidNumber {
			return nil, nil, fmt.Errorf("field number %d is out of range", num)
		}
		b = b[l:]
		if (num == 1 || num == 2) && typ != protowire.BytesType {
			return nil, nil, fmt.Errorf("map entry field %d has wire type %d", num, typ)
		}
		var v []byte
		if num == 1 || num == 2 {
			v, l = protowire.ConsumeBytes(b)
		} else {
			l = protowire.ConsumeFieldValue(num, typ, b)
		}
		if l < 0 {
			return nil, nil, protowire.ParseError(l)
		}
		switch num {
		case 1:
			key = v
		case 2:
			value = v
		}
		b = b[l:]
	}
	return key, value, nil
}

// FromProto decodes a tile already unmarshalled (the appender's fresh
// tiles).
func FromProto(p *storagepb.SubtreeProto) (*Tile, error) {
	if p.Depth != Height {
		return nil, fmt.Errorf("tile %x: depth %d, want %d", p.Prefix, p.Depth, Height)
	}
	if len(p.Prefix) > 7 {
		return nil, fmt.Errorf("tile %x: a tile ID has at most 7 bytes", p.Prefix)
	}
	n := len(p.Leaves)
	if n > Width {
		return nil, fmt.Errorf("tile %x: %d bottom nodes, at most %d", p.Prefix, n, Width)
	}
	bottom := make([][]byte, n)
	for key, h := range p.Leaves {
		i, err := bottomIndex([]byte(key))
		if err != nil {
			return nil, fmt.Errorf("tile %x: %w", p.Prefix, err)
		}
		if int(i) >= n {
			// n keys, all distinct and below n: exactly 0..n-1.
			return nil, fmt.Errorf("tile %x: bottom node %d of %d: the stored nodes must be the leftmost ones", p.Prefix, i, n)
		}
		if len(h) != hashSize {
			return nil, fmt.Errorf("tile %x: bottom node %d has a %d-byte hash", p.Prefix, i, len(h))
		}
		bottom[i] = h
	}
	t := newTile(p.Prefix, bottom)
	for key, h := range p.InternalNodes {
		if err := t.checkInternal(key, h); err != nil {
			return nil, fmt.Errorf("tile %x: %w", p.Prefix, err)
		}
	}
	return t, nil
}

// newTile builds a tile from its bottom nodes (left-dense, 32 bytes each),
// computing every complete node above them.
func newTile(id []byte, bottom [][]byte) *Tile {
	n := len(bottom)
	t := &Tile{id: append([]byte{}, id...), bottom: n}
	total := 0
	for k := range Height {
		t.start[k] = total
		total += n >> k
	}
	t.hashes = make([]byte, total*hashSize)
	for i, h := range bottom {
		copy(t.hashes[i*hashSize:], h)
	}
	for k := 1; k < Height; k++ {
		for j := range n >> k {
			l := t.node(uint(k-1), uint64(2*j))
			r := t.node(uint(k-1), uint64(2*j+1))
			hashChildren(t.hashes[(t.start[k]+j)*hashSize:], l, r)
		}
	}
	return t
}

// hashChildren writes RFC 6962's hash of an internal node, SHA-256(0x01 ||
// left || right), to dst without allocating (rfc6962.DefaultHasher makes a
// hash state per node, and a tile has up to 255 of them).
func hashChildren(dst, left, right []byte) {
	var buf [1 + 2*hashSize]byte
	buf[0] = 1
	copy(buf[1:], left)
	copy(buf[1+hashSize:], right)
	sum := sha256.Sum256(buf[:])
	copy(dst, sum[:])
}

// checkInternal checks a stored internal node against the recomputed one.
// A partial tile stores its internal nodes, which Trillian reads instead of
// recomputing them: they must be the ones recomputed, or Trillian and Signet
// would serve different proofs from one database.
func (t *Tile) checkInternal(key string, h []byte) error {
	level, index, err := internalPosition(key)
	if err != nil {
		return err
	}
	if got := t.node(level, index); got == nil || !bytes.Equal(got, h) {
		return fmt.Errorf("stored internal node %d.%d is not the hash of the %d bottom nodes below it", level, index, 1<<level)
	}
	return nil
}

// internalPosition reads the key of an internal node in a stored tile: the
// base64 of the suffix's length in bits (Height - level) and the node's
// local index shifted to the top of the byte.
func internalPosition(key string) (level uint, index uint64, err error) {
	b, err := base64.StdEncoding.Strict().DecodeString(key)
	if err != nil || len(b) != 2 || b[0] < 1 || b[0] >= Height {
		return 0, 0, fmt.Errorf("internal node key %q is not a suffix of 1 to %d bits", key, Height-1)
	}
	level = Height - uint(b[0])
	if b[1]&(1<<level-1) != 0 {
		return 0, 0, fmt.Errorf("internal node key %q has bits beyond its length", key)
	}
	return level, uint64(b[1] >> level), nil
}

// bottomIndex reads the key of a bottom node in a stored tile: the base64
// of a byte giving the suffix's length in bits (Height for a bottom node)
// and the node's local index. Strict decoding makes the key canonical, so
// distinct keys are distinct nodes.
func bottomIndex(key []byte) (byte, error) {
	var b [3]byte
	if len(key) != 4 {
		return 0, fmt.Errorf("bottom node key %q is not a %d-bit suffix", key, Height)
	}
	n, err := base64.StdEncoding.Strict().Decode(b[:], key)
	if err != nil || n != 2 || b[0] != Height {
		return 0, fmt.Errorf("bottom node key %q is not a %d-bit suffix", key, Height)
	}
	return b[1], nil
}

// node returns a node by its local position, nil if the tile lacks it.
func (t *Tile) node(level uint, index uint64) []byte {
	if level < t.low || level >= Height || index >= uint64(t.bottom>>level) {
		return nil
	}
	at := (t.start[level] + int(index)) * hashSize
	return t.hashes[at : at+hashSize : at+hashSize]
}

// Bottom returns the hashes of the tile's first n bottom nodes,
// concatenated (a tlog-tiles tile), or nil when it holds fewer of them or
// was compacted.
func (t *Tile) Bottom(n int) []byte {
	if t.low != 0 || n > t.bottom {
		return nil
	}
	return t.hashes[t.start[0]*hashSize : (t.start[0]+n)*hashSize]
}

// compacted is t as the cache keeps it: a complete tile of the bottom
// stratum without its levels below GroupLevel; any other tile as it is.
func (t *Tile) compacted() *Tile {
	if t.low > 0 || t.bottom != Width || len(t.id) != 7 {
		return t
	}
	c := &Tile{id: t.id, bottom: t.bottom, low: GroupLevel}
	off := t.start[GroupLevel]
	c.hashes = append([]byte(nil), t.hashes[off*hashSize:]...)
	for k := GroupLevel; k < Height; k++ {
		c.start[k] = t.start[k] - off
	}
	return c
}

// bytes is what the tile costs the cache.
func (t *Tile) bytes() int64 { return int64(len(t.hashes)+len(t.id)) + 96 }

// Fetch reads stored tiles of one tree by ID, as stored; tiles not stored
// are left out.
type Fetch func(ctx context.Context, ids [][]byte) ([][]byte, error)

// Leaves reads leaf hashes by group of GroupSize (group g: leaves
// g*GroupSize to g*GroupSize+GroupSize-1), each group's hashes
// concatenated; groups not wholly stored are left out.
type Leaves func(ctx context.Context, groups []uint64) (map[uint64][]byte, error)

// Reader serves node hashes and proofs of one tree from its tiles.
type Reader struct {
	Tree  int64
	Cache *Cache
	Fetch Fetch
	// Leaves serves the nodes of compacted tiles below GroupLevel; nil,
	// such a node (outside a group given to InclusionWith) reads its whole
	// tile again.
	Leaves Leaves
	// known is a group already read (InclusionWith).
	known *knownGroup
}

type knownGroup struct {
	group  uint64
	hashes []byte
}

// Nodes returns the hashes of nodes, which must be complete in the stored
// tree, reading the tiles the cache lacks (or holds in a version older than
// the node) in one Fetch.
func (r Reader) Nodes(ctx context.Context, nodes []compact.NodeID) ([][]byte, error) {
	out := make([][]byte, len(nodes))
	var want [][]byte
	// fromLeaves are the nodes to recompute from their leaves: below
	// GroupLevel in a compacted tile.
	var fromLeaves []int
	// looked holds each tile looked up, nil if the cache lacks it (or
	// lacks a node of it: then it is read again).
	looked := map[string]*Tile{}
	for i, n := range nodes {
		id := ID(n)
		t, seen := looked[string(id)]
		if !seen {
			t = r.Cache.get(r.Tree, id)
			looked[string(id)] = t
		}
		if t != nil {
			level, index := local(n)
			if out[i] = t.node(level, index); out[i] != nil {
				continue
			}
			if level < t.low && (r.Leaves != nil || r.known != nil && r.known.group == n.Index<<n.Level>>GroupLevel) {
				fromLeaves = append(fromLeaves, i)
				continue
			}
			looked[string(id)] = nil
		}
		if !slices.ContainsFunc(want, func(w []byte) bool { return bytes.Equal(w, id) }) {
			want = append(want, id)
		}
	}
	hits := 0
	for _, t := range looked {
		if t != nil {
			hits++
		}
	}
	r.Cache.hits.Add(float64(hits))
	if len(want) > 0 {
		if err := r.read(ctx, want, nodes, out); err != nil {
			return nil, err
		}
	}
	if len(fromLeaves) > 0 {
		if err := r.nodesFromLeaves(ctx, nodes, fromLeaves, looked, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// read reads the tiles want in one Fetch, caches them and fills in the
// nodes of out they hold.
func (r Reader) read(ctx context.Context, want [][]byte, nodes []compact.NodeID, out [][]byte) error {
	r.Cache.misses.Add(float64(len(want)))
	raws, err := r.Fetch(ctx, want)
	if err != nil {
		return fmt.Errorf("reading %d tiles of tree %d: %w", len(want), r.Tree, err)
	}
	read := make(map[string]*Tile, len(raws))
	for _, raw := range raws {
		t, err := Decode(raw)
		if err != nil {
			return fmt.Errorf("tree %d: %w", r.Tree, err)
		}
		read[string(t.id)] = t
		r.Cache.Put(r.Tree, t)
	}
	for i, n := range nodes {
		if out[i] != nil {
			continue
		}
		id := ID(n)
		t, ok := read[string(id)]
		if !ok {
			if slices.ContainsFunc(want, func(w []byte) bool { return bytes.Equal(w, id) }) {
				return fmt.Errorf("tree %d: node %d.%d: tile %x is not stored", r.Tree, n.Level, n.Index, id)
			}
			continue // in a compacted tile: recomputed from its leaves
		}
		if out[i] = t.node(local(n)); out[i] == nil {
			return fmt.Errorf("tree %d: node %d.%d: tile %x holds %d bottom nodes, not this one", r.Tree, n.Level, n.Index, id, t.bottom)
		}
	}
	return nil
}

// nodesFromLeaves recomputes the nodes which of out, below GroupLevel in
// compacted tiles (in tiles), from their groups' leaf hashes. Each group
// must hash to the tile's node above it: a leaf table that disagrees with
// the tiles is an error, never a wrong proof.
func (r Reader) nodesFromLeaves(ctx context.Context, nodes []compact.NodeID, which []int, tiles map[string]*Tile, out [][]byte) error {
	groupOf := func(n compact.NodeID) uint64 { return n.Index << n.Level >> GroupLevel }
	var groups, missing []uint64
	for _, i := range which {
		if g := groupOf(nodes[i]); !slices.Contains(groups, g) {
			groups = append(groups, g)
			if r.known == nil || r.known.group != g {
				missing = append(missing, g)
			}
		}
	}
	leaves := map[uint64][]byte{}
	if r.known != nil {
		leaves[r.known.group] = r.known.hashes
	}
	if len(missing) > 0 {
		// Nodes sends a node here without Leaves only from the known group.
		r.Cache.groups.Add(float64(len(missing)))
		read, err := r.Leaves(ctx, missing)
		if err != nil {
			return fmt.Errorf("reading %d groups of leaves of tree %d: %w", len(missing), r.Tree, err)
		}
		for g, hashes := range read {
			leaves[g] = hashes
		}
	}
	subtrees := make(map[uint64]*Tile, len(groups))
	for _, g := range groups {
		hashes := leaves[g]
		first := g * GroupSize
		if len(hashes) != GroupSize*hashSize {
			return fmt.Errorf("tree %d: leaves %d to %d are not all stored", r.Tree, first, first+GroupSize-1)
		}
		bottom := make([][]byte, GroupSize)
		for k := range bottom {
			bottom[k] = hashes[k*hashSize : (k+1)*hashSize]
		}
		sub := newTile(nil, bottom)
		above := compact.NewNodeID(GroupLevel, g)
		if t := tiles[string(ID(above))]; t == nil || !bytes.Equal(t.node(local(above)), sub.node(GroupLevel, 0)) {
			return fmt.Errorf("tree %d: leaves %d to %d do not hash to node %d.%d of the stored tiles: storage is inconsistent", r.Tree, first, first+GroupSize-1, GroupLevel, g)
		}
		subtrees[g] = sub
	}
	for _, i := range which {
		n := nodes[i]
		out[i] = subtrees[groupOf(n)].node(n.Level, n.Index&(1<<(GroupLevel-n.Level)-1))
	}
	return nil
}

// Inclusion proves leaf index in the tree of the given size.
func (r Reader) Inclusion(ctx context.Context, index, size uint64) ([][]byte, error) {
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, err
	}
	return r.rehash(ctx, nodes)
}

// InclusionWith is Inclusion given the hashes of the leaf's group (its
// GroupSize-aligned group, concatenated), read with the leaf: a proof needs
// the lowest nodes of that group only, so a compacted tile costs it no read.
// A group not complete (at the tree's right edge) is not used.
func (r Reader) InclusionWith(ctx context.Context, index, size uint64, group []byte) ([][]byte, error) {
	if len(group) == GroupSize*hashSize {
		r.known = &knownGroup{group: index / GroupSize, hashes: group}
	}
	return r.Inclusion(ctx, index, size)
}

// Consistency proves that the tree of size from is a prefix of the one of
// size to (0 < from <= to).
func (r Reader) Consistency(ctx context.Context, from, to uint64) ([][]byte, error) {
	nodes, err := proof.Consistency(from, to)
	if err != nil {
		return nil, err
	}
	return r.rehash(ctx, nodes)
}

func (r Reader) rehash(ctx context.Context, nodes proof.Nodes) ([][]byte, error) {
	hashes, err := r.Nodes(ctx, nodes.IDs)
	if err != nil {
		return nil, err
	}
	return nodes.Rehash(hashes, rfc6962.DefaultHasher.HashChildren)
}

// Border returns the tree's right border at size, the compact range from
// which appending continues and the root is computed.
func (r Reader) Border(ctx context.Context, size uint64) (*compact.Range, error) {
	hashes, err := r.Nodes(ctx, compact.RangeNodes(0, size, nil))
	if err != nil {
		return nil, fmt.Errorf("reading the right border at size %d: %w", size, err)
	}
	return (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewRange(0, size, hashes)
}
