package main

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/signet-dev/signet/internal/tlstest"
)

// With tls.cert_file and tls.key_file the public listener speaks HTTPS and
// HTTP/2, sends HSTS, advertises https:// in the trust material, and picks
// up a renewed certificate without a restart.
func TestTLSListener(t *testing.T) {
	bin := buildServer(t)
	dir := t.TempDir()
	// The server reads tls.crt and tls.key; each certificate is made
	// beside them and moved over them, as a renewal would.
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	firstCert, firstKey, first := tlstest.ServerCert(t, dir, "first")
	for from, to := range map[string]string{firstCert: certFile, firstKey: keyFile} {
		if err := os.Rename(from, to); err != nil {
			t.Fatal(err)
		}
	}
	dataDir := filepath.Join(t.TempDir(), "d")
	args := writeConfig(t, "tls:\n  cert_file: "+certFile+"\n  key_file: "+keyFile+"\n")
	cmd, base, banner := startDevWith(t, bin, dataDir, args...)
	defer stopDev(t, cmd, dataDir)
	if !strings.HasPrefix(base, "https://127.0.0.1:") {
		t.Fatalf("banner names %q, want an https:// URL:\n%s", base, banner)
	}

	roots := x509.NewCertPool()
	roots.AddCert(first)
	// A new connection per request, so each sees the certificate served now.
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true, DisableKeepAlives: true}
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	resp, body := get("/healthz")
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("/healthz over TLS: %s %s %q, want 200 over HTTP/2", resp.Proto, resp.Status, body)
	}
	if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
		t.Errorf("Strict-Transport-Security = %q", got)
	}
	if cn := resp.TLS.PeerCertificates[0].Subject.CommonName; cn != "first" {
		t.Errorf("served certificate CN=%s, want first", cn)
	}
	if _, body := get("/api/v1/trust/signing_config.json"); !strings.Contains(body, `"`+base+`"`) {
		t.Errorf("signing_config.json does not advertise %s:\n%s", base, body)
	}
	_, metrics := get("/metrics")
	m := regexp.MustCompile(`(?m)^signet_tls_certificate_expiry_timestamp_seconds (\S+)$`).FindStringSubmatch(metrics)
	if m == nil {
		t.Fatal("/metrics lacks signet_tls_certificate_expiry_timestamp_seconds")
	}
	if v, _ := strconv.ParseFloat(m[1], 64); int64(v) != first.NotAfter.Unix() {
		t.Errorf("signet_tls_certificate_expiry_timestamp_seconds = %s, want %d", m[1], first.NotAfter.Unix())
	}

	// Plain HTTP to the TLS port is answered with a 400, not served.
	plain, err := http.Get(strings.Replace(base, "https://", "http://", 1) + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	plain.Body.Close()
	if plain.StatusCode != http.StatusBadRequest {
		t.Errorf("plain HTTP to the TLS listener: %s, want 400", plain.Status)
	}

	// Renewal: a new pair moved over the old files, key first.
	secondCert, secondKey, second := tlstest.ServerCert(t, dir, "second")
	roots.AddCert(second)
	if err := os.Rename(secondKey, keyFile); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(secondCert, certFile); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, _ := get("/healthz")
		if resp.TLS.PeerCertificates[0].Subject.CommonName == "second" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the renewed certificate was not served within 15 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// A TLS pair that does not load stops start-up with the file named.
func TestTLSRefusesMismatchedKey(t *testing.T) {
	clearConfigEnv(t)
	dir := t.TempDir()
	aCert, _, _ := tlstest.ServerCert(t, dir, "a")
	_, bKey, _ := tlstest.ServerCert(t, dir, "b")
	args := writeConfig(t, "tls:\n  cert_file: "+aCert+"\n  key_file: "+bKey+"\n")
	err := runDev(t, append(args, "--listen", "127.0.0.1:0")...)
	if err == nil || !strings.Contains(err.Error(), "tls: loading TLS certificate "+aCert) || !strings.Contains(err.Error(), "private key does not match") {
		t.Fatalf("start-up with a mismatched key: %v", err)
	}
}

// A configuration error is reported before the port is bound: with both
// wrong, the error names the configuration, not the taken port.
func TestConfigErrorsComeBeforeTheListener(t *testing.T) {
	clearConfigEnv(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	args := writeConfig(t, "tls:\n  cert_file: /nonexistent.crt\n")
	err = runDev(t, append(args, "--listen", taken.Addr().String())...)
	if err == nil || !strings.Contains(err.Error(), "tls.cert_file and tls.key_file go together") {
		t.Fatalf("a bad configuration on a taken port: %v", err)
	}
}
