package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/signet-dev/signet/client"
	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/internal/keys"
	"github.com/signet-dev/signet/internal/server"
)

// startReplica runs a Replica on f's database, advertised at its own
// test listener.
func (f fixture) startReplica(t *testing.T) (*server.Replica, string) {
	t.Helper()
	hs := httptest.NewUnstartedServer(nil)
	base := "http://" + hs.Listener.Addr().String()
	cfg := config.Defaults()
	cfg.Hostname, cfg.Database.URL, cfg.PublicURL = testHostname, f.dbURL, "https://signet.example"
	cfg.Log.Signer = keys.FileURI(f.keyPath, keys.PasswordSource{Env: "LOG_KEY_PASSWORD"})
	cfg.Replicas.AdvertiseURL = base
	cfg.Replicas.LeaseSeconds = 1
	r, err := server.NewReplica(context.Background(), cfg, server.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Getenv: func(k string) string { return map[string]string{"LOG_KEY_PASSWORD": "test-password"}[k] },
	})
	if err != nil {
		t.Fatalf("starting a replica: %v", err)
	}
	hs.Config.Handler = r.Handler()
	hs.Start()
	t.Cleanup(func() { hs.Close(); r.Close(context.Background()) })
	return r, base
}

// A leader whose lease another replica took (it was paused, or cut off
// from the database, past the lease's TTL) steps down: it closes its
// Server and forwards to the new leader, so appends through it go on.
func TestReplicaStepsDown(t *testing.T) {
	f := newFixture(t)
	first, firstURL := f.startReplica(t)
	second, secondURL := f.startReplica(t)
	if first.Leading() == nil || second.Leading() != nil {
		t.Fatalf("leading: first %v, second %v; want the first only", first.Leading() != nil, second.Leading() != nil)
	}
	ctx := context.Background()
	pool, err := pgx.Connect(ctx, f.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close(ctx)
	// What a pause past the TTL looks like to the database: someone else
	// holds the lease, here an intruder advertising the second replica's
	// address, for three seconds.
	if _, err := pool.Exec(ctx, "UPDATE signet_writer_lease SET holder = 'intruder', address = $1, token = token + 1, expires_at = clock_timestamp() + interval '3 seconds'", secondURL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for first.Leading() != nil {
		if time.Now().After(deadline) {
			t.Fatal("the deposed leader still leads")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Meanwhile the first forwards to the intruder's address, the second
	// replica, which does not lead and does not forward again.
	resp, err := http.Get(firstURL + "/api/v1/log")
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a request through a follower while nobody it can reach leads: %v %v", resp, err)
	}
	resp.Body.Close()
	// Once the intruder's lease expires, one of the two leads, and appends
	// through either are read through the other.
	deadline = time.Now().Add(20 * time.Second)
	for (first.Leading() == nil) == (second.Leading() == nil) {
		if time.Now().After(deadline) {
			t.Fatalf("after the intruder: first leads %v, second leads %v", first.Leading() != nil, second.Leading() != nil)
		}
		time.Sleep(50 * time.Millisecond)
	}
	urls := []string{firstURL, secondURL}
	for i := range 2 {
		var e *client.Entry
		for e == nil {
			p, _, _ := newSigner(t).hashedRekord(t, []byte("after stepping down "+time.Now().String()), nil)
			if e, err = client.NewLog(urls[i]).Upload(ctx, p); err != nil {
				// A follower may need a tick to see the lease's new holder.
				if time.Now().After(deadline) || !strings.Contains(err.Error(), "503") {
					t.Fatalf("append through replica %d: %v", i, err)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		if got, err := client.NewLog(urls[1-i]).GetByIndex(ctx, e.LogIndex); err != nil || got.ID != e.ID {
			t.Fatalf("entry %d appended through replica %d, read through the other: %v", e.LogIndex, i, err)
		}
	}
	resp, err = http.Get(firstURL + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz of a follower: %v %v", resp, err)
	}
	resp.Body.Close()
}

// A replica started on a database whose lease a server without
// replicas.advertise_url holds has nowhere to forward: it refuses to start
// and says what to configure.
func TestReplicaBesideSingleServer(t *testing.T) {
	f := newFixture(t)
	f.start(t)
	cfg := config.Defaults()
	cfg.Hostname, cfg.Database.URL = testHostname, f.dbURL
	cfg.Log.Signer = keys.FileURI(f.keyPath, keys.PasswordSource{Env: "LOG_KEY_PASSWORD"})
	cfg.Replicas.AdvertiseURL = "http://127.0.0.1:1"
	r, err := server.NewReplica(context.Background(), cfg, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil {
		r.Close(context.Background())
		t.Fatal("a replica started beside a server that is not one")
	}
	if !strings.Contains(err.Error(), "replicas.advertise_url") {
		t.Fatalf("the refusal does not say what to configure: %v", err)
	}
}
