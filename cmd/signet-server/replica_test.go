package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"

	"github.com/signet-dev/signet/ca/devoidc"
	"github.com/signet-dev/signet/client"
	"github.com/signet-dev/signet/internal/db/dbtest"
	"github.com/signet-dev/signet/internal/servertest"
	"github.com/signet-dev/signet/log/note"
	"github.com/signet-dev/signet/log/rekorapi/model"
)

// replicaSet is a production instance (admin init's keys and
// configuration) run as several signet-server processes on one database.
type replicaSet struct {
	t      *testing.T
	bin    string
	config string
	dbURL  string
	urls   []string
	cmds   []*exec.Cmd
	// idpToken is an ID token of the test's OIDC issuer for email.
	idpToken func(email string) string
}

func newReplicaSet(t *testing.T, n int) *replicaSet {
	t.Helper()
	bin := buildServer(t)
	t.Setenv(passwordEnv, "replica-password")
	dir := filepath.Join(t.TempDir(), "etc")
	if out, err := runAdmin(t, "", "init", "--dir", dir, "--organization", "Example Corp", "--hostname", "signet.example.com", "--yes"); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	// An OIDC issuer for the CA, served by the test.
	hs := httptest.NewUnstartedServer(nil)
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	idp, err := devoidc.New("http://"+hs.Listener.Addr().String()+devoidc.Path, key)
	if err != nil {
		t.Fatal(err)
	}
	router := chi.NewRouter()
	idp.Routes(router)
	hs.Config.Handler = router
	hs.Start()
	t.Cleanup(hs.Close)
	cfgPath := filepath.Join(dir, "signet.yaml")
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(data), "issuers: []", fmt.Sprintf("issuers:\n    - url: %s\n      type: email", idp.URL()), 1)
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	rs := &replicaSet{t: t, bin: bin, config: cfgPath, dbURL: dbtest.NewURL(t), cmds: make([]*exec.Cmd, n)}
	for i := 0; i < n; i++ {
		// Ports chosen now: each replica's advertised URL is its own.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		rs.urls = append(rs.urls, "http://"+ln.Addr().String())
		ln.Close()
	}
	rs.idpToken = func(email string) string {
		tok, err := idp.Token(email, "")
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	return rs
}

// start runs replica i and waits until it listens.
func (rs *replicaSet) start(i int) {
	rs.t.Helper()
	cmd := exec.Command(rs.bin, "run", "--config", rs.config)
	cmd.Env = append(os.Environ(),
		"SIGNET_LISTEN="+strings.TrimPrefix(rs.urls[i], "http://"),
		"SIGNET_REPLICAS_ADVERTISE_URL="+rs.urls[i],
		"SIGNET_DATABASE_URL="+rs.dbURL,
		"SIGNET_METRICS_LISTEN=127.0.0.1:0",
	)
	servertest.Start(rs.t, cmd, "")
	rs.cmds[i] = cmd
}

// leader is the advertised URL of the replica holding the writer lease.
func (rs *replicaSet) leader() string {
	rs.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, rs.dbURL)
	if err != nil {
		rs.t.Fatal(err)
	}
	defer conn.Close(ctx)
	var addr string
	if err := conn.QueryRow(ctx, "SELECT address FROM signet_writer_lease WHERE expires_at > clock_timestamp()").Scan(&addr); err != nil {
		return ""
	}
	return addr
}

