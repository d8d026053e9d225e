// Package tlogpath spells the paths of C2SP tlog-tiles tiles, for the
// server that serves them (log/tilesapi) and the clients that read them.
// x/mod's sumdb/tlog encodes tile indexes the same way (three-digit
// groups, all but the last prefixed by x) with the height as an extra path
// element, which tlog-tiles leaves out: it is always 8.
package tlogpath

import (
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// Height is the height of every tlog-tiles tile.
const Height = 8

// Path is t's path relative to the log's prefix: tile/<L>/<N>[.p/<W>], or
// tile/entries/<N>[.p/<W>] for an entry bundle (L = -1). t.H must be 8.
func Path(t tlog.Tile) string {
	p := strings.Replace(t.Path(), "tile/8/", "tile/", 1)
	return strings.Replace(p, "tile/data/", "tile/entries/", 1)
}

// Parse reads a path written by Path (after "tile/"), and only in that one
// spelling, so that each tile has exactly one URL for caches to hold.
func Parse(rest string) (tlog.Tile, bool) {
	sumdbPath := "tile/8/" + rest
	if entries, ok := strings.CutPrefix(rest, "entries/"); ok {
		sumdbPath = "tile/8/data/" + entries
	}
	t, err := tlog.ParseTilePath(sumdbPath)
	if err != nil || t.H != Height || Path(t) != "tile/"+rest {
		return tlog.Tile{}, false
	}
	return t, true
}
