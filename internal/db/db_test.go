package db_test

import (
	"context"
	"testing"

	"github.com/signet-dev/signet/internal/db"
	"github.com/signet-dev/signet/internal/db/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func TestMigrateIsIdempotentAndCreatesTrillianTables(t *testing.T) {
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	if err := db.Migrate(ctx, pool); err != nil {
		t.Fatalf("second migration run: %v", err)
	}
	for _, table := range []string{"trees", "treehead", "subtree", "leafdata", "sequencedleafdata", "unsequenced", "search_index", "search_index_watermark", "signet_logs"} {
		var exists bool
		if err := pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if !exists {
			t.Errorf("table %s missing after migration", table)
		}
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM signet_schema_migrations").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n < 2 {
		t.Errorf("recorded migrations = %d, want at least 2", n)
	}
}
