package log

import (
	"bytes"
	"context"
	"crypto"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/signet-dev/signet/log/note"
	"github.com/signet-dev/signet/log/pgstore"
	"github.com/signet-dev/signet/log/tiles"
)

// Tree is one Merkle tree, read-only: the root readers may see, leaves,
// proofs and checkpoints. A log's current tree is extended by the log's
// appender, which publishes each root once the hook has taken its leaves,
// so a reader never sees an entry before its records exist; a tree retired
// by a key rotation is frozen at its final stored checkpoint. Leaves come
// from the storage driver with the personality's sidecar, and proofs from
// the tree's tiles through the shared tile cache (package tiles).
type Tree struct {
	name   string // the log's, for messages
	store  *pgstore.Tree
	pub    crypto.PublicKey
	offset uint64
	origin string
	// proven is how leaves are read to be proven: with the group of leaf
	// hashes their proof's lowest nodes come from, and the personality's
	// sidecar if it has one.
	proven pgstore.With
	// reader proves from the tree's tiles, its misses gathered with other
	// readers' (tileReads).
	reader tiles.Reader
	// root is the root readers see.
	root atomic.Pointer[Root]

	// signer signs the current tree's checkpoints; a frozen tree has only
	// its final one.
	signer note.Signer
	frozen *frozenTree
	// follower, set by Follow, refreshes root from the database when a
	// read needs a newer one; nil, the appender publishes it.
	follower *follower
	mu       sync.Mutex
	// checkpoints are the latest signed, newest last: answers to a batch
	// still being written ask for theirs while the next batch signs its own.
	checkpoints []cachedCheckpoint

	// leafReads and tileReads gather concurrent reads into shared queries
	// until stop; nil, each read is a query of its own.
	leafReads  *gatherer[[]Leaf]
	indexReads *gatherer[[]Leaf]
	tileReads  *gatherer[[]byte]
	groupReads *gatherer[[]byte]
	stop       <-chan struct{}
}

type frozenTree struct {
	root Root
	note string
}

type cachedCheckpoint struct {
	size uint64
	hash string
	note string
}

func newTree(cfg Config, st *pgstore.Tree, pub crypto.PublicKey, offset uint64, origin string) *Tree {
	t := &Tree{name: cfg.Name, store: st, pub: pub, offset: offset, origin: origin,
		proven: pgstore.With{Sidecar: cfg.Hook != nil, Group: tiles.GroupSize}}
	t.reader = tiles.Reader{Tree: st.ID(), Cache: cfg.Tiles, Fetch: t.fetchTiles, Leaves: t.leafGroups}
	return t
}

// gatherReads gathers concurrent reads by hash and tile misses into shared
// queries until stop is closed.
func (t *Tree) gatherReads(stop <-chan struct{}) {
	t.stop = stop
	t.leafReads = newGatherer(readers, stop, t.leavesByHashes)
	t.indexReads = newGatherer(readers, stop, t.leavesAt)
	t.tileReads = newGatherer(readers, stop, t.store.Tiles)
	t.groupReads = newGatherer(readers, stop, func(ctx context.Context, keys [][]byte) (map[string][]byte, error) {
		groups := make([]uint64, len(keys))
		for i, k := range keys {
			groups[i] = binary.BigEndian.Uint64(k)
		}
		found, err := t.store.LeafGroups(ctx, groups, tiles.GroupSize)
		out := make(map[string][]byte, len(found))
		for g, hashes := range found {
			out[string(binary.BigEndian.AppendUint64(nil, g))] = hashes
		}
		return out, err
	})
}

// waitReads returns once the gatherers have stopped.
func (t *Tree) waitReads() {
	if t.leafReads != nil {
		t.leafReads.wait()
		t.indexReads.wait()
		t.tileReads.wait()
		t.groupReads.wait()
	}
}

// TreeID is the Trillian tree behind this tree.
func (t *Tree) TreeID() int64 { return t.store.ID() }

// Offset is where this tree starts in the log's index space: the entries of
// the trees retired before it.
func (t *Tree) Offset() uint64 { return t.offset }

// PublicKey is the key that signs (or signed) this tree's checkpoints.
func (t *Tree) PublicKey() crypto.PublicKey { return t.pub }

// Origin is the first line of the tree's checkpoints.
func (t *Tree) Origin() string { return t.origin }

