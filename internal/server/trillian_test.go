package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/transparency-dev/merkle/proof"

	"github.com/signet-dev/signet/internal/trilliantest"
	"github.com/signet-dev/signet/log/rekorapi/model"
)

// Trillian's PostgreSQL schema and tile format are Signet's on-disk format:
// Trillian v1.8's own storage code, opened on the database of a running
// instance, reads the root, every leaf and the nodes of every proof that
// Signet serves over HTTP, for entries appended through the API and entries
// bulk-imported, across tiles.
func TestTrillianReadsWhatSignetServes(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	inst := f.start(t)
	s := newSigner(t)
	for i := range 150 {
		p, _, _ := s.hashedRekord(t, []byte(fmt.Sprint("appended ", i)), nil)
		if _, err := inst.client.Upload(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	var bodies [][]byte
	for i := range 300 {
		p, _, _ := s.hashedRekord(t, []byte(fmt.Sprint("imported ", i)), nil)
		bodies = append(bodies, p)
	}
	if _, err := inst.srv.Rekor().Import(ctx, bodies); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		p, _, _ := s.hashedRekord(t, []byte(fmt.Sprint("appended after ", i)), nil)
		if _, err := inst.client.Upload(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	info, _, err := inst.client.Info(ctx)
	if err != nil || info.TreeSize != 470 {
		t.Fatalf("tree size %d (%v), want 470", info.TreeSize, err)
	}
	size := uint64(info.TreeSize)

	pool, err := pgxpool.New(ctx, f.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	// Closed after the snapshot (cleanups run last first), which holds a
	// connection until then.
	t.Cleanup(pool.Close)
	trill := trilliantest.Open(t, pool, inst.srv.Log().TreeID())
	if root := trill.Root(); root.TreeSize != size || hex.EncodeToString(root.RootHash) != info.RootHash {
		t.Fatalf("Trillian reads the root %d/%x, Signet serves %d/%s", root.TreeSize, root.RootHash, size, info.RootHash)
	}
	// nodes reads a proof's nodes with Trillian's storage code, in hex.
	nodes := func(n proof.Nodes) []string {
		t.Helper()
		var out []string
		for _, h := range trill.Proof(n) {
			out = append(out, hex.EncodeToString(h))
		}
		return out
	}
	leaves := trill.Leaves(0, size)
	for i := range size {
		e, err := inst.client.GetByIndex(ctx, int64(i)) // verified against the checkpoint and SET
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		body, err := base64.StdEncoding.DecodeString(e.Body)
		if err != nil {
			t.Fatal(err)
		}
		if leaves[i].LeafIndex != int64(i) || !bytes.Equal(leaves[i].LeafValue, body) {
			t.Fatalf("Trillian reads leaf %d as index %d, %d bytes; Signet serves %d bytes", i, leaves[i].LeafIndex, len(leaves[i].LeafValue), len(body))
		}
		n, err := proof.Inclusion(i, size)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.Verification.InclusionProof; uint64(got.TreeSize) != size || !slices.Equal(got.Hashes, nodes(n)) {
			t.Fatalf("entry %d: Signet's proof at size %d differs from the one Trillian reads at %d", i, got.TreeSize, size)
		}
	}
	for _, from := range []uint64{1, 150, 255, 256, 257, 450, 469} {
		resp, body := inst.do(http.MethodGet, fmt.Sprintf("/api/v1/log/proof?firstSize=%d&lastSize=%d", from, size), nil, http.StatusOK)
		resp.Body.Close()
		var cp model.ConsistencyProof
		if err := json.Unmarshal(body, &cp); err != nil {
			t.Fatal(err)
		}
		n, err := proof.Consistency(from, size)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(cp.Hashes, nodes(n)) {
			t.Fatalf("consistency %d..%d: Signet serves a proof other than the one Trillian reads", from, size)
		}
	}
}
