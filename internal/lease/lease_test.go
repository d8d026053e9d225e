package lease

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/signet-dev/signet/internal/db/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// One holder at a time: a second server is refused, naming the first,
// until the first gives the lease up; each take bumps the token.
func TestOneHolder(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	a, err := Acquire(ctx, pool, Options{Holder: "a", Address: "https://a.example"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(ctx, pool, Options{Holder: "b", Address: "https://b.example", Wait: 100 * time.Millisecond})
	var held *HeldError
	if !errors.As(err, &held) || held.Holder != "a" || !strings.Contains(err.Error(), "(a, at https://a.example)") {
		t.Fatalf("a second holder: %v", err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := Acquire(ctx, pool, Options{Holder: "b", Address: "https://b.example"})
	if err != nil {
		t.Fatalf("after the first gave it up: %v", err)
	}
	defer b.Release(ctx) //nolint:errcheck
	if b.Token() == a.Token() {
		t.Fatalf("the token stayed %d across takes", b.Token())
	}
}

// A holder that dies without giving the lease up (here: stops renewing)
// lets it expire; the next server waits for that, takes it, and the old
// holder learns at its next renewal that it lost it.
func TestExpiryAndLoss(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	lost := make(chan struct{})
	a, err := Acquire(ctx, pool, Options{Holder: "a", Address: "a", TTL: time.Second, OnLost: func() { close(lost) }})
	if err != nil {
		t.Fatal(err)
	}
	// a is paused past its expiry: its renewals stop, its lease runs out.
	a.closed.Do(func() { close(a.stop) })
	<-a.done
	if _, err := pool.Exec(ctx, "UPDATE signet_writer_lease SET expires_at = now() - interval '1 second'"); err != nil {
		t.Fatal(err)
	}
	b, err := Acquire(ctx, pool, Options{Holder: "b", Address: "b", TTL: time.Second, Wait: 5 * time.Second})
	if err != nil {
		t.Fatalf("taking an expired lease: %v", err)
	}
	defer b.Release(ctx) //nolint:errcheck
	if b.Token() != a.Token()+1 {
		t.Fatalf("tokens %d then %d", a.Token(), b.Token())
	}
	// a wakes up: its next renewal finds the lease taken.
	if !a.renewOnce() {
		t.Fatal("the old holder's renewal did not find the lease lost")
	}
	select {
	case <-lost:
	default:
		t.Fatal("OnLost was not called")
	}
	if !a.Lost() {
		t.Fatal("Lost() is false after OnLost")
	}
	// Giving up a lost lease leaves the new holder's alone.
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	var holder string
	if err := pool.QueryRow(ctx, "SELECT holder FROM signet_writer_lease").Scan(&holder); err != nil || holder != "b" {
		t.Fatalf("holder %q (%v) after the old one released", holder, err)
	}
}

// A batch's fence (signet_check_writer, FOR KEY SHARE) lets renewals
// through but holds off a takeover until the batch commits; a take that
// meets the lock gives up as "held" instead of waiting for it.
func TestFenceHoldsOffATakeover(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	a, err := Acquire(ctx, pool, Options{Holder: "a", Address: "a"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release(ctx) //nolint:errcheck
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	if _, err := tx.Exec(ctx, "SELECT signet_check_writer($1, $2)", a.Token(), "a"); err != nil {
		t.Fatalf("the holder's fence: %v", err)
	}
	renewed := make(chan bool, 1)
	go func() { renewed <- a.renewOnce() }()
	select {
	case lost := <-renewed:
		if lost {
			t.Fatal("a renewal beside a batch found the lease lost")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a renewal waits for a batch under way: under load the lease would expire")
	}
	// Expired meanwhile (a paused holder): a take must still not slip in
	// before the batch's commit.
	if _, err := pool.Exec(ctx, "UPDATE signet_writer_lease SET expires_at = now() - interval '1 second'"); err != nil {
		t.Fatal(err)
	}
	var held *HeldError
	if _, err := Acquire(ctx, pool, Options{Holder: "b", Address: "b"}); !errors.As(err, &held) {
		t.Fatalf("a take while the holder's batch is under way: %v, want HeldError", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("the holder's batch: %v", err)
	}
	b, err := Acquire(ctx, pool, Options{Holder: "b", Address: "b"})
	if err != nil {
		t.Fatalf("after the batch committed: %v", err)
	}
	defer b.Release(ctx) //nolint:errcheck
	if _, err := pool.Exec(ctx, "SELECT signet_check_writer($1, $2)", a.Token(), "a"); err == nil {
		t.Fatal("the old holder's fence passed after the takeover")
	}
}
