package rotation

import (
	"context"
	"testing"

	"github.com/signet-dev/signet/internal/db/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// One open request per log or chain: a new one replaces the last, only the
// open one allows the change, and it closes once carried out.
func TestRequests(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.NewPool(t) // migrated
	mustAllow := func(what, id string, want bool) {
		t.Helper()
		if got, err := Requested(ctx, pool, what, id); err != nil || got != want {
			t.Fatalf("Requested(%s, %s) = %v, %v; want %v", what, id, got, err, want)
		}
	}
	if err := Request(ctx, pool, "rekor", "k2"); err != nil {
		t.Fatal(err)
	}
	if err := Request(ctx, pool, "rekor", "k3"); err != nil {
		t.Fatal(err)
	}
	if err := Request(ctx, pool, "ca-chain", "c2"); err != nil {
		t.Fatal(err)
	}
	mustAllow("rekor", "k2", false) // given up for k3
	mustAllow("rekor", "k3", true)
	mustAllow("ct", "k3", false) // another log
	mustAllow("ca-chain", "c2", true)
	if err := Done(ctx, pool, "rekor", "k3"); err != nil {
		t.Fatal(err)
	}
	mustAllow("rekor", "k3", false)
	if open, err := Open(ctx, pool, "rekor"); err != nil || open != "" {
		t.Fatalf("open rekor request after Done: %q %v", open, err)
	}
	// Asking again for a key renews its request.
	if err := Request(ctx, pool, "rekor", "k2"); err != nil {
		t.Fatal(err)
	}
	mustAllow("rekor", "k2", true)
}
