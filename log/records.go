package log

import (
	"context"
	"fmt"

	"github.com/signet-dev/signet/log/pgstore"
)

// A personality's records of its leaves, written by the storage driver in
// the transaction that integrates them (or, catching up after a crash, in
// one of their own), so they are durable exactly when the leaves are; with
// them goes how far the personality got and the signed checkpoint of that
// size (the watermark). See pgstore.Records.

// Records are what a personality keeps of a batch of leaves.
type Records struct {
	// Sidecars, when set, has one entry per leaf of the batch: bytes kept
	// beside the leaf and read with it into Leaf.Sidecar (the Rekor log's
	// SETs).
	Sidecars [][]byte
	// Keys are the leaves' search keys, as the personality digests them;
	// Lookup finds leaves by them.
	Keys []IndexKey
}

// IndexKey files the leaf with hash Leaf under Key.
type IndexKey struct {
	Key, Leaf []byte
}

// Integrated is the personality's side of the engine: told of every leaf
// once it is in the tree, in index order, before any append of it is
// acknowledged, it returns its records of them.
type Integrated interface {
	Integrated(ctx context.Context, b Batch) (Records, error)
}

// records asks the personality for its records of b, for the driver to
// write, and sets the leaves' sidecars (the answers to their appends carry
// them).
func (a *appender) records(ctx context.Context, b Batch) (pgstore.Records, error) {
	r, err := a.cfg.Hook.Integrated(ctx, b)
	if err != nil {
		return pgstore.Records{}, err
	}
	out := pgstore.Records{Size: b.NewSize, Checkpoint: b.Checkpoint, New: b.New}
	if len(r.Keys) > 0 {
		out.Keys, out.KeyLeaves = make([][]byte, len(r.Keys)), make([][]byte, len(r.Keys))
		for i, k := range r.Keys {
			out.Keys[i], out.KeyLeaves[i] = k.Key, k.Leaf
		}
	}
	if r.Sidecars != nil {
		if len(r.Sidecars) != len(b.Leaves) {
			return pgstore.Records{}, fmt.Errorf("%d sidecars for %d leaves", len(r.Sidecars), len(b.Leaves))
		}
		out.Sidecars, out.SidecarIndexes = r.Sidecars, make([]int64, len(b.Leaves))
		for i := range b.Leaves {
			out.SidecarIndexes[i] = int64(b.Leaves[i].Index)
			b.Leaves[i].Sidecar = r.Sidecars[i]
		}
	}
	return out, nil
}
