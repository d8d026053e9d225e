package tiles

import (
	"container/list"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Cache keeps decoded tiles of any number of trees, least recently used
// first out, within a budget of bytes. It is safe for concurrent use.
type Cache struct {
	max int64

	mu    sync.Mutex
	used  int64
	order *list.List // of *entry, most recently used at the front
	byKey map[key]*list.Element

	hits, misses, groups prometheus.Counter
	size                 prometheus.Gauge
}

type key struct {
	tree int64
	id   string
}

type entry struct {
	key  key
	tile *Tile
}

// NewCache returns a cache of at most maxBytes of tiles (a complete bottom
// tile costs about 2 KiB, compacted; any other full tile about 16 KiB), its
// metrics registered with reg (nil: not).
func NewCache(maxBytes int64, reg prometheus.Registerer) *Cache {
	c := &Cache{
		max: maxBytes, order: list.New(), byKey: map[key]*list.Element{},
		hits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "signet_log_tile_cache_hits_total", Help: "Tiles a proof found in the tile cache with every node it needed.",
		}),
		misses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "signet_log_tile_cache_misses_total", Help: "Tiles read from the database because the tile cache lacked them (or an older version lacked a node).",
		}),
		groups: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "signet_log_tile_cache_leaf_groups_total", Help: "Groups of 8 leaf hashes read on their own for the lowest nodes of a compacted tile (a complete bottom tile, cached without its three lowest levels); a leaf read to be proven brings its group along.",
		}),
		size: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "signet_log_tile_cache_bytes", Help: "Bytes of decoded tiles held by the tile cache (log.tile_cache_bytes bounds it).",
		}),
	}
	if reg != nil {
		reg.MustRegister(c.hits, c.misses, c.groups, c.size)
	}
	return c
}

func (c *Cache) get(tree int64, id []byte) *Tile {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[key{tree, string(id)}]
	if !ok {
		return nil
	}
	c.order.MoveToFront(el)
	return el.Value.(*entry).tile
}

// Put caches t for tree (a complete tile of the bottom stratum compacted).
// A tile only grows, so of two versions the one with more bottom nodes is
// kept.
func (c *Cache) Put(tree int64, t *Tile) {
	t = t.compacted()
	k := key{tree, string(t.id)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[k]; ok {
		e := el.Value.(*entry)
		c.order.MoveToFront(el)
		if e.tile.bottom >= t.bottom {
			return
		}
		c.used += t.bytes() - e.tile.bytes()
		e.tile = t
	} else {
		c.byKey[k] = c.order.PushFront(&entry{key: k, tile: t})
		c.used += t.bytes()
	}
	for c.used > c.max && c.order.Len() > 1 {
		last := c.order.Back()
		e := last.Value.(*entry)
		c.order.Remove(last)
		delete(c.byKey, e.key)
		c.used -= e.tile.bytes()
	}
	c.size.Set(float64(c.used))
}
