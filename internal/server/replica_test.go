package server_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	pb "github.com/sigstore/rekor-tiles/v2/pkg/generated/protobuf"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/signet-dev/signet/client"
	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/internal/keys"
	"github.com/signet-dev/signet/internal/server"
	"github.com/signet-dev/signet/log/rekorapi/model"
)

// startReplica runs a Replica on f's database, advertised at its own
// test listener.
func (f fixture) startReplica(t *testing.T, mutate ...func(*config.Config)) (*server.Replica, string) {
	t.Helper()
	r, hs := f.startReplicaServer(t, mutate...)
	return r, hs.URL
}

// startReplicaServer is startReplica, with the test listener it answers on.
func (f fixture) startReplicaServer(t *testing.T, mutate ...func(*config.Config)) (*server.Replica, *httptest.Server) {
	t.Helper()
	hs := httptest.NewUnstartedServer(nil)
	r, err := f.newReplica("http://"+hs.Listener.Addr().String(), mutate...)
	if err != nil {
		t.Fatalf("starting a replica: %v", err)
	}
	hs.Config.Handler = r.Handler()
	hs.Start()
	t.Cleanup(func() { hs.Close(); r.Close(context.Background()) })
	return r, hs
}

// newReplica starts a Replica on f's database, advertising advertise, with
// a lease of a second.
func (f fixture) newReplica(advertise string, mutate ...func(*config.Config)) (*server.Replica, error) {
	cfg := config.Defaults()
	cfg.Hostname, cfg.Database.URL, cfg.PublicURL = testHostname, f.dbURL, "https://signet.example"
	cfg.Log.Signer = keys.FileURI(f.keyPath, keys.PasswordSource{Env: "LOG_KEY_PASSWORD"})
	cfg.Replicas.AdvertiseURL = advertise
	cfg.Replicas.LeaseSeconds = 1
	for _, m := range mutate {
		m(&cfg)
	}
	return server.NewReplica(context.Background(), cfg, server.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Getenv: func(k string) string { return map[string]string{"LOG_KEY_PASSWORD": "test-password"}[k] },
	})
}

// replicaRefused checks that a replica configured by mutate does not
// start, and that its error says each of want.
func (f fixture) replicaRefused(t *testing.T, what string, want []string, mutate ...func(*config.Config)) {
	t.Helper()
	r, err := f.newReplica("http://127.0.0.1:1", mutate...)
	if err == nil {
		r.Close(context.Background())
		t.Fatalf("%s started", what)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("the refusal of %s does not say %q: %v", what, w, err)
		}
	}
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
	// Meanwhile the first forwards writes to the intruder's address, the
	// second replica, which does not lead and does not forward again (reads
	// it answers itself).
	p, _, _ := newSigner(t).hashedRekord(t, []byte("while an intruder leads"), nil)
	resp, err := http.Post(firstURL+"/api/v1/log/entries", "application/json", bytes.NewReader(p))
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("an append through a follower while nobody it can reach leads: %v %v", resp, err)
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
	// Each serves its metrics, the one now leading its Server's (not
	// also those it kept while following, which would collide), and each
	// counted the entries' requests it answered.
	for _, u := range urls {
		if n := labelledMetric(t, u, "signet_http_requests_total", `route="/api/v1/log/entries"`); n == 0 {
			t.Errorf("%s/metrics counts no request to /api/v1/log/entries", u)
		}
	}
}

// A replica started on a database whose lease a server without
// replicas.advertise_url holds has nowhere to forward: it refuses to start
// and says what to configure.
func TestReplicaBesideSingleServer(t *testing.T) {
	f := newFixture(t)
	f.start(t)
	f.replicaRefused(t, "a replica beside a server that is not one", []string{"replicas.advertise_url"})
}