// SignerName is the name on the tree's checkpoint signature lines.
func (t *Tree) SignerName() string { return t.signer.Name }

// CreatedAt is when the tree was created: the start of its key's validity
// in the trust root.
func (t *Tree) CreatedAt() time.Time { return t.store.CreatedAt() }

// publish makes root the one readers see.
func (t *Tree) publish(root Root) { t.root.Store(&root) }

// published is the root readers see, nil before the first.
func (t *Tree) published() *Root { return t.root.Load() }

// Latest returns the newest root readers may see: the one the pipeline
// last published, a frozen tree's final one.
// A followed tree's root is read from the database first (Follow).
func (t *Tree) Latest(ctx context.Context) (Root, error) {
	if t.follower != nil {
		if err := t.follower.refresh(ctx, t); err != nil {
			return Root{}, err
		}
	}
	if r := t.published(); r != nil {
		return *r, nil
	}
	return Root{}, fmt.Errorf("log %s: no root published yet", t.name)
}

// atLeast is the root to read leaves below size from: the published one,
// which a followed tree refreshes only if it is smaller (an entry another
// replica acknowledged since), so reads of what it already has cost no
// query more.
func (t *Tree) atLeast(ctx context.Context, size uint64) (Root, error) {
	if r := t.published(); r != nil && (r.Size >= size || t.follower == nil) {
		return *r, nil
	}
	return t.Latest(ctx)
}

// Checkpoint signs (or returns the cached signature of) a root; a frozen
// tree has only its final checkpoint.
func (t *Tree) Checkpoint(root Root) (string, error) {
	if t.frozen != nil {
		if root.Size != t.frozen.root.Size || !bytes.Equal(root.Hash, t.frozen.root.Hash) {
			return "", fmt.Errorf("log %s: tree %d is frozen at size %d; no checkpoint for size %d", t.name, t.TreeID(), t.frozen.root.Size, root.Size)
		}
		return t.frozen.note, nil
	}
	key := string(root.Hash)
	t.mu.Lock()
	for _, c := range t.checkpoints {
		if c.size == root.Size && c.hash == key {
			t.mu.Unlock()
			return c.note, nil
		}
	}
	t.mu.Unlock()
	signed, err := note.Sign(note.Checkpoint{Origin: t.origin, Size: root.Size, RootHash: root.Hash}, t.signer)
	if err != nil {
		return "", err
	}
	t.remember(root, signed)
	return signed, nil
}

// remember keeps signed as root's checkpoint, among the few newest.
func (t *Tree) remember(root Root, signed string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(t.checkpoints)
	if n > 0 && root.Size < t.checkpoints[n-1].size {
		return
	}
	if n > 0 && root.Size == t.checkpoints[n-1].size && string(root.Hash) == t.checkpoints[n-1].hash {
		return // already the newest
	}
	const kept = 4
	if n == kept {
		t.checkpoints = append(t.checkpoints[:0], t.checkpoints[1:]...)
	}
	t.checkpoints = append(t.checkpoints, cachedCheckpoint{size: root.Size, hash: string(root.Hash), note: signed})
}

// Proven is a leaf with its inclusion proof at a root.
type Proven struct {
	Leaf  Leaf
	Root  Root
	Proof [][]byte
}

// LeavesByRange returns up to count integrated leaves from start.
func (t *Tree) LeavesByRange(ctx context.Context, start, count uint64) ([]Leaf, error) {
	root, err := t.atLeast(ctx, start+count)
	if err != nil || start >= root.Size {
		return nil, err
	}
	return t.store.LeavesInRange(ctx, start, min(count, root.Size-start), pgstore.With{})
}

// ErrBadRange is a consistency proof request the tree cannot answer.
type ErrBadRange struct{ Msg string }

func (e *ErrBadRange) Error() string { return e.Msg }

// ConsistencyProof proves that the tree at size from is a prefix of the
// tree at size to; it returns the latest root too.
func (t *Tree) ConsistencyProof(ctx context.Context, from, to uint64) ([][]byte, Root, error) {
	root, err := t.atLeast(ctx, to)
	if err == nil {
		err = checkConsistencyRange(from, to, root.Size)
	}
	if err != nil || from == 0 || from == to {
		return nil, root, err
	}
	hashes, err := t.reader.Consistency(ctx, from, to)
	if err != nil {
		return nil, root, fmt.Errorf("log %s: proving size %d consistent with %d: %w", t.name, from, to, err)
	}
	return hashes, root, nil
}

