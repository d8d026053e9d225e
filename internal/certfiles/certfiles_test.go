package certfiles

import (
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signet-dev/signet/internal/tlstest"
)

// keyPair is a self-signed server certificate and its key, PEM-encoded.
type keyPair struct {
	cert, key []byte
	serial    *big.Int
}

func newPair(t *testing.T, cn string, sans bool) keyPair {
	t.Helper()
	san := ""
	if sans {
		san = "IP:127.0.0.1,DNS:localhost"
	}
	certFile, keyFile, cert := tlstest.Cert(t, t.TempDir(), cn, san)
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return keyPair{cert: certPEM, key: keyPEM, serial: cert.SerialNumber}
}

// write puts data in name with a modification time of its own, so the
// change is seen however coarse the file system's clock.
func write(t *testing.T, name string, data []byte, version int) {
	t.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
	mt := time.Date(2026, 1, 1, 0, 0, version, 0, time.UTC)
	if err := os.Chtimes(name, mt, mt); err != nil {
		t.Fatal(err)
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestLoadRefuses(t *testing.T) {
	dir := t.TempDir()
	good, other, noSAN := newPair(t, "good", true), newPair(t, "other", true), newPair(t, "bare", false)
	cases := []struct {
		name      string
		cert, key []byte // nil: file absent
		want      string
	}{
		{"missing certificate", nil, good.key, "cert.pem: no such file"},
		{"missing key", good.cert, nil, "key.pem: no such file"},
		{"key of another certificate", good.cert, other.key, "private key does not match public key"},
		{"not PEM", []byte("hello"), good.key, "failed to find any PEM data in certificate input"},
		{"no subjectAltName", noSAN.cert, noSAN.key, "(CN=bare) names no host in subjectAltName"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
			os.Remove(certFile)
			os.Remove(keyFile)
			if c.cert != nil {
				write(t, certFile, c.cert, 1)
			}
			if c.key != nil {
				write(t, keyFile, c.key, 1)
			}
			p, err := Load(certFile, keyFile, quiet())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Load = %v, %v; want an error containing %q", p, err, c.want)
			}
		})
	}
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first, second := newPair(t, "first", true), newPair(t, "second", true)
	write(t, certFile, first.cert, 1)
	write(t, keyFile, first.key, 1)
	var logs strings.Builder
	p, err := Load(certFile, keyFile, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Now()
	p.now = func() time.Time { return clock }
	served := func() *big.Int {
		t.Helper()
		c, err := p.GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf.SerialNumber
	}
	if got := served(); got.Cmp(first.serial) != 0 {
		t.Fatalf("serving serial %v, want the first certificate's %v", got, first.serial)
	}

	// A renewal caught between its writes: the new certificate with the
	// old key does not load, and the first pair stays in service.
	write(t, certFile, second.cert, 2)
	clock = clock.Add(CheckInterval)
	if got := served(); got.Cmp(first.serial) != 0 {
		t.Fatalf("half-written renewal: serving %v, want the first certificate still", got)
	}
	// Until the files change again, the broken pair is neither retried nor
	// logged again.
	clock = clock.Add(CheckInterval)
	if got := served(); got.Cmp(first.serial) != 0 || strings.Count(logs.String(), "do not load") != 1 {
		t.Fatalf("serving %v; log:\n%s", got, logs.String())
	}
	// The key arrives; within the check interval nothing is looked at.
	write(t, keyFile, second.key, 2)
	clock = clock.Add(CheckInterval / 2)
	if got := served(); got.Cmp(first.serial) != 0 {
		t.Fatalf("before the interval: serving %v, want the first certificate still", got)
	}
	clock = clock.Add(CheckInterval / 2)
	if got := served(); got.Cmp(second.serial) != 0 {
		t.Fatalf("after the renewal: serving %v, want the second certificate's %v", got, second.serial)
	}
	if p.Leaf().Subject.CommonName != "second" {
		t.Errorf("Leaf is %v, want CN=second", p.Leaf().Subject)
	}

	// Files that vanish (a volume unmounted) leave the loaded pair serving,
	// reported once.
	os.Remove(certFile)
	for i := 0; i < 3; i++ {
		clock = clock.Add(CheckInterval)
		if got := served(); got.Cmp(second.serial) != 0 {
			t.Fatalf("files gone: serving %v, want the second certificate still", got)
		}
	}
	if n := strings.Count(logs.String(), "unreadable"); n != 1 {
		t.Errorf("vanished files reported %d times:\n%s", n, logs.String())
	}
}
