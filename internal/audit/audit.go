// Package audit writes audit records (certificates, timestamps issued) to
// PostgreSQL before they are answered. Write returns once the record is
// committed, so a certificate or timestamp the server hands out always has
// its row; rows of concurrent Writes are committed together, one statement
// and one transaction per batch (group commit), as the log's append
// pipeline does.
//
// Invariants:
//   - Write returns nil only after the transaction holding its row has
//     committed.
//   - A row the database refuses for its own content (a data exception, a
//     constraint, a limit) fails alone: its batch is split and the other rows
//     are committed without it.
//   - Text values are stored escaped by EscapeText, so a NUL byte or invalid
//     UTF-8 in one value cannot make PostgreSQL refuse anything.
//   - A Write never blocks on a full queue (ErrBusy) and never waits past
//     its context; when the database is unreachable it fails with
//     ErrUnavailable as soon as the commit attempt does.
//   - Close commits every row already queued.
package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	// ErrBusy means the queue of rows waiting to be committed is full: the
	// database is slower than the requests. Nothing was written; retry
	// shortly.
	ErrBusy = errors.New("the audit queue is full")
	// ErrClosed means the writer is shutting down.
	ErrClosed = errors.New("the audit writer is closed")
	// ErrUnavailable means the row was not committed because the database
	// could not be reached, failed, or did not answer within the caller's
	// deadline. The row may still be committed (an interrupted commit), but
	// it was not acknowledged.
	ErrUnavailable = errors.New("the audit database is unavailable")
	// ErrRejected means the database refused this very row (other rows of
	// its batch were committed): a server fault, not an outage.
	ErrRejected = errors.New("the database refused the audit row")
)

// RetryAfter tells whether err from Write is temporary (answer 503) and
// how many seconds a client should wait before retrying.
func RetryAfter(err error) (seconds int, temporary bool) {
	switch {
	case errors.Is(err, ErrBusy):
		return 1, true
	case errors.Is(err, ErrUnavailable), errors.Is(err, ErrClosed):
		return 5, true
	}
	return 0, false
}

// ColumnType is the PostgreSQL type of an audit column.
type ColumnType int

const (
	// TextColumn holds a Go string, stored through EscapeText.
	TextColumn ColumnType = iota
	// TimeColumn holds a time.Time, stored as timestamptz.
	TimeColumn
)

// Column is one column of an audit table.
type Column struct {
	Name string
	Type ColumnType
}

// Text is a text column.
func Text(name string) Column { return Column{Name: name, Type: TextColumn} }

// Time is a timestamptz column.
func Time(name string) Column { return Column{Name: name, Type: TimeColumn} }

// Options tune the writer. Zero values take the defaults.
type Options struct {
	// Queue is how many rows may wait for a commit (default 8192); a Write
	// beyond it fails at once with ErrBusy.
	Queue int
	// Batch is the most rows committed in one statement (default 1024).
	Batch int
	// Committers is how many batches may be committing at once (default 1).
	// With one, every row that arrives while a batch commits goes into the
	// next batch, so batches grow with the load and a commit's fixed cost
	// (a statement, a WAL flush) is shared by more rows. On the 2-core
	// development machine the TSA granted ~12,600 timestamps/s with one
	// committer and ~10,700 and ~10,500 with two and four (64 clients,
	// medians of four interleaved 10 s rounds): more committers make more,
	// smaller commits, and their CPU is taken from signing.
	Committers int
	// CommitTimeout bounds one commit attempt (default 5s), so a database
	// that stopped answering frees the committers and fails the waiting
	// rows with ErrUnavailable even if their callers would wait longer.
	CommitTimeout time.Duration
	// Registerer receives the writer's metrics (nil: unregistered).
	Registerer prometheus.Registerer
}

// Defaults of Options.
const (
	DefaultQueue         = 8192
	DefaultBatch         = 1024
	DefaultCommitters    = 1
	DefaultCommitTimeout = 5 * time.Second
)

// pending is one row waiting for its commit.
type pending struct {
	ctx  context.Context
	row  []any
	done chan error // buffered: the committer never blocks on a caller gone
}

