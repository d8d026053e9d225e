package log

import (
	"context"
	"sync"
	"time"
)

// Reads of single items (a leaf by hash, a tile by ID) are gathered: each
// of a gatherer's goroutines takes every read waiting and makes one query of
// them. Under load PostgreSQL's cost per query, not per row, is most of a
// read's; alone, a read is one query as before. No timer: a read waits only
// for the query before it.
type gatherer[V any] struct {
	reqs chan *gatherReq[V]
	// base ends when the log stops, ending a query under way; running
	// counts the goroutines, which Close waits for.
	base    context.Context
	running sync.WaitGroup
	// query looks up keys in one query and returns what it found by key.
	query func(ctx context.Context, keys [][]byte) (map[string]V, error)
}

type gatherReq[V any] struct {
	key  []byte
	done chan gatherResult[V]
}

type gatherResult[V any] struct {
	value V
	err   error
}

// maxGathered bounds the keys of one query.
const maxGathered = 128

// newGatherer starts workers goroutines that run until stop is closed.
func newGatherer[V any](workers int, stop <-chan struct{}, query func(context.Context, [][]byte) (map[string]V, error)) *gatherer[V] {
	base, cancel := context.WithCancel(context.Background())
	go func() {
		<-stop
		cancel()
	}()
	g := &gatherer[V]{reqs: make(chan *gatherReq[V]), query: query, base: base}
	for range workers {
		g.running.Add(1)
		go func() {
			defer g.running.Done()
			g.run(stop)
		}()
	}
	return g
}

// wait returns once every goroutine has ended (after stop).
func (g *gatherer[V]) wait() { g.running.Wait() }

// get reads one key (the zero V when there is nothing under it).
func (g *gatherer[V]) get(ctx context.Context, stop <-chan struct{}, key []byte) (V, error) {
	var zero V
	r := &gatherReq[V]{key: key, done: make(chan gatherResult[V], 1)}
	select {
	case g.reqs <- r:
	case <-stop:
		return zero, ErrClosed
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	select {
	case res := <-r.done:
		return res.value, res.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

func (g *gatherer[V]) run(stop <-chan struct{}) {
	for {
		var batch []*gatherReq[V]
		select {
		case r := <-g.reqs:
			batch = append(batch, r)
		case <-stop:
			return
		}
	gather:
		for len(batch) < maxGathered {
			select {
			case r := <-g.reqs:
				batch = append(batch, r)
			default:
				break gather
			}
		}
		keys := make([][]byte, len(batch))
		for i, r := range batch {
			keys[i] = r.key
		}
		// The query runs on its own deadline: the readers' contexts only
		// decide whether they still wait.
		ctx, cancel := context.WithTimeout(g.base, 30*time.Second)
		found, err := g.query(ctx, keys)
		cancel()
		for _, r := range batch {
			r.done <- gatherResult[V]{value: found[string(r.key)], err: err}
		}
	}
}