func checkConsistencyRange(from, to, size uint64) error {
	if to > size {
		return &ErrBadRange{Msg: fmt.Sprintf("the tree size requested(%d) was greater than what is currently observable(%d)", to, size)}
	}
	if from > to {
		return &ErrBadRange{Msg: fmt.Sprintf("firstSize(%d) must be less than lastSize(%d)", from, to)}
	}
	return nil
}

// ProveInclusion finds a leaf by hash and proves it in the tree of the given
// size (0: the latest).
func (t *Tree) ProveInclusion(ctx context.Context, leafHash []byte, size uint64) (uint64, [][]byte, Root, error) {
	root, err := t.atLeast(ctx, size)
	if size == 0 {
		root, err = t.Latest(ctx)
	}
	if err != nil {
		return 0, nil, Root{}, err
	}
	if size == 0 {
		size = root.Size
	}
	if size > root.Size {
		return 0, nil, root, &ErrBadRange{Msg: fmt.Sprintf("tree size %d is beyond the current size %d", size, root.Size)}
	}
	leaves, err := t.store.LeavesByHash(ctx, [][]byte{leafHash}, pgstore.With{Group: tiles.GroupSize})
	if err != nil {
		return 0, nil, root, fmt.Errorf("log %s: %w", t.name, err)
	}
	for _, lf := range leaves {
		if lf.Index < size {
			hashes, err := t.reader.InclusionWith(ctx, lf.Index, size, lf.Group)
			if err != nil {
				return 0, nil, root, fmt.Errorf("log %s: proving leaf %d at size %d: %w", t.name, lf.Index, size, err)
			}
			return lf.Index, hashes, root, nil
		}
	}
	return 0, nil, root, ErrNotFound
}

// ProveIndex proves the leaf at index in the tree of the given size.
func (t *Tree) ProveIndex(ctx context.Context, index, size uint64) (Leaf, [][]byte, error) {
	root, err := t.atLeast(ctx, size)
	if err != nil {
		return Leaf{}, nil, err
	}
	if size > root.Size || index >= size {
		return Leaf{}, nil, &ErrBadRange{Msg: fmt.Sprintf("leaf %d is not in a tree of size %d (current size %d)", index, size, root.Size)}
	}
	leaves, err := t.store.LeavesInRange(ctx, index, 1, pgstore.With{Group: tiles.GroupSize})
	if err != nil {
		return Leaf{}, nil, fmt.Errorf("log %s: %w", t.name, err)
	}
	if len(leaves) != 1 {
		return Leaf{}, nil, ErrNotFound
	}
	hashes, err := t.reader.InclusionWith(ctx, index, size, leaves[0].Group)
	if err != nil {
		return Leaf{}, nil, fmt.Errorf("log %s: proving leaf %d at size %d: %w", t.name, index, size, err)
	}
	leaves[0].Group = nil
	return leaves[0], hashes, nil
}

// fetchTiles reads stored tiles of the tree by ID; a proof's miss (one
// tile, most often) is gathered with other readers'.
func (t *Tree) fetchTiles(ctx context.Context, ids [][]byte) ([][]byte, error) {
	if len(ids) == 1 && t.tileReads != nil {
		raw, err := t.tileReads.get(ctx, t.stop, ids[0])
		if err != nil || raw == nil {
			return nil, err
		}
		return [][]byte{raw}, nil
	}
	return fetchTilesDirect(ctx, t.store, ids)
}

// leafGroups reads groups of leaf hashes for the lowest nodes of compacted
// tiles; a proof's one group is gathered with other readers'.
func (t *Tree) leafGroups(ctx context.Context, groups []uint64) (map[uint64][]byte, error) {
	if len(groups) == 1 && t.groupReads != nil {
		hashes, err := t.groupReads.get(ctx, t.stop, binary.BigEndian.AppendUint64(nil, groups[0]))
		if err != nil || hashes == nil {
			return nil, err
		}
		return map[uint64][]byte{groups[0]: hashes}, nil
	}
	return t.store.LeafGroups(ctx, groups, tiles.GroupSize)
}

// fetchTilesDirect reads stored tiles of st by ID in a query of its own.
func fetchTilesDirect(ctx context.Context, st *pgstore.Tree, ids [][]byte) ([][]byte, error) {
	byID, err := st.Tiles(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, 0, len(byID))
	for _, raw := range byID {
		out = append(out, raw)
	}
	return out, nil
}

