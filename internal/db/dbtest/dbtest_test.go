package dbtest

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/signet-dev/signet/internal/db"
)

func TestMain(m *testing.M) { Main(m) }

// holdEnv makes this test binary, run as a child, start its cluster and
// wait to be killed.
const holdEnv = "DBTEST_HOLD_CLUSTER"

// A test binary killed before it could stop its cluster (as go test's
// -timeout does) leaves the cluster running; the next test binary stops
// it and removes its directory.
func TestOrphanedClusterIsSwept(t *testing.T) {
	if os.Getenv(holdEnv) != "" {
		// The child: Main started its cluster before running this.
		os.Stdout.WriteString("holding\n")
		select {}
	}
	// Its own temporary directory, readable by the postgres user the
	// cluster runs as when the tests run as root.
	tmp, err := os.MkdirTemp("", "dbtest-sweep-")
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last first: the child killed, its cluster swept, the
	// directory removed, whatever failed.
	t.Cleanup(func() { os.RemoveAll(tmp) })
	t.Cleanup(func() { sweepOrphans(tmp, 0) })
	if err := os.Chmod(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	// The child dies with this test binary, and on its own after a while.
	child := exec.Command(os.Args[0], "-test.run=^TestOrphanedClusterIsSwept$", "-test.count=1", "-test.timeout=3m")
	child.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DATABASE_URL=") && !strings.HasPrefix(kv, "TMPDIR=") {
			child.Env = append(child.Env, kv)
		}
	}
	child.Env = append(child.Env, holdEnv+"=1", "TMPDIR="+tmp)
	child.Stderr = os.Stderr
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		child.Process.Kill() //nolint:errcheck
		child.Wait()         //nolint:errcheck
	})
	held := make(chan bool, 1)
	go func() {
		lines := bufio.NewScanner(out)
		for lines.Scan() {
			if lines.Text() == "holding" {
				held <- true
				return
			}
		}
		held <- false
	}()
	select {
	case ok := <-held:
		if !ok {
			child.Wait() //nolint:errcheck
			t.Fatal("the child test binary ended without starting its cluster")
		}
	case <-time.After(2 * time.Minute):
		child.Process.Kill() //nolint:errcheck
		t.Fatal("the child test binary did not start its cluster within 2 minutes")
	}
	dirs, _ := filepath.Glob(filepath.Join(tmp, clusterPrefix+"*"))
	if len(dirs) != 1 {
		t.Fatalf("clusters under %s: %v, want the child's one", tmp, dirs)
	}
	pg := filepath.Join(dirs[0], "pg")
	postmaster, ok := db.RunningPostmaster(pg)
	if !ok {
		t.Fatalf("no postmaster runs in %s", pg)
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	child.Wait() //nolint:errcheck
	if _, ok := db.RunningPostmaster(pg); !ok {
		t.Fatal("the cluster stopped with its test binary: nothing was left to sweep")
	}
	// Another test binary's cluster, alive, is left alone: this one's
	// (under the usual temporary directory) is not under tmp, so a second
	// directory owned by this process stands in for it.
	mine := filepath.Join(tmp, clusterPrefix+"in-use")
	if err := os.Mkdir(mine, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mine, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	sweepOrphans(tmp, 0)
	if !db.ProcessGone(postmaster) {
		t.Fatalf("the orphaned cluster's postmaster %d still runs after the sweep", postmaster)
	}
	if _, err := os.Stat(dirs[0]); !os.IsNotExist(err) {
		t.Fatalf("the orphaned cluster's directory is still there (%v)", err)
	}
	if _, err := os.Stat(mine); err != nil {
		t.Fatalf("the sweep removed a directory whose owner is alive: %v", err)
	}
}
