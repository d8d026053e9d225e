package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
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
	if srv, err := second(); err == nil || !strings.Contains(err.Error(), "holds this database's writer lease") || !strings.Contains(err.Error(), "replicas.advertise_url") {
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

// A server whose lease another took commits nothing more: its appends fail
// (the fence), nothing is added to the tree, and /healthz says why.
func TestLeaseTakenOver(t *testing.T) {
	ctx := context.Background()
	inst := newFixture(t).start(t)
	body, _, _ := newSigner(t).hashedRekord(t, []byte("before the takeover"), nil)
	if _, err := inst.client.Upload(ctx, body); err != nil {
		t.Fatal(err)
	}
	before := inst.treeSize()
	if _, err := inst.srvPool(t).Exec(ctx, "UPDATE signet_writer_lease SET holder = 'intruder', token = token + 1, expires_at = now() + interval '1 hour'"); err != nil {
		t.Fatal(err)
	}
	body, _, _ = newSigner(t).hashedRekord(t, []byte("after the takeover"), nil)
	if e, err := inst.client.Upload(ctx, body); err == nil {
		t.Fatalf("a server without the lease appended entry %s", e.ID)
	}
	if after := inst.treeSize(); after != before {
		t.Fatalf("the tree went from %d to %d entries without the lease", before, after)
	}
	inst.getUntil(t, "/healthz", func(code int, _ string) bool { return code == http.StatusServiceUnavailable })
}
