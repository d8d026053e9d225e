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
	// Pause a's renewals: it is "paused past the expiry".
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
	select {
	case <-lost:
	case <-time.After(10 * time.Second):
		t.Fatal("the old holder never learnt it lost the lease")
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