// Three replicas on one database, the leader killed with SIGKILL under
// load: every request gets an answer (201, or 503 with Retry-After while
// no replica leads), never a hang or a 201 for an entry that is not there;
// another replica leads and appends go on; every acknowledged entry is
// then readable, proven and searchable through every replica (the killed
// one restarted as a follower), checkpoints from before stay consistent,
// and the CA, TSA and TUF answer through followers.
func TestReplicasSurviveLeaderKill(t *testing.T) {
	rs := newReplicaSet(t, 3)
	rs.start(0)
	if got := rs.leader(); got != rs.urls[0] {
		t.Fatalf("the first replica does not lead: the lease names %q", got)
	}
	rs.start(1)
	rs.start(2)
	if got := rs.leader(); got != rs.urls[0] {
		t.Fatalf("a follower took the lease from a live leader: it names %q", got)
	}
	ctx := context.Background()

	// Read-your-writes: an entry appended through one replica is proven at
	// once by the next one.
	for i := 0; i < 9; i++ {
		p, _ := signedEntry(fmt.Sprintf("ryw %d", i))
		e, err := client.NewLog(rs.urls[i%3]).Upload(ctx, p)
		if err != nil {
			t.Fatalf("append through replica %d: %v", i%3, err)
		}
		if got, err := client.NewLog(rs.urls[(i+1)%3]).GetByIndex(ctx, e.LogIndex); err != nil || got.ID != e.ID {
			t.Fatalf("entry %d appended through replica %d, read through replica %d: %v", e.LogIndex, i%3, (i+1)%3, err)
		}
	}
	// A request a follower already forwarded is not forwarded again (a
	// read it answers itself).
	p, _ := signedEntry("forwarded twice")
	req, _ := http.NewRequest(http.MethodPost, rs.urls[1]+"/api/v1/log/entries", bytes.NewReader(p))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Signet-Forwarded-By", "http://elsewhere")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a forwarded request reaching a follower: %v %v", resp, err)
	}

	var mu sync.Mutex
	var acks []acked
	var checkpoints []note.Checkpoint
	var killedAt, firstAfter time.Time
	statuses := map[int]int{}
	httpc := &http.Client{Timeout: 60 * time.Second}
	stopLoad := appendLoad(6, func(w, i int) {
		base := rs.urls[(w+i)%3]
		p, hash := signedEntry(fmt.Sprintf("replicas %d %d", w, i))
		sent := time.Now()
		resp, err := httpc.Post(base+"/api/v1/log/entries", "application/json", bytes.NewReader(p))
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("a request to %s hung for 60 s: %v", base, err)
			}
			return // the killed replica: connection refused or reset
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		mu.Lock()
		defer mu.Unlock()
		statuses[resp.StatusCode]++
		switch {
		case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "":
			t.Errorf("503 without Retry-After from %s: %s", base, body)
		case resp.StatusCode >= 400 && resp.StatusCode < 500:
			t.Errorf("%d from %s for a valid entry: %s", resp.StatusCode, base, body)
		}
		if resp.StatusCode != http.StatusCreated {
			return
		}
		a, cp, err := ackOf(resp, body, hash)
		if err != nil {
			t.Error(err)
			return
		}
		acks = append(acks, a)
		checkpoints = append(checkpoints, cp)
		if !killedAt.IsZero() && sent.After(killedAt) && firstAfter.IsZero() {
			firstAfter = time.Now()
		}
	})
	time.Sleep(2 * time.Second)
	mu.Lock()
	before := len(acks)
	killedAt = time.Now()
	mu.Unlock()
	if err := rs.cmds[0].Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	rs.cmds[0].Wait() //nolint:errcheck
	// Reads go on through the followers while nobody leads yet.
	mu.Lock()
	first := acks[0]
	mu.Unlock()
	if e, err := client.NewLog(rs.urls[1]).GetByIndex(ctx, first.index); err != nil || e.ID != first.id {
		t.Fatalf("entry %d through a follower right after the leader's kill: %v", first.index, err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		done := !firstAfter.IsZero() && time.Since(firstAfter) > 2*time.Second
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			stopLoad()
			t.Fatalf("no append acknowledged within 60 s of the leader's kill (statuses %v)", statuses)
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopLoad()
	if before < 20 {
		t.Fatalf("only %d appends acknowledged before the kill; the test needs load", before)
	}
	newLeader := rs.leader()
	if newLeader != rs.urls[1] && newLeader != rs.urls[2] {
		t.Fatalf("after the kill the lease names %q, not a surviving replica", newLeader)
	}
	t.Logf("%d appends acknowledged, %d before the kill; failover gap %.1f s (kill to the first 201 of a request sent after it); statuses %v; new leader %s",
		len(acks), before, firstAfter.Sub(killedAt).Seconds(), statuses, newLeader)

	rs.start(0) // back, as a follower
	if got := rs.leader(); got != newLeader {
		t.Fatalf("the restarted replica took the lease from %s: %q", newLeader, got)
	}
	var wg sync.WaitGroup
	for r, base := range rs.urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lc := client.NewLog(base)
			_, latest, err := lc.Info(ctx)
			if err != nil {
				t.Errorf("replica %d: log info: %v", r, err)
				return
			}
			seen := map[int64]bool{}
			for _, a := range acks {
				e, err := lc.GetByIndex(ctx, a.index) // verifies proof, checkpoint and SET
				if err != nil || e.ID != a.id {
					t.Errorf("replica %d: acknowledged entry %s at index %d: %v", r, a.id, a.index, err)
					return
				}
				if seen[a.index] {
					t.Errorf("index %d acknowledged twice", a.index)
				}
				seen[a.index] = true
			}
			for _, a := range acks[:20] {
				if ids, err := lc.Search(ctx, model.SearchIndex{Hash: a.hash}); err != nil || len(ids) != 1 || ids[0] != a.id {
					t.Errorf("replica %d: search for %s: %v %v", r, a.id, ids, err)
				}
			}
			for _, cp := range checkpoints[:min(len(checkpoints), 200)] {
				if err := lc.Consistency(ctx, cp.Size, latest.Size, cp.RootHash, latest.RootHash); err != nil {
					t.Errorf("replica %d: checkpoint of size %d is not consistent with %d: %v", r, cp.Size, latest.Size, err)
					return
				}
			}
		}()
	}
	wg.Wait()

	// The other components, through a follower.
	follower := rs.urls[0]
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if chain, err := client.NewCA(follower).SigningCertificate(ctx, rs.idpToken("ops@example.com"), k); err != nil || len(chain) != 3 {
		t.Fatalf("certificate through a follower: %v", err)
	}
	d := sha256.Sum256([]byte("x"))
	if _, err := client.NewTSA(follower+"/api/v1/timestamp").Timestamp(ctx, client.TimestampRequest{Hash: crypto.SHA256, Digest: d[:]}); err != nil {
		t.Fatalf("timestamp through a follower: %v", err)
	}
	resp, err := http.Get(follower + "/tuf/1.root.json")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("TUF root through a follower: %v %v", resp, err)
	}
	resp.Body.Close()
}
