// Package cosigntest finds the unmodified Sigstore clients the
// interoperability tests run, cosign and rekor-cli (make test installs the
// versions the Makefile pins).
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
	return find(t, "cosign")
}

// RekorCLI is rekor-cli, found as Binary finds cosign.
func RekorCLI(t testing.TB) string {
	t.Helper()
	return find(t, "rekor-cli")
}

func find(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skipf("%s not installed (make %s installs it)", name, name)
	return ""
}
