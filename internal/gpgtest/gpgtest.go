// Package gpgtest gives tests a GnuPG home of their own, to make keys and
// signatures with the real gpg.
package gpgtest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Home is a GnuPG home directory; its agent is stopped and the directory
// removed when the test ends.
type Home struct {
	t   testing.TB
	Dir string
}

// New makes a home under the system's temporary directory: the agent's
// socket path must fit in 108 bytes, which t.TempDir's paths may not.
func New(t testing.TB) *Home {
	t.Helper()
	dir, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", dir, "--kill", "all").Run() //nolint:errcheck
		os.RemoveAll(dir)
	})
	return &Home{t: t, Dir: dir}
}

// GPG runs gpg in the home, unattended (keys have no passphrase), and
// returns its standard output; the test fails with gpg's standard error.
func (h *Home) GPG(args ...string) []byte {
	h.t.Helper()
	cmd := exec.Command("gpg", append([]string{"--homedir", h.Dir, "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		errors.As(err, &ee)
		var stderr []byte
		if ee != nil {
			stderr = ee.Stderr
		}
		h.t.Fatalf("gpg %v: %v\n%s", args, err, stderr)
	}
	return out
}

// Key makes a key for uid (algo as gpg --quick-gen-key takes it, no
// expiry) and returns it exported, armored.
func (h *Home) Key(uid, algo string) []byte {
	h.t.Helper()
	h.GPG("--quick-gen-key", uid, algo, "default", "never")
	return h.GPG("--armor", "--export", uid)
}

// Fingerprint is the fingerprint of the key whose user ID is uid.
func (h *Home) Fingerprint(uid string) string {
	h.t.Helper()
	for _, line := range strings.Split(string(h.GPG("--with-colons", "--list-keys", uid)), "\n") {
		if f := strings.Split(line, ":"); f[0] == "fpr" {
			return f[9]
		}
	}
	h.t.Fatalf("no fingerprint for %s", uid)
	return ""
}

// Sign makes a detached signature over content with uid's key, armored or
// binary.
func (h *Home) Sign(uid string, content []byte, armor bool) []byte {
	h.t.Helper()
	file := filepath.Join(h.Dir, "signed")
	if err := os.WriteFile(file, content, 0o600); err != nil {
		h.t.Fatal(err)
	}
	args := []string{"--local-user", uid, "--output", "-", "--detach-sign", file}
	if armor {
		args = append([]string{"--armor"}, args...)
	}
	return h.GPG(args...)
}
