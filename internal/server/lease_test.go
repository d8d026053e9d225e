package server_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/internal/keys"
	"github.com/signet-dev/signet/internal/server"
)

// One signet-server writes to a database: a second one started on it while
// the first runs is refused, naming the first, instead of committing
// beside it; once the first has stopped (giving its lease up), the second
// starts at once.
func TestOneWriterPerDatabase(t *testing.T) {
	f := newFixture(t)
	inst := f.start(t)
	second := func() (*server.Server, error) {
		cfg := config.Defaults()
		cfg.Hostname, cfg.Database.URL, cfg.PublicURL = testHostname, f.dbURL, "https://second.example"
		cfg.Log.Signer = keys.FileURI(f.keyPath, keys.PasswordSource{Env: "LOG_KEY_PASSWORD"})
		return server.New(context.Background(), cfg, server.Options{
			Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
			Getenv:    func(k string) string { return map[string]string{"LOG_KEY_PASSWORD": "test-password"}[k] },
			LeaseWait: 200 * time.Millisecond,
		})
	}
	if srv, err := second(); err == nil || !strings.Contains(err.Error(), "holds this database's writer lease") || !strings.Contains(err.Error(), "replicas are issue #16") {
		if srv != nil {
			srv.Close(context.Background())
		}
		t.Fatalf("a second server on a database in use: %v", err)
	}
	if size := inst.treeSize(); size < 0 {
		t.Fatal("the first server stopped answering")
	}
	inst.stop()
	srv, err := second()
	if err != nil {
		t.Fatalf("after the first server stopped: %v", err)
	}
	srv.Close(context.Background())
}
