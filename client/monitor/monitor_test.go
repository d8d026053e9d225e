package monitor

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http/httptest"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/signet-dev/signet/internal/db/dbtest"
	tlogs "github.com/signet-dev/signet/log"
	"github.com/signet-dev/signet/log/pgstore"
	"github.com/signet-dev/signet/log/tilesapi"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// A log served by Signet's own tiles API, with an entry too long for a
// bundle: Entries reads it through fetch and still checks it against the
// authenticated leaf hash; Consistent tells a rewritten or shrunk history.
func TestEntriesAndConsistency(t *testing.T) {
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	l, err := tlogs.Open(ctx, pgstore.New(dbtest.NewPool(t)), tlogs.Config{Name: "mon", SignerName: "mon.test", Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	values := [][]byte{[]byte("first"), bytes.Repeat([]byte("L"), 70000), []byte("third")}
	root, err := l.Import(ctx, values, make([][]byte, len(values)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(tilesapi.Handler(l.Tree, slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	tiles := Tiles{Base: srv.URL}
	var cur Tree
	cur.Size = root.Size
	copy(cur.Root[:], root.Hash)

	collect := func(from uint64, fetch func(uint64) ([]byte, error)) ([][]byte, error) {
		var got [][]byte
		err := Entries(tiles, from, cur, fetch, func(_ uint64, e []byte) error {
			got = append(got, bytes.Clone(e))
			return nil
		})
		return got, err
	}
	if _, err := collect(0, nil); err == nil {
		t.Fatal("a bundle the server cannot frame, and no fetch: no error")
	}
	got, err := collect(1, func(i uint64) ([]byte, error) { return values[i], nil })
	if err != nil || len(got) != 2 || !bytes.Equal(got[0], values[1]) || !bytes.Equal(got[1], values[2]) {
		t.Fatalf("entries from 1 with the API for the long one: %d entries, %v", len(got), err)
	}
	// The API lying about an entry is caught by the tiles' leaf hash.
	if _, err := collect(0, func(i uint64) ([]byte, error) { return append(bytes.Clone(values[i]), '!'), nil }); !errors.Is(err, ErrNotLeaf) {
		t.Fatalf("a made-up entry from the API: %v", err)
	}

	// Consistency: the tree at 2 recomputed from the tiles of 3.
	two := Tree{Size: 2, Root: tlog.NodeHash(tlog.RecordHash(values[0]), tlog.RecordHash(values[1]))}
	if err := Consistent(tiles, two, cur); err != nil {
		t.Fatalf("the true tree at 2: %v", err)
	}
	if err := Consistent(tiles, Tree{Size: 2, Root: [32]byte{1}}, cur); !errors.Is(err, ErrRewritten) {
		t.Fatalf("a made-up earlier root: %v", err)
	}
	if err := Consistent(tiles, Tree{Size: 4}, cur); !errors.Is(err, ErrShrank) {
		t.Fatalf("a larger earlier size: %v", err)
	}
	if err := Consistent(tiles, cur, cur); err != nil {
		t.Fatalf("the same tree: %v", err)
	}
}
