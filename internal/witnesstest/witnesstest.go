// Package witnesstest runs a real, independent c2sp.org/tlog-witness for
// tests. Start runs litewitness from filippo.io/torchwood (make litewitness
// installs it with its witnessctl), its SQLite database under t.TempDir and
// its Ed25519 key, made with ssh-keygen, held by a dedicated ssh-agent, as
// litewitness requires. StartOmniwitness runs transparency-dev's omniwitness
// (also installed by make litewitness), which unlike litewitness also takes
// checkpoints signed with ECDSA, as Rekor v1 signs them. Nothing of Signet is
// involved, so a test that has its log cosigned by one is an
// interoperability test.
//
// The test is skipped when the witness is not installed (as cosigntest does
// for cosign); Start fails when OpenSSH's ssh-agent, ssh-add or ssh-keygen is
// missing (Debian's openssh-client, which make test-deps installs).
package witnesstest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/signet-dev/signet/internal/cosigntest"
)

// startTimeout bounds how long a witness (or ssh-agent) may take to come up;
// litewitness and omniwitness take a few milliseconds.
const startTimeout = 15 * time.Second

// Witness is a running litewitness (Start) or omniwitness (StartOmniwitness).
type Witness struct {
	Name string // the witness's name on its cosignature lines
	URL  string // base URL; POST URL+"/add-checkpoint" is the tlog-witness endpoint
	// VKey is its verifier key, as litewitness reports it (omniwitness does
	// not: it is derived from the key it is given), the c2sp.org/signed-note
	// vkey of c2sp.org/tlog-cosignature's cosignature/v1 (type 0x04):
	// Name+<8 hex key hash>+base64(0x04 || 32-byte Ed25519 key), the key hash
	// being the first 4 bytes, big-endian, of SHA-256(Name || "\n" || 0x04 ||
	// key). formats' note.NewVerifierForCosignatureV1 takes it; x/mod's
	// note.NewVerifier does not (it knows only type 0x01).
	VKey string

	bin        string // the witness's executable: litewitness or omniwitness
	witnessctl string // litewitness's; empty for omniwitness
	db         string // its SQLite database
	log        string // its stdout and stderr
	args       []string
	// readyStatus is what GET URL+"/" answers once it serves: litewitness
	// has an index page, omniwitness serves only POST /add-checkpoint.
	readyStatus int

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has been waited for
	stopped bool
}

// Start starts litewitness named name (URL-like, e.g. "witness.example")
// with no logs (AddLog adds them) on a free port of 127.0.0.1, and returns
// once it answers HTTP. It and its ssh-agent are killed when the test ends.
func Start(t testing.TB, name string) *Witness {
	t.Helper()
	lw := cosigntest.Find(t, "litewitness")
	// witnessctl is installed with litewitness; look next to it first so that
	// a missing one is reported as what make litewitness installs.
	ctl := filepath.Join(filepath.Dir(lw), "witnessctl")
	if _, err := os.Stat(ctl); err != nil {
		ctl = cosigntest.Find(t, "witnessctl")
	}
	var tools [3]string
	for i, n := range []string{"ssh-agent", "ssh-add", "ssh-keygen"} {
		p, err := exec.LookPath(n)
		if err != nil {
			t.Fatalf("%s not found (Debian's openssh-client; make test-deps installs it): %v", n, err)
		}
		tools[i] = p
	}
	sshAgent, sshAdd, sshKeygen := tools[0], tools[1], tools[2]

	dir := t.TempDir()
	sock := startAgent(t, sshAgent, dir)

	key := filepath.Join(dir, "witness_ed25519")
	if out, err := exec.Command(sshKeygen, "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	add := exec.Command(sshAdd, key)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v\n%s", err, out)
	}
	pubLine, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(pubLine)
	if err != nil {
		t.Fatalf("parsing %s.pub: %v", key, err)
	}
	edPub, ok := pub.(ssh.CryptoPublicKey).CryptoPublicKey().(ed25519.PublicKey)
	if !ok {
		t.Fatalf("%s.pub is not an Ed25519 key", key)
	}

	w := &Witness{
		Name:        name,
		VKey:        CosignatureVKey(name, edPub),
		bin:         lw,
		witnessctl:  ctl,
		db:          filepath.Join(dir, "litewitness.db"),
		log:         filepath.Join(dir, "litewitness.log"),
		readyStatus: http.StatusOK,
	}
	w.launch(t, func() []string {
		return []string{"-db", w.db, "-name", name, "-key", ssh.FingerprintSHA256(pub),
			"-ssh-agent", sock, "-listen", freeAddr(t)}
	})

	reported := reportedVKey(w.log)
	if reported != w.VKey {
		t.Fatalf("litewitness reports verifier key %q, derived from its SSH key %q", reported, w.VKey)
	}
	return w
}

// CosignatureVKey is the c2sp.org/tlog-cosignature verifier key (type 0x04)
// of Ed25519 key pub for a witness named name: what litewitness logs as its
// "verifier key".
func CosignatureVKey(name string, pub ed25519.PublicKey) string {
	key := append([]byte{0x04}, pub...)
	h := sha256.New()
	h.Write([]byte(name + "\n"))
	h.Write(key)
	return fmt.Sprintf("%s+%08x+%s", name, binary.BigEndian.Uint32(h.Sum(nil)), base64.StdEncoding.EncodeToString(key))
}