// Writer commits rows into one table.
type Writer struct {
	pool    *pgxpool.Pool
	table   string
	columns []Column
	insert  string
	opts    Options
	logger  *slog.Logger
	queue   chan *pending

	// mu orders Writes against Close: no row enters the queue once closed is
	// set, so the committers can drain it and stop.
	mu      sync.RWMutex
	closed  bool
	closing chan struct{}
	wg      sync.WaitGroup

	metrics writerMetrics
}

type writerMetrics struct {
	committed, busy, unavailable, rejected, failed, canceled prometheus.Counter
	batchRows                                                prometheus.Observer
	commitSeconds                                            prometheus.Observer
}

// New starts a writer for table(columns...).
func New(pool *pgxpool.Pool, table string, columns []Column, logger *slog.Logger, opts Options) *Writer {
	if opts.Queue <= 0 {
		opts.Queue = DefaultQueue
	}
	if opts.Batch <= 0 {
		opts.Batch = DefaultBatch
	}
	if opts.Committers <= 0 {
		opts.Committers = DefaultCommitters
	}
	if opts.CommitTimeout <= 0 {
		opts.CommitTimeout = DefaultCommitTimeout
	}
	if logger == nil {
		logger = slog.Default()
	}
	w := &Writer{
		pool: pool, table: table, columns: columns, insert: insertSQL(table, columns), opts: opts,
		logger: logger.With("audit_table", table), queue: make(chan *pending, opts.Queue), closing: make(chan struct{}),
	}
	w.registerMetrics(opts.Registerer)
	w.wg.Add(opts.Committers)
	for range opts.Committers {
		go w.commitLoop()
	}
	return w
}

// insertSQL is one INSERT of a whole batch: a parameter per column, each an
// array holding that column's values (one statement, one round trip).
func insertSQL(table string, columns []Column) string {
	names := make([]string, len(columns))
	arrays := make([]string, len(columns))
	for i, c := range columns {
		names[i] = pgx.Identifier{c.Name}.Sanitize()
		typ := "text[]"
		if c.Type == TimeColumn {
			typ = "timestamptz[]"
		}
		arrays[i] = fmt.Sprintf("$%d::%s", i+1, typ)
	}
	return fmt.Sprintf("INSERT INTO %s (%s) SELECT * FROM unnest(%s)",
		pgx.Identifier{table}.Sanitize(), strings.Join(names, ", "), strings.Join(arrays, ", "))
}

func (w *Writer) registerMetrics(reg prometheus.Registerer) {
	labels := prometheus.Labels{"table": w.table}
	rows := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "signet_audit_rows_total", ConstLabels: labels,
		Help: "Audit rows by outcome: committed, busy (queue full), unavailable (database down or too slow), rejected (refused by the database for its content), failed (other database errors), canceled (caller gone before the commit).",
	}, []string{"outcome"})
	batch := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "signet_audit_batch_rows", Help: "Rows per audit commit.", ConstLabels: labels,
		Buckets: prometheus.ExponentialBuckets(1, 2, 11),
	})
	commit := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "signet_audit_commit_seconds", Help: "Time to commit one batch of audit rows.", ConstLabels: labels,
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	})
	queue := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "signet_audit_queue_length", Help: "Audit rows waiting for a committer.", ConstLabels: labels,
	}, func() float64 { return float64(len(w.queue)) })
	w.metrics = writerMetrics{
		committed: rows.WithLabelValues("committed"), busy: rows.WithLabelValues("busy"),
		unavailable: rows.WithLabelValues("unavailable"), rejected: rows.WithLabelValues("rejected"),
		failed: rows.WithLabelValues("failed"), canceled: rows.WithLabelValues("canceled"),
		batchRows: batch, commitSeconds: commit,
	}
	if reg != nil {
		reg.MustRegister(rows, batch, commit, queue)
	}
}

// Write stores one row (values in column order: a string for a text column,
// a time.Time for a timestamptz one) and returns once it is committed. It
// fails with ErrBusy at once when the queue is full, with ErrUnavailable
// when the database fails or ctx ends first, and with ErrRejected when the
// database refuses this row. It is Start then Wait.
func (w *Writer) Write(ctx context.Context, row []any) error {
	return w.Start(ctx, row).Wait()
}

