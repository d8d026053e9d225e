package certfiles

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// keyPair is a self-signed server certificate and its key, PEM-encoded.
type keyPair struct {
	cert, key []byte
	serial    *big.Int
}

func newPair(t *testing.T, cn string, sans bool) keyPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if sans {
		tmpl.DNSNames, tmpl.IPAddresses = []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	return keyPair{
		cert:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:    pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		serial: serial,
	}
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
	p, err := Load(certFile, keyFile, quiet())
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

	// Files that vanish (a volume unmounted) leave the loaded pair serving.
	os.Remove(certFile)
	clock = clock.Add(CheckInterval)
	if got := served(); got.Cmp(second.serial) != 0 {
		t.Fatalf("files gone: serving %v, want the second certificate still", got)
	}
}
