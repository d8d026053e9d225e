// Package monitor follows a transparency log as an auditor does: each new
// checkpoint must extend the last one seen, each new entry must be in the
// tree the checkpoint commits to, and each entry's signer is matched
// against the identities being watched.
//
// Logs are read as C2SP tlog-tiles. x/mod's sumdb/tlog checks every tile it
// loads against the checkpoint's root, so an entry or a hash the server
// made up fails the read; the root of the last size seen, recomputed from
// the same tiles, proves the log consistent with it.
package monitor

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/signet-dev/signet/log/tlogpath"
)

// MaxTileBytes bounds a tile read from the server: a full entry bundle of
// 256 entries of at most 65,535 bytes each, with their length prefixes.
const MaxTileBytes = 256 * (2 + 65535)

// Tiles reads a log's tiles under Base (e.g. https://signet.example.com/tiles/rekor).
type Tiles struct {
	Base string
	HTTP *http.Client
	// Parallel is how many tiles are read at once (default 8).
	Parallel int
	ctx      context.Context
}

// WithContext returns t with requests made under ctx.
func (t Tiles) WithContext(ctx context.Context) Tiles {
	t.ctx = ctx
	return t
}

// Height is tlog.TileReader's: 8 for tlog-tiles.
func (t Tiles) Height() int { return tlogpath.Height }

// ReadTiles is tlog.TileReader's: each tile by HTTP GET, several at once.
func (t Tiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out, errs := t.read(tiles)
	return out, errors.Join(errs...)
}

// read reads tiles, several at once, with each one's error.
func (t Tiles) read(tiles []tlog.Tile) ([][]byte, []error) {
	out := make([][]byte, len(tiles))
	errs := make([]error, len(tiles))
	parallel := t.Parallel
	if parallel <= 0 {
		parallel = 8
	}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, tile := range tiles {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i], errs[i] = t.get(tlogpath.Path(tile))
		}()
	}
	wg.Wait()
	return out, errs
}

// SaveTiles is tlog.TileReader's; nothing is kept between runs (the state
// is the last checkpoint).
func (Tiles) SaveTiles([]tlog.Tile, [][]byte) {}

// ErrNoTiles is a server that does not serve the log as tiles.
var ErrNoTiles = errors.New("the server does not serve this log as tiles")

// Errors that prove the log misbehaved (as opposed to failing to answer).
var (
	ErrShrank    = errors.New("the log shrank")
	ErrRewritten = errors.New("the log's history was rewritten")
	ErrNotLeaf   = errors.New("an entry is not the leaf the log's tree has at its index")
	// ErrTileNotVerified is a tile that does not hash to the checkpoint's
	// root (x/mod's tlog refused it).
	ErrTileNotVerified = errors.New("a tile does not fit the log's signed checkpoint")
)

// verified marks an error from x/mod's tile reader: a transport failure
// (from Tiles) stays what it is, anything else is a tile that did not
// verify.
func verified(err error) error {
	var he *HTTPError
	var ue *url.Error
	if err == nil || errors.As(err, &he) || errors.As(err, &ue) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrTileNotVerified, err)
}

// HTTPError is a tile the server did not serve: it says nothing against
// the log, unlike a tile that does not verify.
type HTTPError struct {
	Path   string
	Status int
	Body   string
}

func (e *HTTPError) Error() string { return fmt.Sprintf("%s: HTTP %d: %s", e.Path, e.Status, e.Body) }

func (t Tiles) get(path string) ([]byte, error) {
	ctx := t.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.Base+"/"+path, nil)
	if err != nil {
		return nil, err
	}
	client := t.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxTileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound && path == "checkpoint":
		return nil, ErrNoTiles
	case resp.StatusCode != http.StatusOK:
		return nil, &HTTPError{Path: path, Status: resp.StatusCode, Body: string(bytes.TrimSpace(body[:min(len(body), 200)]))}
	case len(body) > MaxTileBytes:
		return nil, &HTTPError{Path: path, Status: resp.StatusCode, Body: fmt.Sprintf("more than %d bytes", MaxTileBytes)}
	}
	return body, nil
}

// Checkpoint is the log's checkpoint as served with its tiles, unverified:
// the caller checks its signature with the log's key.
func (t Tiles) Checkpoint() ([]byte, error) { return t.get("checkpoint") }

// Tree is a checkpoint's size and root.
type Tree struct {
	Size uint64
	Root [32]byte
}

