package tlogpath

import (
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

func TestPathAndParse(t *testing.T) {
	cases := []struct {
		tile tlog.Tile
		path string
	}{
		{tlog.Tile{H: 8, L: 0, N: 0, W: 256}, "tile/0/000"},
		{tlog.Tile{H: 8, L: 0, N: 1234067, W: 256}, "tile/0/x001/x234/067"},
		{tlog.Tile{H: 8, L: 2, N: 5, W: 17}, "tile/2/005.p/17"},
		{tlog.Tile{H: 8, L: -1, N: 1000, W: 3}, "tile/entries/x001/000.p/3"},
	}
	for _, c := range cases {
		if got := Path(c.tile); got != c.path {
			t.Errorf("Path(%+v) = %q, want %q", c.tile, got, c.path)
		}
		if got, ok := Parse(c.path[len("tile/"):]); !ok || got != c.tile {
			t.Errorf("Parse(%q) = %+v, %v", c.path, got, ok)
		}
	}
	for _, bad := range []string{"", "0", "0/0001", "00/000", "0/000.p/0", "0/000.p/256", "0/000.p/01", "8/0/000", "entries/x000/000", "-1/000", "0/x000/001", "0/000/", "data/000"} {
		if got, ok := Parse(bad); ok {
			t.Errorf("Parse(%q) = %+v, want it refused", bad, got)
		}
	}
}

// Whatever a client sends, Parse returns a tile within bounds or nothing;
// and every tile within bounds is parsed back from its path.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"0/000", "entries/x001/000.p/3", "2/005.p/17", "0/000.p/0"} {
		f.Add(s, int8(0), int64(0), uint16(256))
	}
	f.Fuzz(func(t *testing.T, rest string, level int8, n int64, w uint16) {
		if tile, ok := Parse(rest); ok && (tile.W < 1 || tile.W > 256 || tile.L < -1 || tile.N < 0) {
			t.Fatalf("Parse(%q) = %+v, out of bounds", rest, tile)
		}
		if level < -1 || n < 0 || w < 1 || w > 256 {
			return
		}
		tile := tlog.Tile{H: Height, L: int(level), N: n, W: int(w)}
		if got, ok := Parse(Path(tile)[len("tile/"):]); !ok || got != tile {
			t.Fatalf("Parse(Path(%+v)) = %+v, %v", tile, got, ok)
		}
	})
}
