// Package softhsmtest gives tests a real PKCS#11 token: SoftHSM2 with a
// token initialised in a temporary directory.
package softhsmtest

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Token is an initialised SoftHSM2 token.
type Token struct {
	Module string
	Label  string
	PIN    string
}

// URI names a key (by label) in the token.
func (tk *Token) URI(object string) string {
	return fmt.Sprintf("pkcs11:token=%s;object=%s?module-path=%s&pin-value=%s",
		url.PathEscape(tk.Label), url.PathEscape(object), url.QueryEscape(tk.Module), tk.PIN)
}

// modulePaths are where Debian and others install SoftHSM2.
var modulePaths = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
}

// setup is shared by every test of a binary: a PKCS#11 module reads its
// configuration once per process, at initialisation.
var setup struct {
	once  sync.Once
	token *Token
	err   error
}

// Setup returns the process's token, skipping the test when SoftHSM2 is not
// installed (make test installs it).
func Setup(t testing.TB) *Token {
	t.Helper()
	setup.once.Do(func() { setup.token, setup.err = initToken() })
	if setup.err != nil {
		t.Skipf("SoftHSM2 unavailable (Debian: apt-get install softhsm2): %v", setup.err)
	}
	return setup.token
}

func initToken() (*Token, error) {
	module := ""
	for _, p := range modulePaths {
		if _, err := os.Stat(p); err == nil {
			module = p
			break
		}
	}
	if module == "" {
		return nil, fmt.Errorf("libsofthsm2.so not found")
	}
	dir, err := os.MkdirTemp("", "signet-softhsm-")
	if err != nil {
		return nil, err
	}
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
		return nil, err
	}
	os.Setenv("SOFTHSM2_CONF", conf)
	tk := &Token{Module: module, Label: "signet-test", PIN: "1234"}
	out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", tk.Label, "--pin", tk.PIN, "--so-pin", "5678").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("softhsm2-util --init-token: %v: %s", err, out)
	}
	return tk, nil
}
