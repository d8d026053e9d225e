package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthcheck(t *testing.T) {
	healthy := true
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !healthy {
			http.Error(w, "database unreachable", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n")) //nolint:errcheck
	})
	plain, secure := httptest.NewServer(h), httptest.NewTLSServer(h)
	defer plain.Close()
	defer secure.Close()
	run := func(args ...string) (string, error) {
		root := newRootCommand()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs(append([]string{"healthcheck"}, args...))
		err := root.Execute()
		return out.String(), err
	}
	if out, err := run(plain.URL + "/healthz"); err != nil || out != "healthy: ok\n" {
		t.Errorf("healthy server: %q, %v", out, err)
	}
	if _, err := run(secure.URL + "/healthz"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("self-signed TLS without --insecure-skip-verify: %v", err)
	}
	if out, err := run("--insecure-skip-verify", secure.URL+"/healthz"); err != nil || out != "healthy: ok\n" {
		t.Errorf("TLS with --insecure-skip-verify: %q, %v", out, err)
	}
	healthy = false
	if _, err := run(plain.URL + "/healthz"); err == nil || !strings.Contains(err.Error(), "answered 503 Service Unavailable: database unreachable") {
		t.Errorf("unhealthy server: %v", err)
	}
	addr := plain.Listener.Addr().String()
	plain.Close()
	if _, err := run("http://" + addr + "/healthz"); err == nil || !strings.Contains(err.Error(), "unhealthy: ") {
		t.Errorf("nothing listening: %v", err)
	}
}
