// Package cosigntest finds the unmodified cosign the interoperability tests
// run (make test installs the version the Makefile pins).
package cosigntest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Binary is cosign on PATH, else in GOPATH/bin. The test is skipped, saying
// why, only when neither exists: make test installs it first.
func Binary(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("cosign"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", "cosign")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("cosign not installed (make cosign installs it)")
	return ""
}
