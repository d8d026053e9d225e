package log

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/signet-dev/signet/internal/db/dbtest"
	"github.com/signet-dev/signet/log/pgstore"
)

// queuedLog opens a log as the CT log is opened (entries acknowledged once
// queued), whose ticker never integrates within a test: only a stop, an
// Open or a rotation can.
func queuedLog(t *testing.T, pool *pgxpool.Pool, key *ecdsa.PrivateKey, logs ...io.Writer) *Log {
	t.Helper()
	logger := slog.Default()
	for _, w := range logs {
		logger = slog.New(slog.NewTextHandler(w, nil))
	}
	l, err := Open(context.Background(), pgstore.New(pool), Config{
		Name: "ct", SignerName: "ct.test", Signer: key, RotateOnKeyChange: true, IntegrateEvery: time.Hour, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// enqueue acknowledges n leaves as the CT log does (queued, not yet
// integrated) and returns their leaf hashes.
func enqueue(t *testing.T, l *Log, prefix string, n int) [][]byte {
	t.Helper()
	var hashes [][]byte
	for i := range n {
		v := fmt.Appendf(nil, "%s %d", prefix, i)
		// Named otherwise than by its hash, as a CT entry is.
		if _, dup, err := l.EnqueueIdentified(context.Background(), LeafHash(append([]byte("identity "), v...)), v, nil); err != nil || dup {
			t.Fatalf("enqueue %d: duplicate %v, %v", i, dup, err)
		}
		hashes = append(hashes, LeafHash(v))
	}
	return hashes
}

// assertIntegrated checks, on the tables alone, that tree has nothing
// queued, that every one of hashes is sequenced, and that its latest tree
// head is the root of its sequenced leaves.
func assertIntegrated(t *testing.T, pool *pgxpool.Pool, treeID int64, hashes [][]byte) {
	t.Helper()
	ctx := context.Background()
	var queued int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM Unsequenced WHERE TreeId = $1", treeID).Scan(&queued); err != nil {
		t.Fatal(err)
	}
	if queued != 0 {
		t.Fatalf("tree %d: %d acknowledged leaves still queued", treeID, queued)
	}
	rows, err := pool.Query(ctx, "SELECT MerkleLeafHash FROM SequencedLeafData WHERE TreeId = $1 ORDER BY SequenceNumber", treeID)
	if err != nil {
		t.Fatal(err)
	}
	seq, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		t.Fatal(err)
	}
	sequenced := map[string]bool{}
	byIndex := map[uint64][]byte{}
	for i, h := range seq {
		sequenced[string(h)] = true
		byIndex[uint64(i)] = h
	}
	for i, h := range hashes {
		if !sequenced[string(h)] {
			t.Fatalf("tree %d: acknowledged leaf %d (%x) is not in the tree", treeID, i, h)
		}
	}
	var size int64
	var root []byte
	if err := pool.QueryRow(ctx, "SELECT TreeSize, RootHash FROM TreeHead WHERE TreeId = $1 ORDER BY TreeSize DESC, TreeHeadTimestamp DESC LIMIT 1", treeID).Scan(&size, &root); err != nil {
		t.Fatal(err)
	}
	if want := rootOf(t, byIndex, uint64(len(seq))); size != int64(len(seq)) || !bytes.Equal(root, want) {
		t.Fatalf("tree %d: head %d/%x, want %d/%x", treeID, size, root, len(seq), want)
	}
}

// A clean stop integrates the leaves it acknowledged as queued, even when
// the ticker would not have come for a long time.
func TestCleanStopIntegratesQueuedLeaves(t *testing.T) {
	pool := dbtest.NewPool(t)
	var logs bytes.Buffer
	l := queuedLog(t, pool, newKey(t), &logs)
	hashes := enqueue(t, l, "stop", 40)
	l.Close()
	assertIntegrated(t, pool, l.TreeID(), hashes)
	// The stop finished its work too: the border read from the tiles
	// after Trillian's sequencer (not through the readers' gatherer,
	// which stops first).
	if strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "integrated the queued leaves before stopping") {
		t.Fatalf("the stop did not end cleanly:\n%s", logs.String())
	}
}

// Leaves acknowledged as queued by a process that died before integrating
// them (kill -9: the process is gone, its rows are what is left) are
// integrated by the next start, into the tree their key promised, also
// when that start rotates the key and retires the tree.
func TestQueuedLeavesSurviveACrash(t *testing.T) {
	for _, rotate := range []bool{false, true} {
		t.Run(fmt.Sprintf("rotate=%v", rotate), func(t *testing.T) {
			pool := dbtest.NewPool(t)
			key := newKey(t)
			dead := queuedLog(t, pool, key)
			// Only the restart may integrate: the dead process's pipeline
			// stops after the checks, so its stop integrates nothing.
			defer dead.Close()
			earlier := enqueue(t, dead, "integrated", 3)
			if _, err := dead.Append(context.Background(), []byte("integrates the first three"), nil); err != nil {
				t.Fatal(err)
			}
			hashes := enqueue(t, dead, "crash", 40)
			var queued int
			if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM Unsequenced WHERE TreeId = $1", dead.TreeID()).Scan(&queued); err != nil || queued != len(hashes) {
				t.Fatalf("%d leaves queued before the crash (%v), want %d", queued, err, len(hashes))
			}

			next := key
			if rotate {
				next = newKey(t)
			}
			restarted := queuedLog(t, pool, next)
			defer restarted.Close()
			if rotated := restarted.TreeID() != dead.TreeID(); rotated != rotate {
				t.Fatalf("restart rotated the tree: %v, want %v", rotated, rotate)
			}
			assertIntegrated(t, pool, dead.TreeID(), append(earlier, hashes...))
		})
	}
}