// Pending is a row Start queued.
type Pending struct {
	p   *pending
	ctx context.Context
	w   *Writer
	err error // set when the row was never queued
}

// Start queues row and returns without waiting for its commit, so that a
// caller can record what it is about to hand out while it still makes it
// (the TSA signs a token while its row commits). The caller must Wait
// before answering; a row may thus be committed for something whose making
// then failed, never the other way round.
func (w *Writer) Start(ctx context.Context, row []any) *Pending {
	stored, err := w.storable(row)
	if err != nil {
		return &Pending{err: err}
	}
	p := &pending{ctx: ctx, row: stored, done: make(chan error, 1)}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return &Pending{err: ErrClosed}
	}
	if err := ctx.Err(); err != nil {
		w.metrics.canceled.Inc()
		return &Pending{err: fmt.Errorf("%w: %w", ErrUnavailable, err)}
	}
	select {
	case w.queue <- p:
		return &Pending{p: p, ctx: ctx, w: w}
	default:
		w.metrics.busy.Inc()
		return &Pending{err: fmt.Errorf("%w (%d rows wait for %s)", ErrBusy, cap(w.queue), w.table)}
	}
}

// Err is the error of a row that was never queued (the queue is full, the
// writer closed, the caller gone), known at once: a caller checks it before
// doing the work the row records. nil once the row is queued.
func (p *Pending) Err() error {
	if p.p == nil {
		return p.err
	}
	return nil
}

// Wait returns once the row is committed, with Write's errors.
func (p *Pending) Wait() error {
	if p.p == nil {
		return p.err
	}
	select {
	case err := <-p.p.done:
		return err
	case <-p.ctx.Done():
		// The row may still be committed; it was not acknowledged.
		return fmt.Errorf("%w: waiting for the %s row to commit: %w", ErrUnavailable, p.w.table, p.ctx.Err())
	}
}

// storable checks row against the columns and escapes its text values. It
// copies: the caller's slice is left as it was.
func (w *Writer) storable(row []any) ([]any, error) {
	if len(row) != len(w.columns) {
		return nil, fmt.Errorf("audit row for %s has %d values, want %d", w.table, len(row), len(w.columns))
	}
	out := make([]any, len(row))
	for i, c := range w.columns {
		switch v := row[i].(type) {
		case string:
			if c.Type != TextColumn {
				return nil, fmt.Errorf("audit column %s.%s takes a time.Time, got a string", w.table, c.Name)
			}
			out[i] = EscapeText(v)
		case time.Time:
			if c.Type != TimeColumn {
				return nil, fmt.Errorf("audit column %s.%s takes a string, got a time.Time", w.table, c.Name)
			}
			out[i] = v
		default:
			return nil, fmt.Errorf("audit column %s.%s: unsupported value type %T", w.table, c.Name, v)
		}
	}
	return out, nil
}

// Close stops accepting rows, commits every row already queued and returns
// when the committers are done. It may be called more than once.
func (w *Writer) Close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.closing)
	}
	w.mu.Unlock()
	w.wg.Wait()
}

// commitLoop takes a batch (whatever is queued, up to Batch rows), commits
// it and answers its rows, until closed and drained.
func (w *Writer) commitLoop() {
	defer w.wg.Done()
	batch := make([]*pending, 0, w.opts.Batch)
	for {
		var first *pending
		select {
		case first = <-w.queue:
		case <-w.closing:
			// No row enters the queue any more (Write checks closed under
			// mu): commit what is left, then stop.
			select {
			case first = <-w.queue:
			default:
				return
			}
		}
		batch = append(batch[:0], first)
	gather:
		for len(batch) < w.opts.Batch {
			select {
			case p := <-w.queue:
				batch = append(batch, p)
			default:
				break gather
			}
		}
		w.commitBatch(batch)
		clear(batch)
	}
}

// commitBatch commits the rows whose callers still wait and answers them.
func (w *Writer) commitBatch(batch []*pending) {
	live := batch[:0]
	for _, p := range batch {
		if err := p.ctx.Err(); err != nil {
			w.metrics.canceled.Inc()
			p.done <- fmt.Errorf("%w: %w", ErrUnavailable, err)
			continue
		}
		live = append(live, p)
	}
	if len(live) > 0 {
		w.commit(live)
	}
}

