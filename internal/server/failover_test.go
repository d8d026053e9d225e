package server_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/signet-dev/signet/internal/db"
)

// pgNode is a PostgreSQL server the test runs itself (as the postgres user
// when the test runs as root, as the managed cluster does), listening on a
// Unix socket in its data directory only.
type pgNode struct {
	t      *testing.T
	bin    string
	dir    string
	runAs  *user.User
	stopFn func()
}

func (n *pgNode) run(tool string, args ...string) string {
	n.t.Helper()
	path := filepath.Join(n.bin, tool)
	cmd := exec.Command(path, args...)
	if n.runAs != nil {
		cmd = exec.Command("runuser", append([]string{"-u", n.runAs.Username, "--", path}, args...)...)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(n.dir, "server.log"))
		n.t.Fatalf("%s %v: %v\n%s\n%s", tool, args, err, out, log)
	}
	return string(out)
}

// own gives a directory to the postgres user and lets it reach it.
func (n *pgNode) own(dir string) {
	n.t.Helper()
	if n.runAs == nil {
		return
	}
	uid, _ := strconv.Atoi(n.runAs.Uid)
	gid, _ := strconv.Atoi(n.runAs.Gid)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		n.t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		n.t.Fatal(err)
	}
	for d := filepath.Dir(dir); d != "/"; d = filepath.Dir(d) {
		if st, err := os.Stat(d); err == nil && st.Mode().Perm()&0o001 == 0 {
			os.Chmod(d, st.Mode().Perm()|0o001) //nolint:errcheck
		}
	}
}

func (n *pgNode) appendConf(file, text string) {
	n.t.Helper()
	f, err := os.OpenFile(filepath.Join(n.dir, file), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		n.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		n.t.Fatal(err)
	}
}

func (n *pgNode) start() {
	n.t.Helper()
	n.run("pg_ctl", "start", "-D", n.dir, "-l", filepath.Join(n.dir, "server.log"), "-w", "-t", "60")
	n.t.Cleanup(func() {
		cmd := exec.Command(filepath.Join(n.bin, "pg_ctl"), "stop", "-D", n.dir, "-m", "immediate")
		if n.runAs != nil {
			cmd = exec.Command("runuser", "-u", n.runAs.Username, "--", filepath.Join(n.bin, "pg_ctl"), "stop", "-D", n.dir, "-m", "immediate")
		}
		cmd.Run() //nolint:errcheck // already stopped, or killed
	})
}

// kill ends the server as a crash would: SIGKILL to the postmaster.
func (n *pgNode) kill() {
	n.t.Helper()
	data, err := os.ReadFile(filepath.Join(n.dir, "postmaster.pid"))
	if err != nil {
		n.t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.SplitN(string(data), "\n", 2)[0])
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		n.t.Fatal(err)
	}
}

