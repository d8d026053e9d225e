package httpbody

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// result is what the handler under test saw.
type result struct {
	body []byte
	err  error
}

// serve runs Read behind mw (nil: none) on a real HTTP server; every
// request's outcome is sent on the returned channel.
func serve(t *testing.T, limit int64, mw func(http.Handler) http.Handler, hold chan struct{}) (string, chan result) {
	t.Helper()
	results := make(chan result, 16)
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := Read(w, r, limit)
		results <- result{body, err}
		if hold != nil && r.Header.Get("Hold") != "" {
			<-hold
		}
		w.WriteHeader(http.StatusNoContent)
	})
	if mw != nil {
		h = mw(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL, results
}

// chunked hides the length of a body so net/http sends it chunked.
type chunked struct{ io.Reader }

func TestRead(t *testing.T) {
	url, results := serve(t, 1000, nil, nil)
	tests := []struct {
		name    string
		body    io.Reader
		wantLen int
		wantErr string
	}{
		{"with Content-Length", bytes.NewReader(make([]byte, 1000)), 1000, ""},
		{"chunked", chunked{bytes.NewReader(make([]byte, 999))}, 999, ""},
		{"Content-Length over the limit", bytes.NewReader(make([]byte, 1001)), 0, "request body too large"},
		{"chunked over the limit", chunked{bytes.NewReader(make([]byte, 5000))}, 0, "request body too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Post(url, "application/octet-stream", tt.body)
			if err == nil {
				resp.Body.Close()
			}
			got := <-results
			switch {
			case tt.wantErr == "" && (got.err != nil || len(got.body) != tt.wantLen):
				t.Fatalf("read %d bytes, err %v; want %d", len(got.body), got.err, tt.wantLen)
			case tt.wantErr != "":
				var tooBig *http.MaxBytesError
				if !errors.As(got.err, &tooBig) || tooBig.Limit != 1000 || !strings.Contains(got.err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want a MaxBytesError with limit 1000", got.err)
				}
			}
		})
	}
}