// Consistent proves that prev is a prefix of cur: prev's root recomputed
// from cur's tiles (each checked against cur's root) must be prev's.
func Consistent(t Tiles, prev, cur Tree) error {
	switch {
	case cur.Size < prev.Size:
		return fmt.Errorf("%w from %d to %d entries", ErrShrank, prev.Size, cur.Size)
	case prev.Size == 0:
		return nil
	}
	hr := tlog.TileHashReader(tlog.Tree{N: int64(cur.Size), Hash: cur.Root}, t)
	root, err := tlog.TreeHash(int64(prev.Size), hr)
	if err != nil {
		return fmt.Errorf("the tree at %d from the tiles of the tree at %d: %w", prev.Size, cur.Size, verified(err))
	}
	if root != prev.Root {
		return fmt.Errorf("%w: at size %d its root is %x, not the %x seen before", ErrRewritten, prev.Size, root[:], prev.Root[:])
	}
	return nil
}

// Root is the root of cur's tree at an earlier size, from cur's tiles
// (each checked against cur's root): a checkpoint of progress part way
// through, as good as one the log signed.
func Root(t Tiles, size uint64, cur Tree) ([32]byte, error) {
	hr := tlog.TileHashReader(tlog.Tree{N: int64(cur.Size), Hash: cur.Root}, t)
	root, err := tlog.TreeHash(int64(size), hr)
	return root, verified(err)
}

// Entries calls fn with each entry from..cur.Size-1 in order, each checked
// to be the leaf of cur's tree at its index. fn's error stops the walk.
//
// A bundle the server cannot frame (TooLongError) is read entry by entry
// through fetch, when given, each entry checked against the same
// authenticated leaf hashes: what the API returns cannot be made up.
func Entries(t Tiles, from uint64, cur Tree, fetch func(index uint64) ([]byte, error), fn func(index uint64, entry []byte) error) error {
	if from >= cur.Size {
		return nil
	}
	hr := tlog.TileHashReader(tlog.Tree{N: int64(cur.Size), Hash: cur.Root}, t)
	const width = 1 << tlogpath.Height
	// A batch of bundles read at once, then checked and handed out in order.
	const batch = 16
	for first := from / width; first*width < cur.Size; first += batch {
		var bundles []tlog.Tile
		var indexes []int64
		for n := first; n < first+batch && n*width < cur.Size; n++ {
			w := min(width, cur.Size-n*width)
			bundles = append(bundles, tlog.Tile{H: tlogpath.Height, L: -1, N: int64(n), W: int(w)})
			for i := n * width; i < n*width+w; i++ {
				indexes = append(indexes, tlog.StoredHashIndex(0, int64(i)))
			}
		}
		data, errs := t.read(bundles)
		// prefix is each bundle's length prefix: 2 bytes as served, 4 for
		// a bundle framed here from entries fetched one by one.
		prefix := make([]int, len(bundles))
		for b, bundle := range bundles {
			prefix[b] = 2
			var he *HTTPError
			if errs[b] == nil {
				continue
			}
			if fetch == nil || !errors.As(errs[b], &he) || he.Status != http.StatusNotImplemented {
				return errs[b]
			}
			// Framed here, so the checks below are the same for both.
			var framed []byte
			for i := int64(0); i < int64(bundle.W); i++ {
				entry, err := fetch(uint64(bundle.N*width + i))
				if err != nil {
					return fmt.Errorf("entry %d of a bundle the server cannot frame: %w", bundle.N*width+i, err)
				}
				framed = binary.BigEndian.AppendUint32(framed, uint32(len(entry)))
				framed = append(framed, entry...)
			}
			data[b], prefix[b] = framed, 4
		}
		hashes, err := hr.ReadHashes(indexes)
		if err != nil {
			return fmt.Errorf("leaf hashes of entries %d..%d: %w", first*width, first*width+uint64(len(indexes))-1, verified(err))
		}
		k := 0
		for b, bundle := range bundles {
			rest, prefix := data[b], prefix[b]
			for i := 0; i < bundle.W; i++ {
				index := uint64(bundle.N)*width + uint64(i)
				var n int
				if len(rest) >= prefix {
					n = int(binary.BigEndian.Uint16(rest))
					if prefix == 4 {
						n = int(binary.BigEndian.Uint32(rest))
					}
				}
				if len(rest) < prefix || len(rest)-prefix < n {
					return fmt.Errorf("%w: entry bundle %d ends inside entry %d", ErrNotLeaf, bundle.N, index)
				}
				entry := rest[prefix : prefix+n]
				rest = rest[prefix+n:]
				if tlog.RecordHash(entry) != hashes[k] {
					return fmt.Errorf("%w: entry %d", ErrNotLeaf, index)
				}
				k++
				if index < from {
					continue
				}
				if err := fn(index, entry); err != nil {
					return err
				}
			}
			if len(rest) != 0 {
				return fmt.Errorf("%w: entry bundle %d has %d bytes after its %d entries", ErrNotLeaf, bundle.N, len(rest), bundle.W)
			}
		}
	}
	return nil
}
