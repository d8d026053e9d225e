package tuf

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/signet-dev/signet/internal/db/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func newKeys(t *testing.T) Keys {
	t.Helper()
	gen := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	return Keys{Root: gen(), Targets: gen(), Snapshot: gen(), Timestamp: gen()}
}

func serve(t *testing.T, r *Repository) string {
	t.Helper()
	router := chi.NewRouter()
	r.Routes(router)
	srv := httptest.NewServer(router)
	t.Cleanup(srv.Close)
	return srv.URL + "/tuf"
}

// fetch runs a go-tuf client from a fresh cache: the independent check that
// what we publish is a valid TUF repository.
func fetch(t *testing.T, base string, root []byte, name string) ([]byte, error) {
	t.Helper()
	cfg, err := config.New(base, root)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg.LocalMetadataDir = filepath.Join(dir, "metadata")
	cfg.LocalTargetsDir = filepath.Join(dir, "targets")
	if err := cfg.EnsurePathsExist(); err != nil {
		t.Fatal(err)
	}
	up, err := updater.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := up.Refresh(); err != nil {
		return nil, err
	}
	info, err := up.GetTargetInfo(name)
	if err != nil {
		return nil, err
	}
	_, body, err := up.DownloadTarget(info, filepath.Join(dir, "out"), "")
	return body, err
}

func TestClientFetchesPublishedTargets(t *testing.T) {
	ctx := context.Background()
	repo := New(dbtest.NewPool(t), newKeys(t), slog.New(slog.DiscardHandler))
	files := map[string][]byte{"trusted_root.json": []byte(`{"a":1}`), "signing_config.v0.2.json": []byte(`{"b":2}`)}
	if err := repo.Publish(ctx, files); err != nil {
		t.Fatal(err)
	}
	root, err := repo.Root(ctx)
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, repo)
	for name, want := range files {
		got, err := fetch(t, base, root, name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if string(got) != string(want) {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}

	// Publishing the same content again creates no new versions.
	if err := repo.Publish(ctx, files); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := latest(ctx, repo.pool, metadata.TARGETS); v != 1 {
		t.Errorf("targets version after an unchanged publish = %d, want 1", v)
	}

	// Changed content is a new targets version that an existing root still trusts.
	files["trusted_root.json"] = []byte(`{"a":2}`)
	if err := repo.Publish(ctx, files); err != nil {
		t.Fatal(err)
	}
	for role, want := range map[string]int64{metadata.ROOT: 1, metadata.TARGETS: 2, metadata.SNAPSHOT: 2, metadata.TIMESTAMP: 2} {
		if v, _, _ := latest(ctx, repo.pool, role); v != want {
			t.Errorf("%s version = %d, want %d", role, v, want)
		}
	}
	got, err := fetch(t, base, root, "trusted_root.json")
	if err != nil || string(got) != `{"a":2}` {
		t.Fatalf("after update: %q, %v", got, err)
	}
}

func TestTimestampIsRenewedBeforeExpiry(t *testing.T) {
	ctx := context.Background()
	repo := New(dbtest.NewPool(t), newKeys(t), slog.New(slog.DiscardHandler))
	start := time.Now()
	repo.now = func() time.Time { return start.Add(-2 * TimestampLifetime) }
	if err := repo.Publish(ctx, map[string][]byte{"trusted_root.json": []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	root, _ := repo.Root(ctx)
	base := serve(t, repo)
	if _, err := fetch(t, base, root, "trusted_root.json"); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("stale timestamp accepted: %v", err)
	}
	repo.now = time.Now
	if err := repo.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := latest(ctx, repo.pool, metadata.TIMESTAMP); v != 2 {
		t.Errorf("timestamp version after refresh = %d, want 2", v)
	}
	if _, err := fetch(t, base, root, "trusted_root.json"); err != nil {
		t.Fatalf("after refresh: %v", err)
	}
	// A fresh timestamp is not re-signed.
	if err := repo.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := latest(ctx, repo.pool, metadata.TIMESTAMP); v != 2 {
		t.Errorf("fresh timestamp re-signed: version %d", v)
	}
}

func TestTamperedTargetIsRejected(t *testing.T) {
	ctx := context.Background()
	repo := New(dbtest.NewPool(t), newKeys(t), slog.New(slog.DiscardHandler))
	if err := repo.Publish(ctx, map[string][]byte{"trusted_root.json": []byte(`{"real":true}`)}); err != nil {
		t.Fatal(err)
	}
	root, _ := repo.Root(ctx)
	// A mirror that swaps the target bytes; the database cannot produce this.
	router := chi.NewRouter()
	repo.Routes(router)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.Contains(req.URL.Path, "/targets/") {
			io.WriteString(w, `{"real":fals}`) //nolint:errcheck
			return
		}
		router.ServeHTTP(w, req)
	}))
	defer srv.Close()
	if _, err := fetch(t, srv.URL+"/tuf", root, "trusted_root.json"); err == nil {
		t.Fatal("tampered target accepted")
	}
}