// A follower answers the log's reads itself, from the database: entries
// the leader acknowledged are proven by the follower at once, and still
// while the leader does not answer; appends it cannot take answer 503.
func TestFollowerServesReads(t *testing.T) {
	f := newFixture(t)
	leader, leaderHS := f.startReplicaServer(t)
	_, followerURL := f.startReplica(t)
	if leader.Leading() == nil {
		t.Fatal("the first replica does not lead")
	}
	ctx := context.Background()
	lc, fc := client.NewLog(leaderHS.URL), client.NewLog(followerURL)
	var entries []*client.Entry
	for i := range 5 {
		p, digest, _ := newSigner(t).hashedRekord(t, []byte(fmt.Sprintf("read locally %d", i)), nil)
		e, err := lc.Upload(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := fc.GetByIndex(ctx, e.LogIndex) // verifies proof, checkpoint and SET
		if err != nil || got.ID != e.ID {
			t.Fatalf("entry %d through the follower right after the leader acknowledged it: %v", e.LogIndex, err)
		}
		if ids, err := fc.Search(ctx, model.SearchIndex{Hash: "sha256:" + hex.EncodeToString(digest)}); err != nil || len(ids) != 1 || ids[0] != e.ID {
			t.Fatalf("search through the follower: %v %v", ids, err)
		}
		entries = append(entries, e)
	}
	// An append through the follower is the leader's answer, with one
	// request ID (the follower's, which the leader kept).
	p, _, _ := newSigner(t).hashedRekord(t, []byte("forwarded"), nil)
	resp, err := http.Post(followerURL+"/api/v1/log/entries", "application/json", bytes.NewReader(p))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("an append through the follower: %v %v", resp, err)
	}
	resp.Body.Close()
	if ids := resp.Header.Values("X-Request-Id"); len(ids) != 1 {
		t.Fatalf("a forwarded answer carries request IDs %q, want one", ids)
	}
	served := metricValue(t, followerURL, "signet_replica_requests_served_locally_total")
	if served < 10 {
		t.Fatalf("the follower answered %v reads itself, want at least the 10 above", served)
	}
	// Those reads are in the follower's HTTP metrics, by route.
	for route, want := range map[string]float64{`route="/api/v1/log/entries"`: 5, `route="/api/v1/index/retrieve"`: 5} {
		if got := labelledMetric(t, followerURL, "signet_http_requests_total", route, `replica="follower"`); got != want {
			t.Errorf("the follower's signet_http_requests_total{%s}: %v, want %v", route, got, want)
		}
	}
	// A search whose body is still arriving holds the follower's body
	// budget, and gives it back when it ends.
	held := func() float64 {
		return labelledMetric(t, followerURL, "signet_http_body_bytes_in_flight", `replica="follower"`)
	}
	body, sending := io.Pipe()
	// Ends the search if the test fails before it does.
	defer sending.Close()
	search, err := http.NewRequest(http.MethodPost, followerURL+"/api/v1/index/retrieve", body)
	if err != nil {
		t.Fatal(err)
	}
	search.ContentLength = 1000
	search.Header.Set("Content-Type", "application/json")
	searched := make(chan struct{})
	go func() {
		defer close(searched)
		if resp, err := http.DefaultClient.Do(search); err == nil {
			resp.Body.Close()
		}
	}()
	sending.Write([]byte(`{"hash": "sha256:`)) //nolint:errcheck
	for deadline := time.Now().Add(10 * time.Second); held() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a search's body arriving at the follower holds none of its body budget")
		}
	}
	sending.Close()
	<-searched
	for deadline := time.Now().Add(10 * time.Second); held() != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the follower's body budget still holds %v bytes after the search ended", held())
		}
	}
	// The leader stops answering HTTP (it still holds the lease): reads
	// through the follower go on, appends through it get 503.
	leaderHS.Close()
	for _, e := range entries {
		if got, err := fc.GetByUUID(ctx, e.ID); err != nil || got.LogIndex != e.LogIndex {
			t.Fatalf("entry %s through the follower while the leader is unreachable: %v", e.ID, err)
		}
	}
	if _, latest, err := fc.Info(ctx); err != nil || latest.Size < uint64(len(entries)) {
		t.Fatalf("log info through the follower while the leader is unreachable: %v %v", latest, err)
	}
	p, _, _ = newSigner(t).hashedRekord(t, []byte("nobody to take it"), nil)
	resp, err = http.Post(followerURL+"/api/v1/log/entries", "application/json", bytes.NewReader(p))
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("an append through a follower whose leader does not answer: %v %v", resp, err)
	}
	resp.Body.Close()
}

// metricSeries are the series of name on base's /metrics: value by label
// set ("" for the unlabelled one, else `key="value",...`).
func metricSeries(t *testing.T, base, name string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok {
			continue
		}
		var labels, v string
		if after, ok := strings.CutPrefix(rest, "{"); ok {
			if labels, v, ok = strings.Cut(after, "} "); !ok {
				continue
			}
		} else if v, ok = strings.CutPrefix(rest, " "); !ok {
			continue // another metric whose name starts with name
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatal(err)
		}
		out[labels] = f
	}
	return out
}