// prove proves leaves at root with r, dropping those beyond it.
func (t *Tree) prove(ctx context.Context, r tiles.Reader, leaves []Leaf, root Root) ([]Proven, error) {
	var out []Proven
	for _, lf := range leaves {
		if lf.Index >= root.Size {
			continue
		}
		p, err := r.InclusionWith(ctx, lf.Index, root.Size, lf.Group)
		if err != nil {
			return nil, fmt.Errorf("log %s: proving leaf %d at size %d: %w", t.name, lf.Index, root.Size, err)
		}
		lf.Group = nil // served its purpose; answers do not carry it
		out = append(out, Proven{Leaf: lf, Root: root, Proof: p})
	}
	return out, nil
}

// ByHash returns the leaves with these RFC 6962 leaf hashes, with proofs at
// the latest root; hashes not in the tree are skipped.
func (t *Tree) ByHash(ctx context.Context, hashes [][]byte) ([]Proven, error) {
	root, err := t.atLeast(ctx, 0)
	if err != nil {
		return nil, err
	}
	var leaves []Leaf
	if len(hashes) == 1 && t.leafReads != nil {
		leaves, err = t.leafReads.get(ctx, t.stop, hashes[0])
	} else {
		leaves, err = t.store.LeavesByHash(ctx, hashes, t.proven)
	}
	if err != nil {
		return nil, fmt.Errorf("log %s: %w", t.name, err)
	}
	// A followed tree may have read a leaf integrated after its root.
	for _, lf := range leaves {
		if lf.Index >= root.Size {
			if root, err = t.atLeast(ctx, lf.Index+1); err != nil {
				return nil, err
			}
		}
	}
	return t.prove(ctx, t.reader, leaves, root)
}

// leavesByHashes reads leaves by hash for the gatherer.
func (t *Tree) leavesByHashes(ctx context.Context, hashes [][]byte) (map[string][]Leaf, error) {
	leaves, err := t.store.LeavesByHash(ctx, hashes, t.proven)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]Leaf, len(leaves))
	for _, lf := range leaves {
		out[string(lf.Hash)] = append(out[string(lf.Hash)], lf)
	}
	return out, nil
}

// leavesAt reads leaves by index (8 bytes, big-endian) for the gatherer.
func (t *Tree) leavesAt(ctx context.Context, keys [][]byte) (map[string][]Leaf, error) {
	indexes := make([]int64, len(keys))
	for i, k := range keys {
		indexes[i] = int64(binary.BigEndian.Uint64(k))
	}
	leaves, err := t.store.LeavesAt(ctx, indexes, t.proven)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]Leaf, len(leaves))
	for _, lf := range leaves {
		out[string(binary.BigEndian.AppendUint64(nil, lf.Index))] = []Leaf{lf}
	}
	return out, nil
}

// ByIndex returns the leaf at index with its proof at the latest root.
func (t *Tree) ByIndex(ctx context.Context, index uint64) (Proven, error) {
	root, err := t.atLeast(ctx, index+1)
	if err != nil {
		return Proven{}, err
	}
	if index >= root.Size {
		return Proven{}, ErrNotFound
	}
	var leaves []Leaf
	if t.indexReads != nil {
		leaves, err = t.indexReads.get(ctx, t.stop, binary.BigEndian.AppendUint64(nil, index))
	} else {
		leaves, err = t.store.LeavesInRange(ctx, index, 1, t.proven)
	}
	if err != nil {
		return Proven{}, fmt.Errorf("log %s: %w", t.name, err)
	}
	proven, err := t.prove(ctx, t.reader, leaves, root)
	if err != nil {
		return Proven{}, err
	}
	if len(proven) != 1 {
		return Proven{}, ErrNotFound
	}
	return proven[0], nil
}

// StoreWitnessed keeps the tree's checkpoint of size with its witnesses'
// cosignatures, unless a larger one is kept (then it says false).
func (t *Tree) StoreWitnessed(ctx context.Context, size uint64, cosigned string) (bool, error) {
	return t.store.StoreWitnessed(ctx, size, cosigned)
}

// Witnessed is the tree's newest cosigned checkpoint ("" if none) and its
// size.
func (t *Tree) Witnessed(ctx context.Context) (uint64, string, error) {
	return t.store.Witnessed(ctx)
}
