package trust

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/signet-dev/signet/internal/db/dbtest"
	"github.com/signet-dev/signet/internal/pkigen"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func newChain(t *testing.T) *Chain {
	t.Helper()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	certs, err := pkigen.TSAChain(pkigen.Names{Organization: "T", Prefix: "T"}, rootKey, key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return &Chain{Certificates: certs, Start: certs[0].NotBefore}
}

func TestRecordChainRotation(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	a, b := newChain(t), newChain(t)
	notBefore := a.Start
	t0 := time.Now()

	past, err := RecordChain(ctx, pool, "tsa", a, t0, true)
	if err != nil || len(past) != 0 || !a.Start.Equal(notBefore.Truncate(time.Microsecond)) {
		t.Fatalf("first chain: past %d, start %v (want notBefore %v), %v", len(past), a.Start, notBefore, err)
	}
	// The same chain again (a restart) changes nothing.
	if past, err := RecordChain(ctx, pool, "tsa", &Chain{Certificates: a.Certificates, Start: time.Now()}, t0.Add(time.Hour), true); err != nil || len(past) != 0 {
		t.Fatalf("restart: %d past chains, %v", len(past), err)
	}
	// Another component is independent.
	if past, err := RecordChain(ctx, pool, "ca", newChain(t), t0, true); err != nil || len(past) != 0 {
		t.Fatalf("ca: %d past chains, %v", len(past), err)
	}

	rot := t0.Add(2 * time.Hour)
	// Not allowed to replace the chain in use: refused, nothing written.
	var changed *ChainChangedError
	if _, err := RecordChain(ctx, pool, "tsa", b, rot, false); !errors.As(err, &changed) || changed.Component != "tsa" {
		t.Fatalf("replacing without leave: %v", err)
	}
	if past, err := RecordChain(ctx, pool, "tsa", &Chain{Certificates: a.Certificates}, rot, false); err != nil || len(past) != 0 {
		t.Fatalf("the chain in use, after a refused replacement: %v %d", err, len(past))
	}
	past, err = RecordChain(ctx, pool, "tsa", b, rot, true)
	if err != nil || len(past) != 1 {
		t.Fatalf("rotation: %d past chains, %v", len(past), err)
	}
	if !b.Start.Equal(rot.Truncate(time.Second)) || !past[0].End.Equal(rot.Truncate(time.Second).Add(time.Second)) || !past[0].Certificates[0].Equal(a.Certificates[0]) {
		t.Fatalf("rotation windows: new start %v, old %v-%v (rotated at %v)", b.Start, past[0].Start, past[0].End, rot)
	}
	if len(past[0].Certificates) != 2 {
		t.Fatalf("retired chain has %d certificates, want 2", len(past[0].Certificates))
	}

	// Going back to a retired chain is refused.
	if _, err := RecordChain(ctx, pool, "tsa", &Chain{Certificates: a.Certificates}, rot.Add(time.Hour), true); err == nil || !strings.Contains(err.Error(), "retired") {
		t.Fatalf("returning to a retired chain: %v", err)
	}
}
