// Package audit writes audit records (certificates, timestamps issued) to
// PostgreSQL in batches, off the response's critical path. Add blocks only
// when the buffer is full, so records are never dropped; Close flushes.
package audit

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Writer batches rows into one table.
type Writer struct {
	pool    *pgxpool.Pool
	table   string
	columns []string
	rows    chan []any
	done    chan struct{}
	logger  *slog.Logger
}

// Options tune batching.
type Options struct {
	// Buffer is how many rows may wait (default 65536).
	Buffer int
	// Batch is the most rows written at once (default 2048).
	Batch int
	// Interval is the longest a row waits when traffic is light (default 200ms).
	Interval time.Duration
}

// New starts a writer for table(columns...).
func New(pool *pgxpool.Pool, table string, columns []string, logger *slog.Logger, opts Options) *Writer {
	if opts.Buffer <= 0 {
		opts.Buffer = 65536
	}
	if opts.Batch <= 0 {
		opts.Batch = 2048
	}
	if opts.Interval <= 0 {
		opts.Interval = 200 * time.Millisecond
	}
	w := &Writer{pool: pool, table: table, columns: columns, rows: make(chan []any, opts.Buffer), done: make(chan struct{}), logger: logger}
	go w.run(opts)
	return w
}

// Add queues one row (values in column order).
func (w *Writer) Add(row []any) { w.rows <- row }

// Close writes everything queued and stops.
func (w *Writer) Close() {
	close(w.rows)
	<-w.done
}

func (w *Writer) run(opts Options) {
	defer close(w.done)
	batch := make([][]any, 0, opts.Batch)
	tick := time.NewTicker(opts.Interval)
	defer tick.Stop()
	flush := func() {
		if len(batch) == 0 {
			return
		}
		// Retry a failing database a few times: records must not be lost to
		// a short outage.
		for attempt := 0; ; attempt++ {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_, err := w.pool.CopyFrom(ctx, pgx.Identifier{w.table}, w.columns, pgx.CopyFromRows(batch))
			cancel()
			if err == nil {
				break
			}
			if attempt >= 5 {
				w.logger.Error("audit records lost after retries", "table", w.table, "rows", len(batch), "err", err)
				break
			}
			w.logger.Warn("writing audit records failed; retrying", "table", w.table, "rows", len(batch), "err", err)
			time.Sleep(time.Duration(attempt+1) * 500 * time.Millisecond)
		}
		batch = batch[:0]
	}
	for {
		select {
		case row, ok := <-w.rows:
			if !ok {
				flush()
				return
			}
			batch = append(batch, row)
			if len(batch) >= opts.Batch {
				flush()
			}
		case <-tick.C:
			flush()
		}
	}
}
