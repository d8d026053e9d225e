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
	dir, err := os.MkdirTemp("", "signet-pg-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "dbtest:", err)
		return 1
	}
	defer os.RemoveAll(dir)
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
