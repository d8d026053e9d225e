package server_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/internal/server"
)

// A database records which kind of instance it belongs to: dev mode
// refuses a production database and production a dev one, before either
// writes anything.
func TestDevAndProductionNeverShareADatabase(t *testing.T) {
	ctx := context.Background()

	prod := newFixture(t)
	inst := prod.start(t)
	size := inst.treeSize()
	inst.stop()
	_, err := prod.newDevServer(t)
	if err == nil || !strings.Contains(err.Error(), "the database belongs to a production instance") || !strings.Contains(err.Error(), "dev mode refuses it") {
		t.Fatalf("dev on a production database: %v", err)
	}
	// Nothing was touched: production starts again on the same tree.
	again := prod.start(t)
	if again.treeSize() != size || again.rowCount(t, "SELECT count(*) FROM signet_logs WHERE retired_at IS NOT NULL") != 0 {
		t.Fatal("the refused dev start changed the production instance")
	}
	again.stop()

	dev := newFixture(t)
	dev.startDev(t).stop()
	if _, err := dev.newServer(); err == nil || !strings.Contains(err.Error(), "the database belongs to a dev instance") {
		t.Fatalf("production on a dev database: %v", err)
	}

	// A database made before the kind was recorded: production adopts it,
	// dev mode on a database.url does not.
	old := newFixture(t)
	oldInst := old.start(t)
	oldInst.stop()
	if _, err := oldInst.srvPool(t).Exec(ctx, "DELETE FROM signet_instance"); err != nil {
		t.Fatal(err)
	}
	if _, err := old.newDevServer(t); err == nil || !strings.Contains(err.Error(), "was never recorded") {
		t.Fatalf("dev on an unrecorded database with trees: %v", err)
	}
	old.start(t).stop()
	if got := oldInst.rowCount(t, "SELECT count(*) FROM signet_instance WHERE kind = 'production'"); got != 1 {
		t.Fatalf("production did not adopt the unrecorded database (%d rows)", got)
	}
}

// newDevServer starts dev mode on the fixture's database without HTTP,
// for a start that is expected to fail.
func (f fixture) newDevServer(t *testing.T) (*server.Server, error) {
	t.Helper()
	cfg := config.Defaults()
	cfg.Hostname, cfg.Database.URL, cfg.DataDir, cfg.PublicURL = testHostname, f.dbURL, t.TempDir(), "http://127.0.0.1:1"
	srv, err := server.New(context.Background(), cfg, server.Options{Dev: true, Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		srv.Close(context.Background())
	}
	return srv, err
}
