// Package cosigntest finds the unmodified tools the interoperability tests
// run: the Sigstore clients cosign and rekor-cli, and through Find any other
// that make test installs with go install, such as litewitness (make test
// installs the versions the Makefile pins).
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
	return Find(t, "cosign")
}

// RekorCLI is rekor-cli, found as Binary finds cosign.
func RekorCLI(t testing.TB) string {
	t.Helper()
	return Find(t, "rekor-cli")
}

// Find is the named binary on PATH, else in GOPATH/bin (where go install
// puts it). The test is skipped, saying why, only when neither exists; the
// message names the make target that installs it, make <name>.
func Find(t testing.TB, name string) string {
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