// The database fails over under load: a primary with a synchronous
// streaming standby, Signet connected with both hosts and
// target_session_attrs=read-write; the primary is killed mid-appends and
// the standby promoted. Signet carries on by itself: no acknowledged entry
// is lost, new appends succeed on the promoted standby, and the log stays
// consistent with its checkpoint from before.
func TestPrimaryFailover(t *testing.T) {
	bin, err := db.FindBinDir()
	if err != nil {
		t.Fatal(err)
	}
	var runAs *user.User
	if os.Geteuid() == 0 {
		if runAs, err = user.Lookup("postgres"); err != nil {
			t.Fatalf("running as root needs the postgres user: %v", err)
		}
	}
	root, err := os.MkdirTemp("", "failover-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	primary := &pgNode{t: t, bin: bin, dir: filepath.Join(root, "p"), runAs: runAs}
	standby := &pgNode{t: t, bin: bin, dir: filepath.Join(root, "s"), runAs: runAs}
	primary.own(primary.dir)
	primary.run("initdb", "-D", primary.dir, "-U", "signet", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
	primary.appendConf("postgresql.conf", fmt.Sprintf("\nlisten_addresses = ''\nunix_socket_directories = '%s'\n", primary.dir))
	primary.start()
	primary.run("createdb", "-h", primary.dir, "-U", "signet", "signet")
	standby.own(standby.dir)
	standby.run("pg_basebackup", "-D", standby.dir, "-h", primary.dir, "-U", "signet", "-R", "-X", "stream", "-c", "fast")
	// The copy has the primary's socket lock and log (its socket is in its
	// data directory).
	os.Remove(filepath.Join(standby.dir, ".s.PGSQL.5432.lock")) //nolint:errcheck
	os.Remove(filepath.Join(standby.dir, "server.log"))         //nolint:errcheck
	standby.appendConf("postgresql.conf", fmt.Sprintf("\nunix_socket_directories = '%s'\n", standby.dir))
	standby.appendConf("postgresql.auto.conf", fmt.Sprintf("\nprimary_conninfo = 'host=%s user=signet application_name=standby'\n", primary.dir))
	standby.start()

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("host=%s user=signet dbname=signet sslmode=disable", primary.dir))
	if err != nil {
		t.Fatal(err)
	}
	// Synchronous only now that the standby streams: before, every commit
	// would wait for it.
	if _, err := conn.Exec(ctx, "ALTER SYSTEM SET synchronous_standby_names = 'standby'"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var state string
		conn.QueryRow(ctx, "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby'").Scan(&state) //nolint:errcheck
		if state == "sync" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the standby did not become synchronous within 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	conn.Close(ctx)

	dsn := fmt.Sprintf("host=%s,%s port=5432,5432 user=signet dbname=signet sslmode=disable target_session_attrs=read-write connect_timeout=2", primary.dir, standby.dir)
	f := newFixture(t)
	f.dbURL = dsn
	inst := f.start(t)
	// Appends from four workers, before, during and after the failover;
	// the bodies are made here, so no worker needs t.
	s := newSigner(t)
	bodies := make(chan []byte, 4000)
	for i := 0; i < cap(bodies); i++ {
		body, _, _ := s.hashedRekord(t, []byte(fmt.Sprintf("failover %d", i)), nil)
		bodies <- body
	}
	close(bodies)
	var mu sync.Mutex
	var acked []string
	failures := 0
	count := func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		return len(acked), failures
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for body := range bodies {
				select {
				case <-stop:
					return
				default:
				}
				reqCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
				e, err := inst.client.Upload(reqCtx, body)
				cancel()
				mu.Lock()
				if err == nil {
					acked = append(acked, e.ID)
				} else {
					failures++
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	stopped := false
	stopWorkers := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	t.Cleanup(stopWorkers)
	waitFor := func(n int, within time.Duration, what string) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			got, failed := count()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d acknowledged, %d failed after %s", what, got, failed, within)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// Appends flowing, then a checkpoint to prove the rest against.
	waitFor(50, 30*time.Second, "appends before the failover")
	_, before, err := inst.client.Info(ctx)
	if err != nil || before.Size == 0 {
		t.Fatalf("the checkpoint before the failover: size %d, %v", before.Size, err)
	}
	primary.kill()
	standby.run("pg_ctl", "promote", "-D", standby.dir, "-w", "-t", "60")
	atPromotion, _ := count()
	// Appends succeed again on the promoted standby.
	waitFor(atPromotion+20, 60*time.Second, "appends after the promotion")
	stopWorkers()
	got, failed := count()
	t.Logf("%d appends acknowledged, %d failed during the failover", got, failed)

	// Nothing acknowledged is lost; every entry verifies.
	for _, id := range acked {
		if _, err := inst.client.GetByUUID(ctx, id); err != nil {
			t.Fatalf("acknowledged entry %s after the failover: %v", id, err)
		}
	}
	_, after, err := inst.client.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.Size < uint64(len(acked)) {
		t.Fatalf("tree size %d after %d acknowledged appends", after.Size, len(acked))
	}
	if err := inst.client.Consistency(ctx, before.Size, after.Size, before.RootHash, after.RootHash); err != nil || after.Size <= before.Size {
		t.Fatalf("consistency from %d before the failover to %d after: %v", before.Size, after.Size, err)
	}
	// The database the log now lives on is the promoted standby.
	conn, err = pgx.Connect(ctx, fmt.Sprintf("host=%s user=signet dbname=signet sslmode=disable", standby.dir))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var inRecovery bool
	if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil || inRecovery {
		t.Fatalf("the standby is not the primary now: %v %v", inRecovery, err)
	}
}