// commit inserts rows in one statement. When the database refuses the
// statement because of a row's content, it splits the rows in halves and
// commits each, so only the refused row fails (about 2·log2(n) statements
// for one bad row among n).
func (w *Writer) commit(rows []*pending) {
	start := time.Now()
	err := w.insertRows(rows)
	w.metrics.commitSeconds.Observe(time.Since(start).Seconds())
	switch {
	case err == nil:
		w.metrics.batchRows.Observe(float64(len(rows)))
		w.metrics.committed.Add(float64(len(rows)))
		for _, p := range rows {
			p.done <- nil
		}
	case rowSpecific(err) && len(rows) > 1:
		w.logger.Warn("the database refused a batch of audit rows for a row's content; committing it in halves", "rows", len(rows), "err", err)
		mid := len(rows) / 2
		w.commit(rows[:mid])
		w.commit(rows[mid:])
	case rowSpecific(err):
		w.metrics.rejected.Inc()
		w.logger.Error("the database refused an audit row", "row", fmt.Sprintf("%q", rows[0].row), "err", err)
		rows[0].done <- fmt.Errorf("%w: %w", ErrRejected, err)
	case unavailable(err):
		w.metrics.unavailable.Add(float64(len(rows)))
		w.logger.Warn("committing audit rows failed: database unavailable", "rows", len(rows), "err", err)
		for _, p := range rows {
			p.done <- fmt.Errorf("%w: committing %d rows to %s: %w", ErrUnavailable, len(rows), w.table, err)
		}
	default:
		w.metrics.failed.Add(float64(len(rows)))
		w.logger.Error("committing audit rows failed", "rows", len(rows), "err", err)
		for _, p := range rows {
			p.done <- fmt.Errorf("committing %d audit rows to %s: %w", len(rows), w.table, err)
		}
	}
}

// insertRows runs the batch's INSERT on its own deadline: the callers'
// contexts decide only whether they still wait for the answer.
func (w *Writer) insertRows(rows []*pending) error {
	args := make([]any, len(w.columns))
	for i, c := range w.columns {
		switch c.Type {
		case TextColumn:
			vals := make([]string, len(rows))
			for j, p := range rows {
				vals[j] = p.row[i].(string)
			}
			args[i] = vals
		case TimeColumn:
			vals := make([]time.Time, len(rows))
			for j, p := range rows {
				vals[j] = p.row[i].(time.Time)
			}
			args[i] = vals
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.opts.CommitTimeout)
	defer cancel()
	// One statement outside a transaction block is its own transaction:
	// Exec returns once PostgreSQL has committed it.
	_, err := w.pool.Exec(ctx, w.insert, args...)
	return err
}

// rowSpecific tells whether PostgreSQL refused a statement because of the
// values of some row: a data exception (class 22, e.g. a byte sequence
// invalid in the database's encoding), an integrity constraint (23, e.g. a
// serial already stored) or a program limit (54, e.g. a value too long for
// its index).
func rowSpecific(err error) bool {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return false
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch sqlStateClass(pe) {
	case "22", "23", "54":
		return true
	}
	return false
}

// unavailable tells whether err is the database being unreachable, going
// away, overloaded or too slow, rather than refusing the statement: no
// connection (ConnectError), a connection that broke, a timeout, or
// PostgreSQL saying so (class 08 connection exception, 40 transaction
// rollback, 53 insufficient resources, 57 operator intervention such as a
// shutdown, 58 system error).
func unavailable(err error) bool {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch sqlStateClass(pe) {
		case "08", "40", "53", "57", "58":
			return true
		}
		return false
	}
	// Anything that is not PostgreSQL's answer to the statement: the
	// network, the deadline, a closed pool.
	return true
}

// sqlStateClass is the first two characters of the error's SQLSTATE.
func sqlStateClass(pe *pgconn.PgError) string {
	if len(pe.Code) < 2 {
		return ""
	}
	return pe.Code[:2]
}
