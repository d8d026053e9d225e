package tilesapi

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	xnote "golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/signet-dev/signet/internal/db/dbtest"
	"github.com/signet-dev/signet/internal/witnesstest"
	tlogs "github.com/signet-dev/signet/log"
	"github.com/signet-dev/signet/log/note"
	"github.com/signet-dev/signet/log/pgstore"
	"github.com/signet-dev/signet/log/tlogpath"
	"github.com/signet-dev/signet/log/witness"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// tileClient reads a tlog-tiles server for x/mod's tlog, an independent
// implementation of the same tiles (Go's checksum database client): its
// TileHashReader checks every tile it loads against the tree's root.
type tileClient struct {
	t    *testing.T
	base string
}

func (c tileClient) get(path string) (int, http.Header, []byte) {
	c.t.Helper()
	resp, err := http.Get(c.base + "/" + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

func (c tileClient) Height() int { return 8 }

func (c tileClient) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		code, hdr, body := c.get(tlogpath.Path(t))
		if code != http.StatusOK {
			return nil, fmt.Errorf("%s: %d %s", tlogpath.Path(t), code, body)
		}
		want := cachePartial
		if t.W == 256 {
			want = cacheFull
		}
		if got := hdr.Get("Cache-Control"); got != want {
			c.t.Errorf("%s: Cache-Control %q, want %q", tlogpath.Path(t), got, want)
		}
		out[i] = body
	}
	return out, nil
}

func (c tileClient) SaveTiles([]tlog.Tile, [][]byte) {}

