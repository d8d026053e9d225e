package db_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/signet-dev/signet/internal/db"

	"github.com/signet-dev/signet/internal/syncbuf"
)

// A managed PostgreSQL whose postmaster is killed with SIGKILL comes back by
// itself: the supervisor restarts it (once, and says so at WARN), committed
// rows survive, the pool opened before the kill works again, and Stop ends
// the supervision with the server down.
func TestClusterSupervisorRestartsKilledPostmaster(t *testing.T) {
	dataDir := filepath.Join(clusterParent(t), "pg")
	var logs syncbuf.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := context.Background()
	cluster, err := db.StartCluster(ctx, dataDir, logger, db.ClusterOptions{SharedBuffersMB: 128})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cluster.Stop(context.Background()) //nolint:errcheck
		}
	})
	pool, err := pgxpool.New(ctx, cluster.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, "CREATE TABLE survived (n int); INSERT INTO survived VALUES (1)"); err != nil {
		t.Fatal(err)
	}

	killed := postmasterPID(t, dataDir)
	if err := syscall.Kill(killed, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Wait for the restart itself: a backend orphaned by the kill may
	// still answer a query for a moment, so a working query alone proves
	// nothing.
	deadline := time.Now().Add(3 * time.Minute)
	for cluster.Restarts() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("PostgreSQL was not restarted after its postmaster (PID %d) was killed; log:\n%s", killed, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if pid := postmasterPID(t, dataDir); pid == killed {
		t.Fatalf("restart counted but postmaster.pid still names the killed PID %d", killed)
	}
	// The pool drops the connections that died with the server and
	// connects again.
	for {
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := pool.Exec(qctx, "INSERT INTO survived VALUES (2)")
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("PostgreSQL restarted but the pool cannot write: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var rows []int
	r, err := pool.Query(ctx, "SELECT n FROM survived ORDER BY n")
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		var n int
		if err := r.Scan(&n); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, n)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0] != 1 || rows[1] != 2 {
		t.Fatalf("rows after the restart = %v, want [1 2]", rows)
	}
	if n := cluster.Restarts(); n != 1 {
		t.Errorf("restarts = %d, want 1", n)
	}
	if !strings.Contains(logs.String(), "level=WARN msg=\"managed PostgreSQL restarted\"") {
		t.Errorf("no WARN line for the restart; log:\n%s", logs.String())
	}

	t.Logf("supervisor log:\n%s", logs.String())

	pool.Close()
	stopped = true
	if err := cluster.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// Stop waits for the supervisor to return, so nothing can bring the
	// server back after this point.
	if _, err := os.Stat(filepath.Join(dataDir, "postmaster.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("PostgreSQL still running after Stop (postmaster.pid: %v)", err)
	}
	if n := cluster.Restarts(); n != 1 {
		t.Errorf("restarts after Stop = %d, want 1", n)
	}
}

// postmasterPID reads the PID on postmaster.pid's first line.
func postmasterPID(t *testing.T, dataDir string) int {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(raw), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		t.Fatalf("postmaster.pid: %v", err)
	}
	return pid
}

// A data directory moved elsewhere (a dev instance's directory renamed, a
// backup restored under another path) starts there: its socket is made in
// the new directory, where the server connects, and its rows are there.
func TestClusterStartsWhereItWasMoved(t *testing.T) {
	tmp := clusterParent(t)
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	first := filepath.Join(tmp, "a")
	cluster, err := db.StartCluster(ctx, first, logger, db.ClusterOptions{SharedBuffersMB: 128})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, cluster.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = pool.Exec(ctx, "CREATE TABLE moved (n int); INSERT INTO moved VALUES (7)")
	pool.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := cluster.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(tmp, "b")
	if err := os.Rename(first, moved); err != nil {
		t.Fatal(err)
	}
	cluster, err = db.StartCluster(ctx, moved, logger, db.ClusterOptions{SharedBuffersMB: 128})
	if err != nil {
		t.Fatalf("starting the moved cluster: %v", err)
	}
	t.Cleanup(func() { cluster.Stop(context.Background()) }) //nolint:errcheck
	if _, err := os.Stat(filepath.Join(moved, ".s.PGSQL.5432")); err != nil {
		t.Fatalf("the moved cluster's socket: %v", err)
	}
	pool, err = pgxpool.New(ctx, cluster.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var n int
	if err := pool.QueryRow(ctx, "SELECT n FROM moved").Scan(&n); err != nil || n != 7 {
		t.Fatalf("the moved cluster's row: %d (%v), want 7", n, err)
	}
}

// clusterParent is a directory for clusters' data directories, removed
// after the test. Not t.TempDir(): the socket path inside a data directory
// is limited to 107 bytes and test names are long.
func clusterParent(t *testing.T) string {
	t.Helper()
	if _, err := db.FindBinDir(); err != nil {
		t.Skip(err)
	}
	tmp, err := os.MkdirTemp("", "signet-cluster-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	return tmp
}