// A client that announces 1000 bytes and hangs up after 10 is the client's
// fault: a ClientError, which endpoints answer with 400.
func TestReadClientGoesAway(t *testing.T) {
	url, results := serve(t, 1<<20, nil, nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789")
	conn.Close()
	got := <-results
	var ce *ClientError
	if !errors.As(got.err, &ce) || !errors.Is(got.err, io.ErrUnexpectedEOF) {
		t.Fatalf("err %v, want a ClientError wrapping unexpected EOF", got.err)
	}
}

func TestBudget(t *testing.T) {
	var refusedWith []string
	budget, err := NewBudget(100<<10, 80<<10, nil, func(w http.ResponseWriter, msg string) {
		refusedWith = append(refusedWith, msg)
		http.Error(w, msg, http.StatusServiceUnavailable)
	})
	if err != nil {
		t.Fatal(err)
	}
	hold := make(chan struct{})
	url, results := serve(t, 80<<10, budget.Middleware, hold)
	// post sends a request without waiting for its answer; a held one's
	// handler stays in flight (holding its bytes) until hold lets it go.
	post := func(body io.Reader, held bool) chan *http.Response {
		out := make(chan *http.Response, 1)
		req, _ := http.NewRequest(http.MethodPost, url, body)
		if held {
			req.Header.Set("Hold", "yes")
		}
		go func() {
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				out <- nil
				return
			}
			resp.Body.Close()
			out <- resp
		}()
		return out
	}

	// The first request's 60 KiB are held until its handler returns.
	first := post(bytes.NewReader(make([]byte, 60<<10)), true)
	if got := <-results; got.err != nil || len(got.body) != 60<<10 {
		t.Fatalf("first request: %d bytes, %v", len(got.body), got.err)
	}
	if v := testutil.ToFloat64(budget.inFlight); v != 60<<10 {
		t.Fatalf("in flight %v, want %d", v, 60<<10)
	}

	// A second of 60 KiB does not fit in the 36 KiB left: 503 with
	// Retry-After, handler not run.
	resp := <-post(bytes.NewReader(make([]byte, 60<<10)), false)
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != RetryAfter || len(refusedWith) != 1 {
		t.Fatalf("second request: %v, refusals %v", resp, refusedWith)
	}
	if len(results) != 0 {
		t.Fatal("the refused request reached its handler")
	}

	// A chunked body takes budget as it arrives: 60 KiB more do not fit.
	chunkedDone := post(chunked{bytes.NewReader(make([]byte, 60<<10))}, false)
	if got := <-results; !errors.Is(got.err, ErrBusy) {
		t.Fatalf("chunked body over the budget: err %v, want ErrBusy", got.err)
	}
	<-chunkedDone
	// Its reservation went with its handler.
	if v := testutil.ToFloat64(budget.inFlight); v != 60<<10 {
		t.Fatalf("in flight %v after the chunked request, want only the first's %d", v, 60<<10)
	}

	// A body announcing more than any endpoint takes is left to its
	// endpoint's 413, not refused as busy.
	oversized := post(bytes.NewReader(make([]byte, 90<<10)), false)
	var tooBig *http.MaxBytesError
	if got := <-results; !errors.As(got.err, &tooBig) {
		t.Fatalf("oversized body: %v, want MaxBytesError", got.err)
	}
	<-oversized

	hold <- struct{}{}
	<-first
	if v := testutil.ToFloat64(budget.inFlight); v != 0 {
		t.Fatalf("in flight %v after every handler returned, want 0", v)
	}
	if v := testutil.ToFloat64(budget.refused); v != 2 {
		t.Fatalf("%v refusals counted, want 2", v)
	}
	// Now there is room again.
	again := post(bytes.NewReader(make([]byte, 80<<10)), false)
	if got := <-results; got.err != nil || len(got.body) != 80<<10 {
		t.Fatalf("after release: %d bytes, %v", len(got.body), got.err)
	}
	<-again
}

func TestBudgetSmallerThanARequestIsRefused(t *testing.T) {
	if _, err := NewBudget(1<<20, 2<<20, nil, nil); err == nil {
		t.Fatal("a budget smaller than one request was accepted")
	}
}

// A client that announces a large body and sends little holds what it sent
// (a chunk ahead), not what it announced: idle connections cannot fill the
// budget and shut out everyone else.
func TestIdleAnnouncementsHoldLittle(t *testing.T) {
	// Announced in full, three 200 KiB bodies would not fit in 512 KiB.
	budget, err := NewBudget(512<<10, 200<<10, nil, func(w http.ResponseWriter, msg string) {
		http.Error(w, msg, http.StatusServiceUnavailable)
	})
	if err != nil {
		t.Fatal(err)
	}
	url, results := serve(t, 200<<10, budget.Middleware, nil)
	addr := strings.TrimPrefix(url, "http://")
	for i := 0; i < 3; i++ {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", 200<<10, strings.Repeat("x", 1<<10))
	}
	for deadline := time.Now().Add(10 * time.Second); testutil.ToFloat64(budget.inFlight) < 3*chunk; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the idle requests hold %v bytes, never the three chunks they read into", testutil.ToFloat64(budget.inFlight))
		}
	}
	if v := testutil.ToFloat64(budget.inFlight); v != 3*chunk {
		t.Fatalf("three idle clients hold %v bytes, want a chunk each (%d)", v, 3*chunk)
	}
	resp, err := http.Post(url, "application/octet-stream", bytes.NewReader(make([]byte, 150<<10)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("a request beside three idle ones: %d, want it served", resp.StatusCode)
	}
	if got := <-results; got.err != nil || len(got.body) != 150<<10 {
		t.Fatalf("served request read %d bytes, %v", len(got.body), got.err)
	}
}
