// Package integrate computes what appending leaves does to a tree stored as
// Trillian's log tiles: the nodes the new leaves complete and the new root
// (from the tree's right border), the tiles that hold those nodes, which of
// them storage cannot hold yet, and the tiles to write, in Trillian's
// format. It is pure: no storage and no state. The log's pipeline reads the
// tiles a batch needs, calls it, and writes what it returns in the batch's
// transaction.
package integrate

import (
	"fmt"
	"math/bits"
	"slices"

	"github.com/google/trillian/storage/cache"
	"github.com/google/trillian/storage/storagepb"
	"github.com/google/trillian/storage/tree"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"google.golang.org/protobuf/proto"

	"github.com/signet-dev/signet/log/tiles"
)

var factory = &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

// Batch is what appending leaves at a tree's right border makes.
type Batch struct {
	// Nodes are every new leaf and every complete subtree the leaves
	// finish: what Trillian's sequencer would store.
	Nodes []tree.Node
	// Root is the root hash of the tree with the leaves appended, and
	// Border its right border.
	Root   []byte
	Border *compact.Range
}

// Append appends leaf hashes to the tree whose right border is border
// (which it leaves as it was).
func Append(border *compact.Range, leafHashes [][]byte) (Batch, error) {
	// A copy: appending to a range reuses its slice of hashes.
	cr, err := factory.NewRange(border.Begin(), border.End(), slices.Clone(border.Hashes()))
	if err != nil {
		return Batch{}, fmt.Errorf("the tree's right border at size %d: %w", border.End(), err)
	}
	var b Batch
	for _, h := range leafHashes {
		if err := cr.Append(h, func(id compact.NodeID, hash []byte) {
			b.Nodes = append(b.Nodes, tree.Node{ID: id, Hash: hash})
		}); err != nil {
			return Batch{}, err
		}
	}
	if b.Root, err = cr.GetRootHash(nil); err != nil {
		return Batch{}, err
	}
	b.Border = cr
	return b, nil
}

// TileIDs names the tiles that hold nodes, each once, in the order first
// met.
func TileIDs(nodes []tree.Node) [][]byte {
	var ids [][]byte
	seen := map[string]bool{}
	for _, n := range nodes {
		id := tiles.ID(n.ID)
		if !seen[string(id)] {
			seen[string(id)] = true
			ids = append(ids, id)
		}
	}
	return ids
}

// Unstored names the tiles holding nodes that storage cannot hold yet at
// tree size. A tile's first stored node is its bottom-left one, stored once
// the tree covers it; so a batch that starts a tile need not read storage
// for it.
func Unstored(nodes []tree.Node, size uint64) map[string]bool {
	out := map[string]bool{}
	for _, n := range nodes {
		stratum := n.ID.Level / tiles.Height
		index := n.ID.Index >> (tiles.Height - n.ID.Level%tiles.Height)
		// The tile's bottom-left node covers leaves from
		// (Width index) << (Height stratum) and is stored once the tree
		// has one leaf more (an overflow counts as stored: the batch then
		// reads the tile).
		shift := tiles.Height * stratum
		hi, first := bits.Mul64(tiles.Width*index+1, 1<<shift)
		if hi != 0 || size >= first {
			continue
		}
		out[string(tiles.ID(compact.NewNodeID(shift, tiles.Width*index)))] = true
	}
	return out
}

// Written are the tiles a batch writes: the tiles themselves (for the tile
// caches), their IDs and encodings.
type Written struct {
	Tiles      []*storagepb.SubtreeProto
	IDs, Blobs [][]byte
}

// UpdateTiles puts nodes into their tiles with Trillian's own tile code, so
// the tiles are in its format. stored holds the stored versions of the
// tiles (absent: not stored yet), which it updates in place.
func UpdateTiles(nodes []tree.Node, stored map[string]*storagepb.SubtreeProto) (Written, error) {
	c := cache.NewLogSubtreeCache(rfc6962.DefaultHasher)
	if err := c.SetNodes(nodes, func(ids [][]byte) ([]*storagepb.SubtreeProto, error) {
		var out []*storagepb.SubtreeProto
		for _, id := range ids {
			if t, ok := stored[string(id)]; ok {
				out = append(out, t)
			}
		}
		return out, nil
	}); err != nil {
		return Written{}, fmt.Errorf("updating the tree's tiles: %w", err)
	}
	updated, err := c.UpdatedTiles()
	if err != nil {
		return Written{}, fmt.Errorf("updating the tree's tiles: %w", err)
	}
	w := Written{Tiles: updated, IDs: make([][]byte, len(updated)), Blobs: make([][]byte, len(updated))}
	for i, t := range updated {
		if w.Blobs[i], err = proto.Marshal(t); err != nil {
			return Written{}, fmt.Errorf("encoding tile %x: %w", t.Prefix, err)
		}
		w.IDs[i] = t.Prefix
	}
	return w, nil
}

// Unmarshal decodes a stored tile for UpdateTiles.
func Unmarshal(raw []byte) (*storagepb.SubtreeProto, error) {
	var t storagepb.SubtreeProto
	if err := proto.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("decoding a stored tile: %w", err)
	}
	if t.Prefix == nil {
		t.Prefix = []byte{}
	}
	return &t, nil
}
