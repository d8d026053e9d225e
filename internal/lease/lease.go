// Package lease gives one signet-server at a time the right to commit to a
// database's trees: the writer lease, one row (signet_writer_lease) that a
// server takes at start-up when it is free or has expired, renews while it
// runs and gives up when it stops. Each take bumps a fencing token, which
// every batch's transaction checks (pgstore.Store.Fence), so a server that
// lost the lease without knowing it (paused past the expiry, cut off from
// the database) cannot commit beside the one that took it over.
//
// A second server started on the same database waits for the lease up to
// Options.Wait (a holder killed without giving it up lets it expire after
// the TTL), then refuses to start, naming the holder, unless it is one of
// several replicas (internal/server.Replica), which forward to the holder
// and take the lease over when it expires.
package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Defaults of Options.
const (
	DefaultTTL = 5 * time.Second
	// DefaultWait outlasts a lease a killed holder left: start-up after a
	// crash waits for it instead of failing.
	DefaultWait = DefaultTTL + 2*time.Second
)

// Options describe a take of the lease.
type Options struct {
	// Holder names this server uniquely (host, process, start).
	Holder string
	// Address is where this server answers: for the message a refused
	// server prints, and for a replica the address the others forward to.
	Address string
	// Replica says the holder is one of several replicas, which forward
	// requests to Address.
	Replica bool
	TTL     time.Duration
	Wait    time.Duration
	Logger  *slog.Logger
	// OnLost is called once if the lease is found taken by another server.
	OnLost func()
}

// Lease is the writer lease while this server holds it.
type Lease struct {
	pool   *pgxpool.Pool
	opts   Options
	token  int64
	lost   atomic.Bool
	stop   chan struct{}
	done   chan struct{}
	closed sync.Once
}

// HeldError is a lease another server holds.
type HeldError struct {
	Holder, Address string
	Replica         bool
	Expires         time.Time
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("another signet-server (%s, at %s) holds this database's writer lease until %s: one server writes to a database; stop it, wait for its lease to expire if it died, or set replicas.advertise_url on every server to run them as replicas",
		e.Holder, e.Address, e.Expires.UTC().Format(time.RFC3339))
}

// Acquire takes the lease, waiting up to opts.Wait for a holder's to be
// given up or to expire, and renews it until Release.
func Acquire(ctx context.Context, pool *pgxpool.Pool, opts Options) (*Lease, error) {
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.Wait < 0 {
		opts.Wait = 0
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	deadline := time.Now().Add(opts.Wait)
	for {
		token, err := take(ctx, pool, opts)
		if err == nil {
			l := &Lease{pool: pool, opts: opts, token: token, stop: make(chan struct{}), done: make(chan struct{})}
			go l.renew()
			return l, nil
		}
		var held *HeldError
		if !errors.As(err, &held) || time.Now().After(deadline) {
			return nil, err
		}
		opts.Logger.InfoContext(ctx, "waiting for the database's writer lease", "holder", held.Holder, "expires", held.Expires)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(min(time.Until(deadline), 250*time.Millisecond, max(time.Until(held.Expires), 10*time.Millisecond))):
		}
	}
}