func TestTilesAgreeWithTheCheckpoint(t *testing.T) {
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	l, err := tlogs.Open(ctx, pgstore.New(dbtest.NewPool(t)), tlogs.Config{Name: "tiles", SignerName: "tiles.test", Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	srv := httptest.NewServer(Handler(l.Tree, slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	c := tileClient{t: t, base: srv.URL}

	// Sizes around the boundaries of level-0 and level-1 tiles.
	size := 0
	var all [][]byte
	for _, want := range []int{255, 256, 257, 65536 + 1} {
		values := make([][]byte, want-size)
		for i := range values {
			// Lengths vary and the first entry is empty: the bundle's
			// framing is what is tested.
			values[i] = []byte{}
			if size+i > 0 {
				values[i] = fmt.Appendf(bytes.Repeat([]byte{byte(i)}, (size+i)%300), " %d", size+i)
			}
		}
		if _, err := l.Import(ctx, values, make([][]byte, len(values))); err != nil {
			t.Fatal(err)
		}
		all = append(all, values...)
		size = want
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			c.t = t
			code, hdr, body := c.get("checkpoint")
			if code != http.StatusOK || hdr.Get("Cache-Control") != cacheCheckpt {
				t.Fatalf("checkpoint: %d %v", code, hdr)
			}
			cp, err := note.Verify(string(body), "tiles.test", key.Public())
			if err != nil || cp.Size != uint64(size) {
				t.Fatalf("checkpoint %q: %v", body, err)
			}
			var root tlog.Hash
			copy(root[:], cp.RootHash)
			tree := tlog.Tree{N: int64(size), Hash: root}
			hr := tlog.TileHashReader(tree, c)
			got, err := tlog.TreeHash(int64(size), hr)
			if err != nil || got != root {
				t.Fatalf("the root from the tiles: %v, %v; checkpoint %v", got, err, root)
			}
			// Every entry bundle: its entries hash to the level-0 tiles.
			for n := int64(0); n*256 < int64(size); n++ {
				w := min(256, size-int(n)*256)
				data := tlog.Tile{H: 8, L: -1, N: n, W: w}
				hashes, err := c.ReadTiles([]tlog.Tile{data, {H: 8, L: 0, N: n, W: w}})
				if err != nil {
					t.Fatal(err)
				}
				entries, rest := hashes[0], hashes[1]
				for i := 0; i < w; i++ {
					if len(entries) < 2 {
						t.Fatalf("bundle %d ends at entry %d of %d", n, i, w)
					}
					k := int(binary.BigEndian.Uint16(entries))
					entry := entries[2 : 2+k]
					entries = entries[2+k:]
					if !bytes.Equal(entry, all[int(n)*256+i]) {
						t.Fatalf("entry %d of bundle %d is %x, want %x", i, n, entry, all[int(n)*256+i])
					}
					if h := tlog.RecordHash(entry); !bytes.Equal(h[:], rest[i*32:i*32+32]) {
						t.Fatalf("entry %d of bundle %d does not hash to its level-0 tile", i, n)
					}
				}
				if len(entries) != 0 {
					t.Fatalf("bundle %d has %d bytes after its %d entries", n, len(entries), w)
				}
			}
			// What the tree does not have yet is a 404, whatever its
			// spelling; so is a tile path spelt in any other way.
			lastFull := size / 256
			for _, p := range []string{
				tlogpath.Path(tlog.Tile{H: 8, L: 0, N: int64(lastFull), W: 256}),
				tlogpath.Path(tlog.Tile{H: 8, L: -1, N: int64(lastFull) + 1, W: 1}),
				tlogpath.Path(tlog.Tile{H: 8, L: 3, N: 0, W: 1}),
				"tile/2305843009213693952/000", "tile/2305843009213693953/000.p/1", // 8*L wraps to 0 and 8
				"tile/0/0001", "tile/00/000", "tile/0/000.p/0", "tile/0/000.p/256", "tile/8/0/000", "tile/entries/x000/000", "tile/9/000",
			} {
				if code, _, _ := c.get(p); code != http.StatusNotFound {
					t.Errorf("%s: %d, want 404", p, code)
				}
			}
		})
	}
}

// An entry too long for an entry bundle's framing is 501 for its bundle,
// without its value being read; the hash tiles are unaffected.
func TestBundleWithAnEntryTooLong(t *testing.T) {
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	l, err := tlogs.Open(ctx, pgstore.New(dbtest.NewPool(t)), tlogs.Config{Name: "long", SignerName: "long.test", Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	values := [][]byte{[]byte("short"), bytes.Repeat([]byte("x"), 70000), []byte("short too")}
	if _, err := l.Import(ctx, values, make([][]byte, len(values))); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(l.Tree, slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	c := tileClient{t: t, base: srv.URL}
	code, hdr, body := c.get("tile/entries/000.p/3")
	if code != http.StatusNotImplemented || hdr.Get("Cache-Control") != "no-store" || !bytes.Contains(body, []byte("entry 1 is 70000 bytes")) {
		t.Fatalf("bundle with a 70000-byte entry: %d %v %s", code, hdr, body)
	}
	if code, _, body := c.get("tile/0/000.p/3"); code != http.StatusOK || len(body) != 96 {
		t.Fatalf("its hash tile: %d, %d bytes", code, len(body))
	}
	if code, _, body := c.get("tile/entries/000.p/1"); code != http.StatusOK || !bytes.Equal(body, append([]byte{0, 5}, "short"...)) {
		t.Fatalf("the bundle before the long entry: %d %q", code, body)
	}
}

// A witnessed tree's checkpoint, on the engine and PostgreSQL: 503 until the
// witness (litewitness) has cosigned, then the cosigned note; a new
// cosigner on the same database (a restart) serves the stored one before
// any round, and the next round proves consistency from it.
func TestWitnessedCheckpoint(t *testing.T) {
	ctx := context.Background()
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	store := pgstore.New(dbtest.NewPool(t))
	l, err := tlogs.Open(ctx, store, tlogs.Config{Name: "witnessed", SignerName: "log.test", Signer: key, C2SPKeyHint: true,
		OriginFor: func(int64) string { return "log.test" }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	vkey, err := note.VerifierKey("log.test", pub)
	if err != nil {
		t.Fatal(err)
	}
	w := witnesstest.Start(t, "witness.test")
	w.AddLog(t, "log.test", vkey)
	v, err := fnote.NewVerifierForCosignatureV1(w.VKey)
	if err != nil {
		t.Fatal(err)
	}
	cosigner := func() *witness.Cosigner {
		c, err := witness.New(ctx, witness.Config{Log: "witnessed", Tree: l.Tree, Witnesses: []witness.Witness{{URL: w.URL, Verifier: v}}, Quorum: 1,
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	first := cosigner()
	var published Published = func(ctx context.Context) (string, error) { return first.Published(ctx) }
	srv := httptest.NewServer(WitnessedHandler(l.Tree, published, slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	c := tileClient{t: t, base: srv.URL}
	if _, err := l.Import(ctx, [][]byte{[]byte("a"), []byte("b"), []byte("c")}, make([][]byte, 3)); err != nil {
		t.Fatal(err)
	}
	if code, hdr, body := c.get("checkpoint"); code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("before any cosignature: %d %v %s", code, hdr, body)
	}
	if err := first.Round(ctx); err != nil {
		t.Fatal(err)
	}
	code, _, body := c.get("checkpoint")
	n, err := xnote.Open(body, xnote.VerifierList(v))
	if code != http.StatusOK || err != nil || !strings.HasPrefix(n.Text, "log.test\n3\n") {
		t.Fatalf("after a round: %d %v %q", code, err, body)
	}
	if cp, others, err := note.Open(string(body), "log.test", pub); err != nil || cp.Size != 3 || len(others) != 1 {
		t.Fatalf("the cosigned note with the log's key: %+v, %d others, %v", cp, len(others), err)
	}

	restarted := cosigner()
	if got, err := restarted.Published(ctx); err != nil || got != string(body) {
		t.Fatalf("after a restart: %q (%v), want the stored %q", got, err, body)
	}
	if _, err := l.Import(ctx, [][]byte{[]byte("d")}, make([][]byte, 1)); err != nil {
		t.Fatal(err)
	}
	// Its witness sizes start at 0: litewitness answers 409 with 3, and
	// the round asks again with a proof from 3.
	if err := restarted.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := restarted.Published(ctx); !strings.HasPrefix(got, "log.test\n4\n") || strings.Count(got, "\u2014 ") != 2 {
		t.Fatalf("after the restarted round: %q", got)
	}
}
