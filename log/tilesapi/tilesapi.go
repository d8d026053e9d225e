// Package tilesapi serves a log tree as C2SP tlog-tiles
// (https://c2sp.org/tlog-tiles): its checkpoint, its hash tiles and its
// entry bundles, under a prefix of the caller's choosing. Tiles are static
// files in all but name: an HTTP cache or CDN in front of the server can
// serve every full tile forever, which is how reads scale past one machine.
//
// Hash tiles come from the engine's stored tiles (log.Tree.TileHashes)
// through the bounded tile cache; nothing is recomputed per request and
// memory does not grow with the log.
package tilesapi

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/signet-dev/signet/internal/requestid"
	tlogs "github.com/signet-dev/signet/log"
	"github.com/signet-dev/signet/log/tlogpath"
)

// Cache lifetimes: a full tile never changes; a partial tile and the
// checkpoint are replaced as the tree grows.
const (
	cacheFull    = "public, max-age=31536000, immutable"
	cachePartial = "public, max-age=60"
	cacheCheckpt = "public, max-age=5"
)

// MaxEntryBytes is the longest entry an entry bundle can carry: each is
// prefixed with its length as a big-endian uint16.
const MaxEntryBytes = 1<<16 - 1

// Handler serves tree's tiles: GET checkpoint, tile/<L>/<N>[.p/<W>] and
// tile/entries/<N>[.p/<W>], relative to where it is mounted.
func Handler(tree *tlogs.Tree, logger *slog.Logger) http.Handler {
	h := handler{tree: tree, logger: logger}
	r := chi.NewRouter()
	r.Get("/checkpoint", h.checkpoint)
	r.Get("/tile/*", h.tile)
	return r
}

type handler struct {
	tree   *tlogs.Tree
	logger *slog.Logger
}

func (h handler) checkpoint(w http.ResponseWriter, r *http.Request) {
	root, err := h.tree.Latest(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	signed, err := h.tree.Checkpoint(root)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", cacheCheckpt)
	w.Write([]byte(signed)) //nolint:errcheck // the client went away
}

func (h handler) tile(w http.ResponseWriter, r *http.Request) {
	t, ok := tlogpath.Parse(chi.URLParam(r, "*"))
	if !ok {
		http.Error(w, "not a tile path: want tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>], N in x-prefixed three-digit groups", http.StatusNotFound)
		return
	}
	var body []byte
	var err error
	if t.L == -1 {
		body, err = h.bundle(r.Context(), uint64(t.N), t.W)
	} else {
		body, err = h.tree.TileHashes(r.Context(), uint64(t.L), uint64(t.N), t.W)
	}
	if errors.Is(err, tlogs.ErrNoTile) {
		http.Error(w, "no such tile in the published tree", http.StatusNotFound)
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	if t.W == tlogs.TileWidth {
		w.Header().Set("Cache-Control", cacheFull)
	} else {
		w.Header().Set("Cache-Control", cachePartial)
	}
	w.Write(body) //nolint:errcheck // the client went away
}

// bundle encodes entry bundle index: each entry as a big-endian uint16
// length and its bytes.
func (h handler) bundle(ctx context.Context, index uint64, width int) ([]byte, error) {
	values, err := h.tree.EntryBundle(ctx, index, width)
	if err != nil {
		return nil, err
	}
	n := 0
	for i, v := range values {
		if len(v) > MaxEntryBytes {
			return nil, fmt.Errorf("entry %d is %d bytes, more than an entry bundle can carry (%d)", index*tlogs.TileWidth+uint64(i), len(v), MaxEntryBytes)
		}
		n += 2 + len(v)
	}
	out := make([]byte, 0, n)
	for _, v := range values {
		out = binary.BigEndian.AppendUint16(out, uint16(len(v)))
		out = append(out, v...)
	}
	return out, nil
}

func (h handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	h.logger.ErrorContext(r.Context(), "serving tiles", "path", r.URL.Path, "err", err)
	http.Error(w, "internal error; "+requestid.SeeLog(r.Context()), http.StatusInternalServerError)
}
