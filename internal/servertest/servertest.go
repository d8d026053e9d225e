// Package servertest builds the signet-server binary and starts it, for
// tests that run the exact command lines a deployment runs (compose
// services, a Helm chart's containers).
package servertest

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Build compiles cmd/signet-server into a temporary directory and returns
// the binary's path. It works from any module that can see this one (the
// Helm chart's tests are a module of their own).
func Build(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/signet-dev/signet").Output()
	if err != nil {
		t.Fatalf("finding the signet module: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "signet-server")
	if out, err := exec.Command("go", "build", "-C", strings.TrimSpace(string(out)), "-o", bin, "./cmd/signet-server").CombinedOutput(); err != nil {
		t.Fatalf("go build signet-server: %v\n%s", err, out)
	}
	return bin
}

// Start starts cmd (a signet-server run), copies its log to the test's
// stderr, waits for its "listening" line and returns its base URL
// (http:// unless scheme says otherwise). The process gets SIGINT when the
// test ends.
func Start(t testing.TB, cmd *exec.Cmd, scheme string) string {
	t.Helper()
	if scheme == "" {
		scheme = "http"
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt) //nolint:errcheck
		cmd.Wait()                       //nolint:errcheck
	})
	addr := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`msg="signet-server listening" addr=(\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			os.Stderr.WriteString(sc.Text() + "\n") //nolint:errcheck
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		close(addr)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			t.Fatal("signet-server exited before listening")
		}
		return scheme + "://" + a
	case <-time.After(60 * time.Second):
		t.Fatal("signet-server did not listen within 60 s")
	}
	return ""
}
