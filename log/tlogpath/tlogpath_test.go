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

// Whatever a client sends, Parse accepts only what Path writes back.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"0/000", "entries/x001/000.p/3", "2/005.p/17", "0/000.p/0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rest string) {
		tile, ok := Parse(rest)
		if ok && Path(tile) != "tile/"+rest {
			t.Fatalf("Parse(%q) = %+v, which Path spells %q", rest, tile, Path(tile))
		}
	})
}
