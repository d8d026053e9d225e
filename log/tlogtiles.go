package log

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/transparency-dev/merkle/compact"

	"github.com/signet-dev/signet/log/pgstore"
	"github.com/signet-dev/signet/log/tiles"
)

// TileWidth is the number of hashes in a full C2SP tlog-tiles tile and of
// entries in a full entry bundle. The stored tiles have the same height
// (tiles.Height = 8), so tlog tile (level L, index N) is the bottom row of
// stored tile N of stratum L: it is read, never recomputed.
const TileWidth = 1 << tiles.Height

// ErrNoTile is a tile or entry bundle the published tree does not have
// (yet): beyond its size, or a width it cannot fill.
var ErrNoTile = errors.New("no such tile in the published tree")

// TileHashes returns tlog-tiles hash tile (level, index) of width hashes,
// concatenated: the nodes at tree level 8*level with indexes index*256 to
// index*256+width-1, each of which must be complete in the published tree.
// A full tile has width TileWidth; a partial one exists only at the tree's
// right edge, and any narrower prefix of a tile is the same bytes.
func (t *Tree) TileHashes(ctx context.Context, level, index uint64, width int) ([]byte, error) {
	// level is compared before it is multiplied: a level from a request
	// path could wrap 8*level around to a small one.
	if width < 1 || width > TileWidth || level >= 64/tiles.Height {
		return nil, ErrNoTile
	}
	// The smallest tree the tile is complete in (none if that overflows:
	// no tree has the tile).
	shift := level * tiles.Height
	var need uint64
	if index < (math.MaxUint64>>shift-TileWidth)/TileWidth {
		need = (index*TileWidth + uint64(width)) << shift
	}
	root, err := t.atLeast(ctx, need)
	if err != nil {
		return nil, err
	}
	// Nodes complete at this level: size / 2^(8*level).
	complete := root.Size >> (level * tiles.Height)
	// index*TileWidth cannot overflow once index <= complete/TileWidth.
	if index > complete/TileWidth || index*TileWidth+uint64(width) > complete {
		return nil, ErrNoTile
	}
	// The stored tile N of stratum L holds these nodes as its bottom row:
	// one row read (gathered with other readers'), one decode. Not cached:
	// a tile is read once per cache in front of the server.
	id := tiles.ID(compact.NewNodeID(uint(level*tiles.Height), index*TileWidth))
	raw, err := t.fetchTiles(ctx, [][]byte{id})
	if err != nil {
		return nil, fmt.Errorf("log %s: reading tile %d/%d: %w", t.name, level, index, err)
	}
	if len(raw) == 1 {
		tile, err := tiles.Decode(raw[0])
		if err != nil {
			return nil, fmt.Errorf("log %s: tile %d/%d: %w", t.name, level, index, err)
		}
		if row := tile.Bottom(width); row != nil {
			return bytes.Clone(row), nil
		}
	}
	return nil, fmt.Errorf("log %s: the stored tile %d/%d lacks %d complete nodes at size %d", t.name, level, index, width, root.Size)
}

// MaxBundleEntry is the longest entry an entry bundle can carry: each is
// prefixed with its length as a big-endian uint16.
const MaxBundleEntry = 1<<16 - 1

// TooLongError is an entry bundle holding an entry longer than
// MaxBundleEntry: it cannot be written as tlog-tiles, whose framing is
// fixed; the entry is read through the personality's API instead.
type TooLongError struct {
	Index, Bytes uint64
}

func (e *TooLongError) Error() string {
	return fmt.Sprintf("entry %d is %d bytes, more than an entry bundle can carry (%d)", e.Index, e.Bytes, MaxBundleEntry)
}

// EntryBundle returns the values of leaves index*256 to index*256+width-1,
// all integrated in the published tree; a *TooLongError if one of them is
// longer than MaxBundleEntry (no value is read then).
func (t *Tree) EntryBundle(ctx context.Context, index uint64, width int) ([][]byte, error) {
	root, err := t.atLeast(ctx, index*TileWidth+uint64(width))
	if err != nil {
		return nil, err
	}
	if width < 1 || width > TileWidth || index > root.Size/TileWidth || index*TileWidth+uint64(width) > root.Size {
		return nil, ErrNoTile
	}
	values, err := t.store.ValuesInRange(ctx, index*TileWidth, uint64(width), MaxBundleEntry)
	var long *pgstore.TooLong
	if errors.As(err, &long) {
		return nil, &TooLongError{Index: long.Index, Bytes: long.Bytes}
	}
	if err != nil {
		return nil, fmt.Errorf("log %s: reading entry bundle %d: %w", t.name, index, err)
	}
	if len(values) != width {
		return nil, fmt.Errorf("log %s: entry bundle %d: %d of %d leaves stored", t.name, index, len(values), width)
	}
	return values, nil
}