var errExited = errors.New("witness exited")

// launch has w killed, and its log printed if the test failed, when the test
// ends, then starts it with args(), whose last element must be the address it
// listens on (a free port of 127.0.0.1, from freeAddr). The port is picked
// free and then released, so another process may take it first: the witness
// then exits at once, and is tried again with new args().
func (w *Witness) launch(t testing.TB, args func() []string) {
	t.Helper()
	prog := filepath.Base(w.bin)
	t.Cleanup(func() {
		w.kill()
		if t.Failed() {
			if b, err := os.ReadFile(w.log); err == nil {
				t.Logf("%s %s log:\n%s", prog, w.Name, b)
			}
		}
	})
	for attempt := 1; ; attempt++ {
		w.args = args()
		w.URL = "http://" + w.args[len(w.args)-1]
		err := w.start()
		if err == nil {
			return
		}
		if attempt == 3 || !errors.Is(err, errExited) {
			b, _ := os.ReadFile(w.log)
			t.Fatalf("starting %s %s: %v\n%s", prog, strings.Join(w.args, " "), err, b)
		}
	}
}

// start runs w.bin with w.args, appending to w.log, and waits until it
// answers HTTP.
func (w *Witness) start() error {
	logf, err := os.OpenFile(w.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(w.bin, w.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	w.mu.Lock()
	w.cmd, w.exited, w.stopped = cmd, exited, false
	w.mu.Unlock()

	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-exited:
			return fmt.Errorf("%w: %v", errExited, waitErr)
		default:
		}
		// The index page: readyStatus once it serves.
		if resp, err := client.Get(w.URL + "/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == w.readyStatus {
				return nil
			}
			w.kill()
			return fmt.Errorf("GET %s/: %s", w.URL, resp.Status)
		}
		if time.Now().After(deadline) {
			w.kill()
			return fmt.Errorf("not answering on %s after %v", w.URL, startTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// reportedVKey is the vkey litewitness logged at startup, in slog's text
// format: `... msg="verifier key" vkey=<vkey>` (quoted if it needs to be).
func reportedVKey(logPath string) string {
	b, err := os.ReadFile(logPath)
	if err != nil {
		return ""
	}
	var last string
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, `msg="verifier key"`) {
			continue
		}
		_, v, ok := strings.Cut(line, " vkey=")
		if !ok {
			continue
		}
		if strings.HasPrefix(v, `"`) {
			if u, err := strconv.QuotedPrefix(v); err == nil {
				v, _ = strconv.Unquote(u)
			}
		} else {
			v, _, _ = strings.Cut(v, " ")
		}
		last = v
	}
	return last
}

// startAgent runs a dedicated ssh-agent in the foreground (-D) listening on
// a socket in dir, or in a shorter temporary directory if that path is too
// long for a Unix socket, and returns the socket's path.
func startAgent(t testing.TB, sshAgent, dir string) string {
	t.Helper()
	sock := filepath.Join(dir, "agent.sock")
	if len(sock) >= 100 { // sun_path holds 108 bytes with the NUL
		short, err := os.MkdirTemp("", "lw")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(short) })
		sock = filepath.Join(short, "agent.sock")
	}
	cmd := exec.Command(sshAgent, "-D", "-a", sock)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("ssh-agent: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(startTimeout)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return sock
		}
		select {
		case <-exited:
			t.Fatalf("ssh-agent -D -a %s exited:\n%s", sock, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("ssh-agent not listening on %s after %v", sock, startTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	return freeAddrs(t, 1)[0]
}

// freeAddrs is n different free addresses of 127.0.0.1.
func freeAddrs(t testing.TB, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		addrs[i] = l.Addr().String()
	}
	return addrs
}

// AddLog has the witness cosign the log named origin, whose checkpoints
// verify with logVKey (a signed-note vkey that x/mod's note.NewVerifier
// takes: Ed25519, type 0x01), starting from the empty tree: witnessctl
// add-log and add-key on its database, which takes effect at once, while it
// runs. A log is added once; a second add-log of the same origin fails.
// AddLog is for litewitness only: omniwitness is given its logs by
// StartOmniwitness.
func (w *Witness) AddLog(t testing.TB, origin, logVKey string) {
	t.Helper()
	if w.witnessctl == "" {
		t.Fatalf("AddLog(%q): %s is not a litewitness; StartOmniwitness takes its logs", origin, w.Name)
	}
	w.witnessctlRun(t, "add-log", "-db", w.db, "-origin", origin)
	w.witnessctlRun(t, "add-key", "-db", w.db, "-origin", origin, "-key", logVKey)
}

func (w *Witness) witnessctlRun(t testing.TB, args ...string) {
	t.Helper()
	out, err := exec.Command(w.witnessctl, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("witnessctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	// witnessctl only warns (and adds the key) when the key's name is not the
	// origin; litewitness then takes checkpoints signed under that other name.
	if strings.Contains(string(out), "Warning") {
		t.Logf("witnessctl %s:\n%s", strings.Join(args, " "), out)
	}
}

// Stop kills the witness, to test a witness that is down: once it returns,
// URL refuses connections. Stopping a stopped witness does nothing.
func (w *Witness) Stop(t testing.TB) {
	t.Helper()
	w.kill()
}

func (w *Witness) kill() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cmd == nil || w.stopped {
		return
	}
	w.stopped = true
	w.cmd.Process.Kill()
	<-w.exited
}