func TestWrongRoleKeyIsRefused(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	keys := newKeys(t)
	if err := New(pool, keys, slog.New(slog.DiscardHandler)).Publish(ctx, map[string][]byte{"x": []byte("1")}); err != nil {
		t.Fatal(err)
	}
	other := newKeys(t)
	keys.Timestamp = other.Timestamp
	err := New(pool, keys, slog.New(slog.DiscardHandler)).Publish(ctx, map[string][]byte{"x": []byte("2")})
	if err == nil || !strings.Contains(err.Error(), "timestamp key") {
		t.Fatalf("publish with a key root.json does not list: %v", err)
	}
	if v, _, _ := latest(ctx, pool, metadata.TARGETS); v != 1 {
		t.Errorf("refused publish still wrote targets version %d", v)
	}
}

func TestServeRejectsUnknownPaths(t *testing.T) {
	repo := New(dbtest.NewPool(t), newKeys(t), slog.New(slog.DiscardHandler))
	if err := repo.Publish(context.Background(), map[string][]byte{"a.json": []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	base := serve(t, repo)
	for path, want := range map[string]int{
		"/1.root.json":                    200,
		"/root.json":                      200,
		"/timestamp.json":                 200,
		"/1.snapshot.json":                200,
		"/1.targets.json":                 200,
		"/2.root.json":                    404,
		"/1.timestamp.json":               404,
		"/snapshot.json":                  404,
		"/99999999999999999999.root.json": 404,
		"/targets/deadbeef.a.json":        404,
		"/targets/../root.json":           404,
	} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
		}
	}
}

func TestTargetsAreRenewedWithoutContentChange(t *testing.T) {
	ctx := context.Background()
	repo := New(dbtest.NewPool(t), newKeys(t), slog.New(slog.DiscardHandler))
	start := time.Now()
	repo.now = func() time.Time { return start.Add(-TargetsLifetime + time.Hour) }
	if err := repo.Publish(ctx, map[string][]byte{"trusted_root.json": []byte(`{"old":1}`)}); err != nil {
		t.Fatal(err)
	}
	repo.now = time.Now
	if err := repo.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	for role, want := range map[string]int64{metadata.TARGETS: 2, metadata.SNAPSHOT: 2, metadata.TIMESTAMP: 2} {
		if v, _, _ := latest(ctx, repo.pool, role); v != want {
			t.Errorf("%s version = %d, want %d", role, v, want)
		}
	}
	root, _ := repo.Root(ctx)
	got, err := fetch(t, serve(t, repo), root, "trusted_root.json")
	if err != nil || string(got) != `{"old":1}` {
		t.Fatalf("after renewal: %q, %v", got, err)
	}
}

func TestRootRotationIsFollowedByClientsOfTheFirstRoot(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	keys := newKeys(t)
	repo := New(pool, keys, slog.New(slog.DiscardHandler))
	if err := repo.Publish(ctx, map[string][]byte{"trusted_root.json": []byte(`{"v":1}`)}); err != nil {
		t.Fatal(err)
	}
	root1, _ := repo.Root(ctx)

	other := newKeys(t)
	if _, err := repo.RotateRoot(ctx, other.Root, other.Root); err == nil || !strings.Contains(err.Error(), "not a root key") {
		t.Fatalf("rotation signed by a stranger: %v", err)
	}
	// New root key and a new timestamp key in one rotation.
	keys.Timestamp = other.Timestamp
	rotated := New(pool, keys, slog.New(slog.DiscardHandler))
	v, err := rotated.RotateRoot(ctx, keys.Root, other.Root)
	if err != nil || v != 2 {
		t.Fatalf("rotate: version %d, %v", v, err)
	}
	// A renewal with the same key is version 3.
	if v, err := rotated.RotateRoot(ctx, other.Root, other.Root); err != nil || v != 3 {
		t.Fatalf("renew: version %d, %v", v, err)
	}
	got, err := fetch(t, serve(t, rotated), root1, "trusted_root.json")
	if err != nil || string(got) != `{"v":1}` {
		t.Fatalf("client of root v1 after rotation: %q, %v", got, err)
	}
	// The old root key alone can no longer rotate.
	if _, err := rotated.RotateRoot(ctx, keys.Root, keys.Root); err == nil {
		t.Fatal("the retired root key signed a new root")
	}
	// Publishing with the new online keys works; with the retired timestamp key it is refused.
	if err := rotated.Publish(ctx, map[string][]byte{"trusted_root.json": []byte(`{"v":2}`)}); err != nil {
		t.Fatal(err)
	}
	if err := repo.Publish(ctx, map[string][]byte{"trusted_root.json": []byte(`{"v":3}`)}); err == nil {
		t.Fatal("publishing with the retired timestamp key succeeded")
	}
}
