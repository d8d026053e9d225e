package audit_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/signet-dev/signet/internal/audit"
	"github.com/signet-dev/signet/internal/db/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// caColumns is the CA's audit table as internal/server writes it.
var caColumns = []audit.Column{
	audit.Text("serial"), audit.Time("issued_at"), audit.Time("not_after"), audit.Text("identity"),
	audit.Text("issuer"), audit.Text("subject"), audit.Text("key_fingerprint"),
}

func caRow(serial, identity, subject string) []any {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return []any{serial, now, now.Add(10 * time.Minute), identity, "https://issuer.example", subject, strings.Repeat("ab", 32)}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newWriter is a writer on the test's database, with its metrics in reg.
func newWriter(t *testing.T, pool *pgxpool.Pool, opts audit.Options) (*audit.Writer, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	w := audit.New(pool, "ca_certificates", caColumns, quiet, opts)
	t.Cleanup(w.Close)
	return w, reg
}

// metricValue is the value of the one sample of name in reg (a gauge, a
// counter with the given outcome label, or a histogram's sample count).
func metricValue(t *testing.T, reg *prometheus.Registry, name, outcome string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			match := outcome == ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					match = true
				}
			}
			if !match {
				continue
			}
			switch {
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return 0
}

// waitFor polls cond until it holds; the test's own timeout bounds it.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if t.Context().Err() != nil {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// admin holds two connections beside the pool's: one to the test's
// database, to lock the audit table, and one to the maintenance database,
// to take the test's database away from every other session.
type admin struct {
	conn, maint *pgx.Conn
	name        string
}

