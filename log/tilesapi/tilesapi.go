// Package tilesapi serves a log tree as C2SP tlog-tiles
// (https://c2sp.org/tlog-tiles): its checkpoint, its hash tiles and its
// entry bundles, under a prefix of the caller's choosing, which must name
// the tree (a full tile is cached for a year, so its URL must never come
// to mean another tree's). Tiles are static files in all but name: an HTTP
// cache or CDN in front of the server can serve every full tile forever,
// which is how reads scale past one machine.
//
// A hash tile is the bottom row of one stored tile (log.Tree.TileHashes),
// read and decoded per request and not cached: a cache in front reads each
// tile once. Memory does not grow with the log.
package tilesapi

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/signet-dev/signet/internal/requestid"
	tlogs "github.com/signet-dev/signet/log"
	"github.com/signet-dev/signet/log/tlogpath"
	"github.com/signet-dev/signet/log/witness"
)

// Cache lifetimes: a full tile never changes; a partial tile and the
// checkpoint are replaced as the tree grows.
const (
	cacheFull    = "public, max-age=31536000, immutable"
	cachePartial = "public, max-age=60"
	cacheCheckpt = "public, max-age=5"
)

// Handler serves tree's tiles: GET checkpoint, tile/<L>/<N>[.p/<W>] and
// tile/entries/<N>[.p/<W>], relative to where it is mounted.
func Handler(tree *tlogs.Tree, logger *slog.Logger) http.Handler {
	return WitnessedHandler(tree, nil, logger)
}

// Published returns the checkpoint to serve, a signed note that may carry
// witnesses' cosignatures (witness.Cosigner.Published).
type Published func(context.Context) (string, error)

// WitnessedHandler is Handler serving published as the checkpoint (nil:
// the tree's newest, signed by the log alone). Until published has one,
// checkpoint answers 503: the tiles are there, but no checkpoint the
// witnesses hold the log to.
func WitnessedHandler(tree *tlogs.Tree, published Published, logger *slog.Logger) http.Handler {
	h := handler{tree: tree, published: published, logger: logger}
	r := chi.NewRouter()
	r.Get("/checkpoint", h.checkpoint)
	r.Get("/tile/*", h.tile)
	return r
}

type handler struct {
	tree      *tlogs.Tree
	published Published
	logger    *slog.Logger
}

func (h handler) checkpoint(w http.ResponseWriter, r *http.Request) {
	var signed string
	var err error
	if h.published != nil {
		signed, err = h.published(r.Context())
		if errors.Is(err, witness.ErrNotPublished) {
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Retry-After", "1")
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
	} else {
		var root tlogs.Root
		if root, err = h.tree.Latest(r.Context()); err == nil {
			signed, err = h.tree.Checkpoint(root)
		}
	}
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
		w.Header().Set("Cache-Control", "no-store")
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
	var long *tlogs.TooLongError
	switch {
	case errors.Is(err, tlogs.ErrNoTile):
		// Not cached: the tile may exist once the tree grows.
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "no such tile in the published tree", http.StatusNotFound)
		return
	case errors.As(err, &long):
		// The log accepts entries tlog-tiles cannot frame; they are read
		// through the log's API (a monitor checks each against the
		// level-0 tile's hash).
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, long.Error()+": read this bundle's entries through the log's API", http.StatusNotImplemented)
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
	for _, v := range values {
		n += 2 + len(v) // each at most MaxBundleEntry long (EntryBundle)
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
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, "internal error; "+requestid.SeeLog(r.Context()), http.StatusInternalServerError)
}