// take takes the lease if it is free, expired or already this holder's.
// A lock on the row (a batch of the holder's under way, or one left open
// by a holder paused mid-transaction) counts as held: the take gives up
// after a second instead of waiting for it.
func take(ctx context.Context, pool *pgxpool.Pool, opts Options) (int64, error) {
	// A look first, without a lock: a lease held by another and not yet
	// expired is the common answer (replicas ask every TTL/4), and the
	// take's row lock would make the holder's batches wait on their fence.
	held, err := read(ctx, pool)
	switch {
	case err != nil && !errors.Is(err, pgx.ErrNoRows):
		return 0, err
	case err == nil && !held.expired && held.Holder != opts.Holder:
		return 0, &held.HeldError
	}
	var token int64
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '1s'"); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `INSERT INTO signet_writer_lease (holder, address, replica, token, expires_at)
			VALUES ($1, $2, $3, 1, clock_timestamp() + make_interval(secs => $4))
			ON CONFLICT (one) DO UPDATE SET holder = EXCLUDED.holder, address = EXCLUDED.address, replica = EXCLUDED.replica,
				token = signet_writer_lease.token + 1, acquired_at = clock_timestamp(), expires_at = EXCLUDED.expires_at
			WHERE signet_writer_lease.expires_at < clock_timestamp() OR signet_writer_lease.holder = EXCLUDED.holder
			RETURNING token`, opts.Holder, opts.Address, opts.Replica, opts.TTL.Seconds()).Scan(&token)
	})
	if err == nil {
		return token, nil
	}
	var pe *pgconn.PgError
	locked := errors.As(err, &pe) && pe.Code == pgerrcode.LockNotAvailable
	if !errors.Is(err, pgx.ErrNoRows) && !locked {
		return 0, fmt.Errorf("taking the database's writer lease: %w", err)
	}
	if held, err = read(ctx, pool); err != nil {
		return 0, err
	}
	return 0, &held.HeldError
}

type leaseRow struct {
	HeldError
	expired bool
}

// Current is the lease as it stands (its holder may have let it expire),
// read without a lock; pgx.ErrNoRows if no server ever took it.
func Current(ctx context.Context, pool *pgxpool.Pool) (HeldError, error) {
	r, err := read(ctx, pool)
	return r.HeldError, err
}

// read is the lease as it stands, without locking it.
func read(ctx context.Context, pool *pgxpool.Pool) (leaseRow, error) {
	var r leaseRow
	err := pool.QueryRow(ctx, "SELECT holder, address, replica, expires_at, expires_at < clock_timestamp() FROM signet_writer_lease").
		Scan(&r.Holder, &r.Address, &r.Replica, &r.Expires, &r.expired)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return r, fmt.Errorf("reading the database's writer lease: %w", err)
	}
	return r, err
}

// Token is the fencing token of this take of the lease.
func (l *Lease) Token() int64 { return l.token }

// Holder is the name this server holds the lease under.
func (l *Lease) Holder() string { return l.opts.Holder }

// Lost says whether another server took the lease from this one.
func (l *Lease) Lost() bool { return l.lost.Load() }

// renew extends the lease every TTL/4 until Release, and stops at the
// first sign another server took it.
func (l *Lease) renew() {
	defer close(l.done)
	t := time.NewTicker(l.opts.TTL / 4)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		if l.renewOnce() {
			return
		}
	}
}

// renewOnce extends the lease and says whether it was found lost. A
// failed renewal (the database unreachable) is retried at the next tick:
// if nobody took the lease meanwhile, the token still matches and that
// renewal extends it.
func (l *Lease) renewOnce() (lost bool) {
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.TTL)
	defer cancel()
	tag, err := l.pool.Exec(ctx, `UPDATE signet_writer_lease SET expires_at = clock_timestamp() + make_interval(secs => $3)
		WHERE holder = $1 AND token = $2`, l.opts.Holder, l.token, l.opts.TTL.Seconds())
	switch {
	case err != nil:
		l.opts.Logger.Warn("renewing the database's writer lease", "err", err)
		return false
	case tag.RowsAffected() == 0:
		l.lost.Store(true)
		l.opts.Logger.Error("another signet-server took this database's writer lease: this one can no longer commit to the log")
		if l.opts.OnLost != nil {
			l.opts.OnLost()
		}
		return true
	}
	return false
}

// Release stops renewing and gives the lease up, so that the next server
// need not wait for it to expire.
func (l *Lease) Release(ctx context.Context) error {
	l.closed.Do(func() { close(l.stop) })
	<-l.done
	if l.lost.Load() {
		return nil
	}
	// Expired, not deleted: the next take bumps the token, which must
	// never come back to one a former holder had.
	if _, err := l.pool.Exec(ctx, "UPDATE signet_writer_lease SET expires_at = clock_timestamp() - interval '1 microsecond' WHERE holder = $1 AND token = $2", l.opts.Holder, l.token); err != nil {
		return fmt.Errorf("giving up the database's writer lease: %w", err)
	}
	return nil
}