// metricValue is the value of an unlabelled metric on base's /metrics.
func metricValue(t *testing.T, base, name string) float64 {
	t.Helper()
	v, ok := metricSeries(t, base, name)[""]
	if !ok {
		t.Fatalf("%s not on %s/metrics", name, base)
	}
	return v
}

// labelledMetric sums the series of name on base's /metrics whose labels
// include every one of with (`key="value"`).
func labelledMetric(t *testing.T, base, name string, with ...string) float64 {
	t.Helper()
	var sum float64
series:
	for labels, v := range metricSeries(t, base, name) {
		for _, w := range with {
			if !strings.Contains(labels, w) {
				continue series
			}
		}
		if labels != "" {
			sum += v
		}
	}
	return sum
}

// A replica opens every key the leader would at its start, following or
// not: one it cannot open stops it there, naming the setting, rather than
// at the first takeover.
func TestReplicaChecksLeaderKeysAtStart(t *testing.T) {
	f := newFixture(t)
	f.replicaRefused(t, "a replica with a v2 log key it cannot open", []string{"log.v2.signer", "UNSET_V2_PASSWORD"}, func(c *config.Config) {
		c.Log.V2.Enabled = true
		c.Log.V2.Signer = keys.FileURI(f.keyPath, keys.PasswordSource{Env: "UNSET_V2_PASSWORD"})
	})
}

// A replica configured with another hostname than the leader's would sign
// the log's checkpoints under another origin once it leads: it refuses to
// start, saying so.
func TestReplicaWithAnotherHostnameRefused(t *testing.T) {
	f := newFixture(t)
	_, leaderURL := f.startReplica(t)
	p, _, _ := newSigner(t).hashedRekord(t, []byte("a checkpoint to compare"), nil)
	if _, err := client.NewLog(leaderURL).Upload(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	f.replicaRefused(t, "a replica with another hostname", []string{"give every replica the same hostname", testHostname},
		func(c *config.Config) { c.Hostname = "other.example" })
}

// A follower serves the Rekor v2 log's tiles too: its checkpoint and a
// tile the leader just wrote are the leader's, byte for byte.
func TestFollowerServesV2Tiles(t *testing.T) {
	f := newFixture(t)
	v2Key := filepath.Join(t.TempDir(), "v2.pem")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err := keys.WriteFile(v2Key, key, []byte("test-password")); err != nil {
		t.Fatal(err)
	}
	withV2 := func(c *config.Config) {
		c.Log.V2.Enabled = true
		c.Log.V2.Signer = keys.FileURI(v2Key, keys.PasswordSource{Env: "LOG_KEY_PASSWORD"})
	}
	leader, leaderURL := f.startReplica(t, withV2)
	_, followerURL := f.startReplica(t, withV2)
	if leader.Leading() == nil {
		t.Fatal("the first replica does not lead")
	}
	get := func(base, path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for i := range 3 {
		body, _ := protojson.Marshal(&pb.CreateEntryRequest{Spec: &pb.CreateEntryRequest_HashedRekordRequestV002{
			HashedRekordRequestV002: v2Request(t, key, fmt.Appendf(nil, "v2 through a follower %d", i))}})
		resp, err := http.Post(leaderURL+"/api/v2/log/entries", "application/json", bytes.NewReader(body))
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("v2 append %d: %v %v", i, resp, err)
		}
		resp.Body.Close()
	}
	before := metricValue(t, followerURL, "signet_replica_requests_served_locally_total")
	for _, path := range []string{"/checkpoint", "/tile/0/000.p/3", "/tile/entries/000.p/3"} {
		fc, fb := get(followerURL, path)
		lc, lb := get(leaderURL, path)
		if fc != http.StatusOK || fc != lc || fb != lb {
			t.Fatalf("%s through the follower: %d %q; through the leader: %d %q", path, fc, fb, lc, lb)
		}
	}
	if after := metricValue(t, followerURL, "signet_replica_requests_served_locally_total"); after-before != 3 {
		t.Fatalf("the follower answered %v of the 3 tile reads itself", after-before)
	}
}
