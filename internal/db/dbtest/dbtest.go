// Package dbtest gives each test its own database on a real PostgreSQL:
// DATABASE_URL when set, otherwise a throwaway cluster started once per test
// binary by Main.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/signet-dev/signet/internal/db"
)

// server is the cluster shared by the tests of one test binary. It is set once
// by Main before any test runs and only read afterwards; tests need a handle
// they can reach without threading it through every helper.
var server struct {
	baseURL string // connection URL of the maintenance database
	urlFor  func(name string) string
}

// Main starts the shared PostgreSQL, runs the tests and stops it. Use it from
// TestMain: func TestMain(m *testing.M) { dbtest.Main(m) }.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	if u := os.Getenv("DATABASE_URL"); u != "" {
		server.baseURL = u
		server.urlFor = func(name string) string {
			parsed, err := url.Parse(u)
			if err != nil {
				panic(fmt.Sprintf("DATABASE_URL does not parse: %v", err))
			}
			parsed.Path = "/" + name
			return parsed.String()
		}
		return m.Run()
	}
	sweepOrphans(os.TempDir(), orphanAge)
	dir, err := os.MkdirTemp("", clusterPrefix)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dbtest:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "dbtest:", err)
		return 1
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cluster, err := db.StartCluster(ctx, dir+"/pg", logger, db.ClusterOptions{SharedBuffersMB: 128})
	if err != nil {
		fmt.Fprintln(os.Stderr, "dbtest: starting PostgreSQL:", err)
		return 1
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := cluster.Stop(stopCtx); err != nil {
			fmt.Fprintln(os.Stderr, "dbtest:", err)
		}
	}()
	server.baseURL = cluster.URL("postgres")
	server.urlFor = cluster.URL
	return m.Run()
}

// A test binary killed before its deferred stop (go test -timeout panics,
// SIGKILL) leaves its cluster running. Each cluster's directory names the
// test binary that owns it, and the next test binary stops the clusters of
// owners that are gone and removes their directories.
const (
	clusterPrefix = "signet-pg-"
	ownerFile     = "owner.pid"
	// orphanAge spares the clusters of owners that died in the last
	// minutes: their initdb or pg_ctl, in process groups of their own, may
	// still be starting the server.
	orphanAge = 2 * time.Minute
)

// sweepOrphans stops and removes the clusters under tmp whose owner died at
// least minAge ago: an immediate shutdown (SIGQUIT to the postmaster),
// since their data is thrown away. Best effort: a cluster it cannot stop
// stays.
func sweepOrphans(tmp string, minAge time.Duration) {
	dirs, _ := filepath.Glob(filepath.Join(tmp, clusterPrefix+"*"))
	for _, dir := range dirs {
		owner := filepath.Join(dir, ownerFile)
		info, err := os.Stat(owner)
		if err != nil || time.Since(info.ModTime()) < minAge {
			// Not ours to judge (an older layout), or too young.
			continue
		}
		raw, err := os.ReadFile(owner)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
		if err != nil || !db.ProcessGone(pid) {
			continue
		}
		pg := filepath.Join(dir, "pg")
		if pm, ok := db.RunningPostmaster(pg); ok {
			if syscall.Kill(pm, syscall.SIGQUIT) != nil {
				continue
			}
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				if _, ok = db.RunningPostmaster(pg); !ok {
					break
				}
			}
			if ok {
				continue
			}
		}
		os.RemoveAll(dir)
	}
}

// NewURL creates an empty database for this test and returns its URL. The
// database is dropped when the test ends.
func NewURL(t testing.TB) string {
	t.Helper()
	if server.urlFor == nil {
		t.Fatal("dbtest: call dbtest.Main from TestMain")
	}
	var b [6]byte
	rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, server.baseURL)
	if err != nil {
		t.Fatalf("dbtest: connecting: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("dbtest: creating database: %v", err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, server.baseURL)
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") //nolint:errcheck
	})
	return server.urlFor(name)
}

// NewPool creates a database for this test, applies the migrations and
// returns a pool closed when the test ends.
func NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := db.Open(context.Background(), NewURL(t))
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}