func newAdmin(t *testing.T, pool *pgxpool.Pool) *admin {
	t.Helper()
	connect := func(database string) *pgx.Conn {
		cfg := pool.Config().ConnConfig.Copy()
		if database != "" {
			cfg.Database = database
		}
		conn, err := pgx.ConnectConfig(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		// Closed before dbtest drops the database (cleanups run last first).
		t.Cleanup(func() { conn.Close(context.Background()) })
		return conn
	}
	return &admin{conn: connect(""), maint: connect("postgres"), name: pool.Config().ConnConfig.Database}
}

func (a *admin) exec(t *testing.T, sql string) {
	t.Helper()
	if _, err := a.conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// outage refuses new connections to the database and ends every session
// but this one: what the server sees when PostgreSQL goes away.
func (a *admin) outage(t *testing.T) {
	t.Helper()
	if _, err := a.maint.Exec(context.Background(), "ALTER DATABASE "+pgx.Identifier{a.name}.Sanitize()+" ALLOW_CONNECTIONS false"); err != nil {
		t.Fatalf("refusing connections: %v", err)
	}
	if _, err := a.maint.Exec(context.Background(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> $2", a.name, a.conn.PgConn().PID()); err != nil {
		t.Fatalf("ending the sessions: %v", err)
	}
}

func (a *admin) recover(t *testing.T) {
	t.Helper()
	if _, err := a.maint.Exec(context.Background(), "ALTER DATABASE "+pgx.Identifier{a.name}.Sanitize()+" ALLOW_CONNECTIONS true"); err != nil {
		t.Fatalf("allowing connections again: %v", err)
	}
}

// lockTable makes every insert into ca_certificates wait until unlock, so
// the rows written meanwhile queue up and go into one batch.
func (a *admin) lockTable(t *testing.T) (unlock func()) {
	a.exec(t, "BEGIN")
	a.exec(t, "LOCK TABLE ca_certificates IN ACCESS EXCLUSIVE MODE")
	return func() { a.exec(t, "COMMIT") }
}

// waitingOnLock is how many other sessions wait for a lock.
func (a *admin) waitingOnLock(t *testing.T) int {
	t.Helper()
	var n int
	if err := a.conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func storedCount(t *testing.T, pool *pgxpool.Pool, serials []string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM ca_certificates WHERE serial = ANY($1)", serials).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// batched writes rows while the table is locked, so that they are all
// committed in one batch (checked), and returns each Write's error.
func batched(t *testing.T, pool *pgxpool.Pool, rows [][]any) []error {
	t.Helper()
	w, reg := newWriter(t, pool, audit.Options{Committers: 1})
	a := newAdmin(t, pool)
	unlock := a.lockTable(t)
	// A first row takes the only committer and waits on the lock ...
	first := make(chan error, 1)
	go func() { first <- w.Write(context.Background(), caRow("f0", "first@example.com", "first")) }()
	waitFor(t, "the first insert to wait on the lock", func() bool { return a.waitingOnLock(t) == 1 })
	// ... while the rows under test queue up behind it.
	errs := make([]error, len(rows))
	var wg sync.WaitGroup
	for i, row := range rows {
		wg.Go(func() { errs[i] = w.Write(context.Background(), row) })
	}
	waitFor(t, "the rows to queue", func() bool {
		return metricValue(t, reg, "signet_audit_queue_length", "") == float64(len(rows))
	})
	unlock()
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatalf("first row: %v", err)
	}
	// The first statement carried the whole queue (a bad row adds the
	// statements of its bisection).
	if got := metricValue(t, reg, "signet_audit_commit_seconds", ""); got < 2 {
		t.Fatalf("%v statements, want the first row's and the batch's", got)
	}
	return errs
}

func TestUnsafeValuesDoNotFailTheirBatch(t *testing.T) {
	pool := dbtest.NewPool(t)
	values := []string{
		"alice@example.com",
		"nul\x00byte",
		"\x00",
		"invalid \xff\xfe UTF-8",
		"truncated \xe2\x82",
		`back\slash and \x00 spelled out`,
		"ünïcödé 日本 \U0001F600",
		"tab\tnewline\ncarriage\r",
	}
	var rows [][]any
	for i, v := range values {
		rows = append(rows, caRow(fmt.Sprintf("a%02d", i), v, v+" (subject)"))
	}
	for i, err := range batched(t, pool, rows) {
		if err != nil {
			t.Errorf("row %q: %v", values[i], err)
		}
	}
	for i, v := range values {
		var identity, subject string
		if err := pool.QueryRow(context.Background(), "SELECT identity, subject FROM ca_certificates WHERE serial = $1", fmt.Sprintf("a%02d", i)).Scan(&identity, &subject); err != nil {
			t.Fatalf("row %q not stored: %v", v, err)
		}
		if identity != audit.EscapeText(v) {
			t.Errorf("identity stored as %q, want %q", identity, audit.EscapeText(v))
		}
		if got, err := audit.UnescapeText(subject); err != nil || got != v+" (subject)" {
			t.Errorf("subject %q reads back as %q, %v", subject, got, err)
		}
	}
}

// A row PostgreSQL refuses even escaped (an identity too long for its
// index) fails alone: the other rows of its batch are committed.
func TestRefusedRowFailsAlone(t *testing.T) {
	pool := dbtest.NewPool(t)
	var long strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&long, "%08x", uint32(i)*2654435761) // incompressible enough for the index
	}
	rows := [][]any{caRow("b0", "a@example.com", "a"), caRow("b1", long.String(), "b"), caRow("b2", "c\x00@example.com", "c"), caRow("b3", "d@example.com", "d")}
	errs := batched(t, pool, rows)
	for i, err := range errs {
		switch {
		case i == 1 && !errors.Is(err, audit.ErrRejected):
			t.Errorf("the long identity: %v, want ErrRejected", err)
		case i == 1:
			if _, temporary := audit.RetryAfter(err); temporary {
				t.Errorf("a refused row is reported as temporary: %v", err)
			}
		case err != nil:
			t.Errorf("row %d: %v", i, err)
		}
	}
	if n := storedCount(t, pool, []string{"b0", "b2", "b3"}); n != 3 {
		t.Fatalf("%d of the 3 good rows stored", n)
	}
	if n := storedCount(t, pool, []string{"b1"}); n != 0 {
		t.Fatal("the refused row is stored")
	}
}

// Every acknowledged row is in the table, across an outage of the database:
// Writes during the outage fail with ErrUnavailable and store nothing, and
// Writes after it succeed again.
func TestAcknowledgedRowsAreStored(t *testing.T) {
	pool := dbtest.NewPool(t)
	w, _ := newWriter(t, pool, audit.Options{})
	a := newAdmin(t, pool)
	var mu sync.Mutex
	var acked, refused []string
	phase := func(name string, perWorker int) {
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Go(func() {
				for i := range perWorker {
					serial := fmt.Sprintf("%s-%02d-%03d", name, g, i)
					err := w.Write(context.Background(), caRow(serial, serial+"@example.com", serial))
					mu.Lock()
					if err == nil {
						acked = append(acked, serial)
					} else {
						if _, temporary := audit.RetryAfter(err); !errors.Is(err, audit.ErrUnavailable) || !temporary {
							t.Errorf("%s: %v, want ErrUnavailable", serial, err)
						}
						refused = append(refused, serial)
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	phase("before", 40)
	if len(acked) != 16*40 || len(refused) != 0 {
		t.Fatalf("before the outage: %d acknowledged, %d refused", len(acked), len(refused))
	}
	a.outage(t)
	phase("during", 5)
	if len(refused) != 16*5 {
		t.Fatalf("during the outage %d of %d writes were refused", len(refused), 16*5)
	}
	a.recover(t)
	phase("after", 40)
	if len(acked) != 2*16*40 {
		t.Fatalf("after the outage: %d acknowledged in all, want %d", len(acked), 2*16*40)
	}
	if n := storedCount(t, pool, acked); n != len(acked) {
		t.Fatalf("%d of %d acknowledged rows stored", n, len(acked))
	}
	if n := storedCount(t, pool, refused); n != 0 {
		t.Fatalf("%d rows stored that were refused", n)
	}
}

// closedPortPool is a pool for a PostgreSQL that is not there: nothing
// listens on its port.
func closedPortPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	pool, err := pgxpool.New(context.Background(), "postgres://signet@"+addr+"/signet?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// silentPool is a pool for a PostgreSQL that accepts connections and never
// answers (a hung server or a dropped network). PostgreSQL itself cannot be
// made to hang this way here, so a listener stands in for it. hangup closes
// the listener and its connections; a test registers it as a cleanup after
// its writer's, so the writer's Close does not wait out the commit timeout.
func silentPool(t *testing.T) (pool *pgxpool.Pool, accepted <-chan struct{}, hangup func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	acc := make(chan struct{}, 16)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			select {
			case acc <- struct{}{}:
			default:
			}
		}
	}()
	pool, err = pgxpool.New(context.Background(), "postgres://signet@"+l.Addr().String()+"/signet?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	hangup = func() {
		once.Do(func() {
			l.Close()
			mu.Lock()
			for _, c := range conns {
				c.Close()
			}
			mu.Unlock()
		})
	}
	t.Cleanup(func() { hangup(); pool.Close() })
	return pool, acc, hangup
}

func TestUnreachableDatabase(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		w, reg := newWriter(t, closedPortPool(t), audit.Options{})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		err := w.Write(ctx, caRow("c0", "a@example.com", "a"))
		if !errors.Is(err, audit.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Write: %v, want ErrUnavailable from the failed connection, before the deadline", err)
		}
		if s, temporary := audit.RetryAfter(err); !temporary || s <= 0 {
			t.Fatalf("RetryAfter = %d, %v", s, temporary)
		}
		if got := metricValue(t, reg, "signet_audit_rows_total", "committed"); got != 0 {
			t.Fatalf("%v rows committed", got)
		}
	})
	t.Run("no answer", func(t *testing.T) {
		pool, _, hangup := silentPool(t)
		w, _ := newWriter(t, pool, audit.Options{CommitTimeout: time.Minute})
		t.Cleanup(hangup)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		err := w.Write(ctx, caRow("c1", "a@example.com", "a"))
		if !errors.Is(err, audit.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Write: %v, want ErrUnavailable at the caller's deadline", err)
		}
	})
}

func TestFullQueueIsBusyAtOnce(t *testing.T) {
	pool, accepted, hangup := silentPool(t)
	w, reg := newWriter(t, pool, audit.Options{Queue: 1, Committers: 1, CommitTimeout: time.Minute})
	t.Cleanup(hangup)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	results := make(chan error, 2)
	// The first row takes the committer, which waits for the database ...
	go func() { results <- w.Write(ctx, caRow("d0", "a@example.com", "a")) }()
	<-accepted
	// ... the second fills the queue ...
	go func() { results <- w.Write(ctx, caRow("d1", "b@example.com", "b")) }()
	waitFor(t, "the second row to queue", func() bool { return metricValue(t, reg, "signet_audit_queue_length", "") == 1 })
	// ... and the third is refused at once: without a deadline, waiting
	// would hang the test.
	err := w.Write(context.Background(), caRow("d2", "c@example.com", "c"))
	if !errors.Is(err, audit.ErrBusy) {
		t.Fatalf("Write on a full queue: %v, want ErrBusy", err)
	}
	if s, temporary := audit.RetryAfter(err); !temporary || s != 1 {
		t.Fatalf("RetryAfter = %d, %v; want 1, true", s, temporary)
	}
	if got := metricValue(t, reg, "signet_audit_rows_total", "busy"); got != 1 {
		t.Fatalf("busy counter %v", got)
	}
	cancel()
	for range 2 {
		if err := <-results; !errors.Is(err, audit.ErrUnavailable) {
			t.Fatalf("waiting Write after cancel: %v", err)
		}
	}
}

// Close commits the rows already queued before it returns; later Writes
// get ErrClosed.
func TestCloseCommitsQueuedRows(t *testing.T) {
	pool := dbtest.NewPool(t)
	w, reg := newWriter(t, pool, audit.Options{Committers: 1})
	a := newAdmin(t, pool)
	unlock := a.lockTable(t)
	const n = 50
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = w.Write(context.Background(), caRow(fmt.Sprintf("e%02d", i), "a@example.com", "a")) })
	}
	waitFor(t, "the rows to be taken or queued", func() bool {
		return a.waitingOnLock(t) == 1 && metricValue(t, reg, "signet_audit_queue_length", "") == n-1
	})
	closed := make(chan struct{})
	go func() { w.Close(); close(closed) }()
	// A Write with a context already done is never queued: it reports
	// ErrClosed once Close has begun, ErrUnavailable before.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	waitFor(t, "Close to refuse new rows", func() bool {
		return errors.Is(w.Write(done, caRow("late", "a@example.com", "a")), audit.ErrClosed)
	})
	unlock()
	<-closed
	wg.Wait()
	var serials []string
	for i, err := range errs {
		if err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		serials = append(serials, fmt.Sprintf("e%02d", i))
	}
	if got := storedCount(t, pool, serials); got != n {
		t.Fatalf("%d of %d rows stored after Close", got, n)
	}
	if err := w.Write(context.Background(), caRow("late", "a@example.com", "a")); !errors.Is(err, audit.ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
}

func TestWriteChecksTheRowShape(t *testing.T) {
	w, _ := newWriter(t, closedPortPool(t), audit.Options{})
	now := time.Now()
	for _, row := range [][]any{
		{"too", "short"},
		{"s", "not a time", now, "i", "i", "s", "k"},
		{"s", now, now, 42, "i", "s", "k"},
		{now, now, now, "i", "i", "s", "k"},
	} {
		err := w.Write(context.Background(), row)
		if err == nil || errors.Is(err, audit.ErrUnavailable) {
			t.Errorf("Write(%v): %v, want a shape error before any database work", row, err)
		}
	}
}
