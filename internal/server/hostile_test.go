package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/signet-dev/signet/client"
	"github.com/signet-dev/signet/internal/config"

	"github.com/signet-dev/signet/internal/syncbuf"
)

// startLogged is startDev with the server's log kept for the test to read.
func (f fixture) startLogged(t *testing.T, mutate func(*config.Config)) (*instance, *syncbuf.Buffer) {
	t.Helper()
	logs := &syncbuf.Buffer{}
	return f.startDevLogging(t, logs, mutate), logs
}

// rawRequest sends a request's head announcing contentLength bytes of body
// and then only sent of them, over a connection left open for the caller.
func rawRequest(t *testing.T, addr, path string, contentLength int, sent []byte) *net.TCPConn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, addr, contentLength)
	if _, err := conn.Write(sent); err != nil {
		t.Fatal(err)
	}
	return conn.(*net.TCPConn)
}

// metric reads one unlabelled sample from /metrics.
func (i *instance) metric(name string) float64 {
	i.t.Helper()
	for _, line := range strings.Split(string(i.get("/metrics", http.StatusOK)), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				i.t.Fatalf("metric %s: %v", line, err)
			}
			return f
		}
	}
	i.t.Fatalf("metric %s not exported", name)
	return 0
}

// TestHostileClientsGetCheap4xx replays the adversarial probe's findings
// that concern the HTTP layer: each fails on the code before the fix.
func TestHostileClientsGetCheap4xx(t *testing.T) {
	inst, logs := newFixture(t).startLogged(t, func(c *config.Config) {
		c.Log.MaxRequestBytes = 1 << 20
		c.HTTP.MaxBodyBytesInFlight = 2 << 20
	})
	addr := strings.TrimPrefix(inst.http.URL, "http://")

	t.Run("made-up methods do not become metric series", func(t *testing.T) {
		for i := 0; i < 50; i++ {
			req, _ := http.NewRequest(strings.Repeat("M", 100)+strconv.Itoa(i), inst.http.URL+"/api/v1/log", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		methods := map[string]bool{}
		for _, m := range regexp.MustCompile(`signet_http_requests_total\{[^}]*method="([^"]*)"`).FindAllStringSubmatch(string(inst.get("/metrics", http.StatusOK)), -1) {
			methods[m[1]] = true
		}
		var got []string
		for m := range methods {
			got = append(got, m)
		}
		sort.Strings(got)
		// The start-up fetched the log key with GET; the 50 made-up methods
		// are all OTHER.
		if strings.Join(got, ",") != "GET,OTHER" {
			t.Fatalf("method labels %v, want GET and OTHER", got)
		}
		inst.post("/metrics", []byte("{}"), http.StatusMethodNotAllowed)
	})

	t.Run("a client that stops mid-body gets 400 and no error is logged", func(t *testing.T) {
		for _, path := range []string{"/api/v1/log/entries", "/api/v1/log/entries/retrieve", "/api/v1/index/retrieve", "/ct/v1/add-chain", "/ct/v1/add-pre-chain", "/api/v2/signingCert", "/api/v1/timestamp"} {
			conn := rawRequest(t, addr, path, 1000, []byte(`{"kind":`))
			if err := conn.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "reading the request body") {
				t.Fatalf("%s: %d %q, want 400 saying the body was cut short", path, resp.StatusCode, body)
			}
		}
		if strings.Contains(logs.String(), "level=ERROR") {
			t.Fatalf("client faults were logged as server errors:\n%s", logs)
		}
	})

	t.Run("bodies held at once are bounded; over the budget is 503 before reading", func(t *testing.T) {
		// A client that announces 900 KiB and sends 1 KiB holds one 64 KiB
		// chunk, not what it announced: idle connections cannot fill the
		// budget.
		idle := rawRequest(t, addr, "/api/v1/log/entries", 900<<10, bytes.Repeat([]byte(" "), 1<<10))
		deadline := time.Now().Add(time.Minute)
		for inst.metric("signet_http_body_bytes_in_flight") == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the idle request was never admitted")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if got := inst.metric("signet_http_body_bytes_in_flight"); got != 64<<10 {
			t.Fatalf("an idle client announcing 900 KiB holds %v bytes, want one 64 KiB chunk", got)
		}
		idle.Close()
		for inst.metric("signet_http_body_bytes_in_flight") != 0 {
			if time.Now().After(deadline) {
				t.Fatal("the idle client's chunk was not released")
			}
			time.Sleep(10 * time.Millisecond)
		}
		// Two slow clients announce 900 KiB each and send 850: their
		// handlers hold about 1.8 of the 2 MiB while they wait for the rest.
		var held []*net.TCPConn
		for i := 0; i < 2; i++ {
			held = append(held, rawRequest(t, addr, "/api/v1/log/entries", 900<<10, bytes.Repeat([]byte(" "), 850<<10)))
		}
		for inst.metric("signet_http_body_bytes_in_flight") < 2*850<<10 {
			if time.Now().After(deadline) {
				t.Fatal("the slow requests were never admitted")
			}
			time.Sleep(10 * time.Millisecond)
		}
		resp, body := inst.post("/api/v1/log/entries", bytes.Repeat([]byte(" "), 900<<10), http.StatusServiceUnavailable)
		if resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(body), "retry") {
			t.Fatalf("503 with Retry-After %q and body %q", resp.Header.Get("Retry-After"), body)
		}
		inst.get("/healthz", http.StatusOK)
		if n := inst.metric("signet_http_body_budget_refusals_total"); n != 1 {
			t.Fatalf("%v refusals counted, want 1", n)
		}
		// The slow clients give up; their bytes are released.
		for _, c := range held {
			c.Close()
		}
		for inst.metric("signet_http_body_bytes_in_flight") != 0 {
			if time.Now().After(deadline) {
				t.Fatal("the budget was not released when the slow clients went away")
			}
			time.Sleep(10 * time.Millisecond)
		}
		_, body = inst.post("/api/v1/log/entries", bytes.Repeat([]byte(" "), 900<<10), http.StatusBadRequest)
		if !strings.Contains(string(body), "proposed entry") {
			t.Fatalf("after release: %q, want the entry refused on its merits", body)
		}
	})

	t.Run("a dsse entry costing more than its caps is refused before any check", func(t *testing.T) {
		s := newSigner(t)
		proposal, env := s.dsse(t, []byte("artifact"))
		var verifiers [][]byte
		for i := 0; i < 9; i++ {
			verifiers = append(verifiers, s.pubPEM)
		}
		envJSON, _ := json.Marshal(env)
		many, err := client.DSSE(envJSON, verifiers...)
		if err != nil {
			t.Fatal(err)
		}
		_, body := inst.post("/api/v1/log/entries", many, http.StatusBadRequest)
		if !strings.Contains(string(body), "lists 9 keys, more than the 8") {
			t.Fatalf("append: %q", body)
		}
		query, _ := json.Marshal(map[string]any{"entries": []json.RawMessage{many}})
		_, body = inst.post("/api/v1/log/entries/retrieve", query, http.StatusBadRequest)
		if !strings.Contains(string(body), "lists 9 keys, more than the 8") {
			t.Fatalf("retrieve: %q", body)
		}
		// The entry within the caps is still accepted.
		inst.post("/api/v1/log/entries", proposal, http.StatusCreated)
	})
}

func TestMetricsOnTheirOwnListener(t *testing.T) {
	inst, _ := newFixture(t).startLogged(t, func(c *config.Config) { c.Metrics.Listen = "127.0.0.1:0" })
	inst.get("/metrics", http.StatusNotFound)
	metrics := httptest.NewServer(inst.srv.MetricsHandler())
	defer metrics.Close()
	resp, err := http.Get(metrics.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "signet_http_requests_total") {
		t.Fatalf("metrics handler served %q", body)
	}
}
