// Package memtree keeps every node hash of a growing RFC 6962 Merkle tree in
// memory, so inclusion and consistency proofs, and the root at any size, cost
// no database work. The log engine feeds it the leaf hashes it integrates; it
// costs 64 bytes per leaf (32 for the leaf, 32 spread over the levels above),
// and up to twice that for a moment while a level's array grows.
package memtree

import (
	"crypto/sha256"
	"fmt"
	"sync"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// Tree is an append-only Merkle tree; its methods are safe for concurrent use.
type Tree struct {
	mu sync.RWMutex
	// levels[k] holds the hashes of the complete subtrees of 2^k leaves,
	// 32 bytes each, left to right.
	levels [][]byte
	size   uint64
	// root is the root at size, kept by Append: reads ask for it each time.
	root []byte
}

// New returns an empty tree.
func New() *Tree { return &Tree{root: rfc6962.DefaultHasher.EmptyRoot()} }

// Size is the number of leaves.
func (t *Tree) Size() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.size
}

// Append adds leaf hashes (RFC 6962 leaf hashes, 32 bytes each) in order.
func (t *Tree) Append(leafHashes ...[]byte) error {
	for _, h := range leafHashes {
		if len(h) != sha256.Size {
			return fmt.Errorf("memtree: leaf hash of %d bytes, want %d", len(h), sha256.Size)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, h := range leafHashes {
		t.appendAt(0, h)
		// Each completed pair makes its parent.
		for level, index := 0, t.size; index%2 == 1; level, index = level+1, index/2 {
			left, right := t.node(level, index-1), t.node(level, index)
			t.appendAt(level+1, rfc6962.DefaultHasher.HashChildren(left, right))
		}
		t.size++
	}
	root, err := t.rootAt(t.size)
	if err != nil {
		return err
	}
	t.root = root
	return nil
}

func (t *Tree) appendAt(level int, h []byte) {
	if level == len(t.levels) {
		t.levels = append(t.levels, nil)
	}
	t.levels[level] = append(t.levels[level], h...)
}

// node is the hash of the complete subtree at level and index (held).
func (t *Tree) node(level int, index uint64) []byte {
	return t.levels[level][index*sha256.Size : (index+1)*sha256.Size : (index+1)*sha256.Size]
}

func (t *Tree) has(id compact.NodeID) bool {
	return int(id.Level) < len(t.levels) && (id.Index+1)*sha256.Size <= uint64(len(t.levels[id.Level]))
}

// hashes returns the hashes of complete subtrees, failing if one is not held.
func (t *Tree) hashes(ids []compact.NodeID) ([][]byte, error) {
	out := make([][]byte, len(ids))
	for i, id := range ids {
		if !t.has(id) {
			return nil, fmt.Errorf("memtree: node %d/%d is not in a tree of %d leaves", id.Level, id.Index, t.size)
		}
		out[i] = t.node(int(id.Level), id.Index)
	}
	return out, nil
}

// RootAt is the root hash of the tree's first size leaves.
func (t *Tree) RootAt(size uint64) ([]byte, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if size == t.size {
		return t.root, nil
	}
	return t.rootAt(size)
}

// rootAt folds the complete subtrees of the first size leaves (held).
func (t *Tree) rootAt(size uint64) ([]byte, error) {
	if size > t.size {
		return nil, fmt.Errorf("memtree: size %d is beyond the tree's %d", size, t.size)
	}
	if size == 0 {
		return rfc6962.DefaultHasher.EmptyRoot(), nil
	}
	// The tree of size leaves is its complete subtrees, largest first,
	// folded from the right.
	ids := compact.RangeNodes(0, size, nil)
	hs, err := t.hashes(ids)
	if err != nil {
		return nil, err
	}
	root := hs[len(hs)-1]
	for i := len(hs) - 2; i >= 0; i-- {
		root = rfc6962.DefaultHasher.HashChildren(hs[i], root)
	}
	return root, nil
}

// RangeHashes returns the hashes of the complete subtrees that make up the
// first size leaves (compact.RangeNodes(0, size)), from which a
// compact.Range of them continues.
func (t *Tree) RangeHashes(size uint64) ([][]byte, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if size > t.size {
		return nil, fmt.Errorf("memtree: size %d is beyond the tree's %d", size, t.size)
	}
	return t.hashes(compact.RangeNodes(0, size, nil))
}

// Inclusion proves leaf index in the tree of size leaves.
func (t *Tree) Inclusion(index, size uint64) ([][]byte, error) {
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, err
	}
	return t.resolve(nodes, size)
}

// Consistency proves the tree of size from a prefix of the tree of size to.
func (t *Tree) Consistency(from, to uint64) ([][]byte, error) {
	nodes, err := proof.Consistency(from, to)
	if err != nil {
		return nil, err
	}
	return t.resolve(nodes, to)
}

func (t *Tree) resolve(nodes proof.Nodes, size uint64) ([][]byte, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if size > t.size {
		return nil, fmt.Errorf("memtree: size %d is beyond the tree's %d", size, t.size)
	}
	hs, err := t.hashes(nodes.IDs)
	if err != nil {
		return nil, err
	}
	return nodes.Rehash(hs, rfc6962.DefaultHasher.HashChildren)
}
