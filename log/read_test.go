package log

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/signet-dev/signet/internal/db/dbtest"
	"github.com/signet-dev/signet/log/pgstore"
	"github.com/signet-dev/signet/log/tiles"
)

func openTestLog(t *testing.T) *Log {
	t.Helper()
	l, _ := openTestLogPool(t)
	return l
}

// openTestLogPool opens a log without a hook in a database of its own,
// which the test may read and lock through the pool.
func openTestLogPool(t *testing.T) (*Log, *pgxpool.Pool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pool := dbtest.NewPool(t)
	l, err := Open(context.Background(), pgstore.New(pool), Config{Name: "test", SignerName: "test", Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l, pool
}

// Concurrent reads by hash and by index are answered by shared queries;
// each reader gets its own leaf (or nothing for one not in the log), proven.
func TestGatheredReadsByHashGetTheirOwnLeaf(t *testing.T) {
	l := openTestLog(t)
	// Two complete tiles, which the cache keeps compacted: their leaves'
	// proofs take their lowest nodes from the groups read with the leaves.
	hashes := appendConcurrently(t, l, "read", 600)
	var wg sync.WaitGroup
	errs := make(chan error, 64*50)
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				index := uint64((w*50 + i*13) % 620)
				want, inLog := hashes[index]
				if !inLog {
					want = rfc6962.DefaultHasher.HashLeaf(fmt.Appendf(nil, "not in the log %d", index))
				}
				got, err := l.ByHash(context.Background(), [][]byte{want})
				switch {
				case err != nil:
					errs <- err
				case !inLog && len(got) != 0:
					errs <- fmt.Errorf("a hash not in the log read as %d leaves", len(got))
				case inLog && (len(got) != 1 || !bytes.Equal(got[0].Leaf.Hash, want) || got[0].Leaf.Index != index):
					errs <- fmt.Errorf("leaf %d read as %+v", index, got)
				case inLog:
					p := got[0]
					if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, p.Root.Size, want, p.Proof, p.Root.Hash); err != nil {
						errs <- fmt.Errorf("leaf %d: %w", index, err)
					}
				}
				// The same leaf by index, gathered with other readers'.
				p, err := l.ByIndex(context.Background(), index)
				switch {
				case !inLog && !errors.Is(err, ErrNotFound):
					errs <- fmt.Errorf("index %d beyond the log: %+v, %v", index, p, err)
				case inLog && (err != nil || p.Leaf.Index != index || !bytes.Equal(p.Leaf.Hash, want) || p.Leaf.Group != nil):
					errs <- fmt.Errorf("leaf %d by index: %+v, %v", index, p, err)
				case inLog:
					if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, p.Root.Size, want, p.Proof, p.Root.Hash); err != nil {
						errs <- fmt.Errorf("leaf %d by index: %w", index, err)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// Batches that complete tiles, which the cache keeps compacted, prove their
// new leaves from the hashes just written: the pipeline reads no group of
// leaves for them, whatever the batches' bounds.
func TestAppendsReadNoLeafGroups(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	l, err := Open(context.Background(), pgstore.New(dbtest.NewPool(t)), Config{Name: "test", SignerName: "test", Signer: key, Tiles: tiles.NewCache(64<<20, reg)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	appendConcurrently(t, l, "groups", 4*tiles.Width+50) // proofs checked as answered
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	read := -1.0
	for _, f := range families {
		if f.GetName() == "signet_log_tile_cache_leaf_groups_total" {
			read = f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if read != 0 {
		t.Fatalf("appends read %v groups of leaves, want 0", read)
	}
}
