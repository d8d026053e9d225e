// Package httpbody bounds the memory request bodies take: each body is read
// into one buffer sized from its Content-Length and checked against its
// endpoint's limit while it streams in, and a server-wide Budget bounds the
// bytes of bodies held at once, refusing requests over it before their body
// is read.
//
// The errors Read returns say whose fault a failure is, so that endpoints
// answer 413 for a body over the limit, 400 for a client that stopped
// mid-body, 503 for a server over its budget, and keep 5xx (and their
// alerts) for server faults.
package httpbody

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"
)

// ErrBusy is returned by a body whose bytes do not fit in the server's
// budget: the server is holding as many request bytes as it may.
var ErrBusy = errors.New("the server is holding as many request bodies as it may; retry shortly")

// RetryAfter is the Retry-After (seconds) sent with a 503 for ErrBusy.
const RetryAfter = "1"

// ClientError is a body the client failed to send whole: it went away, or
// the stream broke. It is the client's fault (400), not the server's.
type ClientError struct{ Err error }

func (e *ClientError) Error() string { return "reading the request body: " + e.Err.Error() }
func (e *ClientError) Unwrap() error { return e.Err }

// chunk is how far a body of unknown length reads ahead of its reservation,
// and the first buffer given to it.
const chunk = 64 << 10

// Read reads r's body, at most limit bytes. A body longer than limit is a
// *http.MaxBytesError (before anything is read when Content-Length says so),
// a broken body a *ClientError, a body over the server's budget ErrBusy.
// The buffer grows as the body arrives (doubling, from one chunk), never
// past Content-Length+1 or limit+1 bytes: memory follows the bytes a client
// sent, not the length it announced.
func Read(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	// One byte more than the most expected, so a body longer than it said
	// is noticed.
	most := limit + 1
	if r.ContentLength >= 0 {
		most = r.ContentLength + 1
	}
	buf := make([]byte, 0, min(most, int64(chunk)))
	for {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(max(2*int64(cap(buf)), chunk), most))
			if cap(grown) == cap(buf) {
				grown = make([]byte, len(buf), cap(buf)+chunk) // past most: MaxBytesReader ends it
			}
			copy(grown, buf)
			buf = grown
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) || errors.Is(err, ErrBusy) {
				return nil, err
			}
			return nil, &ClientError{Err: err}
		}
	}
}

// Budget bounds the bytes of request bodies held at once, server-wide. A
// body's bytes count from when they arrive (a chunk ahead) until its
// handler returns (the handler may keep the body that long): a client that
// announces a large body and sends nothing holds one chunk, not its
// announced length, so idle connections cannot fill the budget.
type Budget struct {
	sem         *semaphore.Weighted
	held        atomic.Int64 // bytes taken from sem: admission checks and the gauge
	size        int64
	perRequest  int64
	inFlight    prometheus.GaugeFunc // reads held
	refused     prometheus.Counter
	writeRefuse func(http.ResponseWriter, string)
}

// NewBudget makes a budget of size bytes. perRequest is the largest body
// any endpoint accepts: a request announcing more is let through unreserved
// for its endpoint to refuse with 413 (it reads none of it). reg may be nil.
// refuse writes the 503 (so its body is in the caller's error format).
func NewBudget(size, perRequest int64, reg prometheus.Registerer, refuse func(w http.ResponseWriter, msg string)) (*Budget, error) {
	if perRequest > size {
		return nil, fmt.Errorf("a request body of %d bytes (the largest limit of an endpoint) would never fit in the budget of %d bytes", perRequest, size)
	}
	b := &Budget{
		sem: semaphore.NewWeighted(size), size: size, perRequest: perRequest, writeRefuse: refuse,

		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "signet_http_body_budget_refusals_total", Help: "Requests answered 503 because request bodies held filled the server's budget."}),
	}
	b.inFlight = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "signet_http_body_bytes_in_flight", Help: "Bytes of request bodies admitted and not yet released."},
		func() float64 { return float64(b.held.Load()) })
	if reg != nil {
		reg.MustRegister(b.inFlight, b.refused)
	}
	return b, nil
}

// Middleware answers 503 with Retry-After, before reading anything, a
// request whose Content-Length does not fit in what is left of the budget.
// Every body then takes budget as it arrives, a chunk ahead; when the
// budget runs out mid-body its reads fail with ErrBusy (503).
func (b *Budget) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			next.ServeHTTP(w, r)
			return
		}
		// A length over every endpoint's limit is let through for its
		// endpoint to refuse with 413, reading none of it.
		if r.ContentLength > 0 && r.ContentLength <= b.perRequest && r.ContentLength > b.size-b.held.Load() {
			b.refuse(w)
			return
		}
		body := &budgetedBody{rc: r.Body, budget: b, length: r.ContentLength}
		defer body.release()
		r.Body = body
		next.ServeHTTP(w, r)
	})
}

func (b *Budget) take(n int64) bool {
	if !b.sem.TryAcquire(n) {
		return false
	}
	b.held.Add(n)
	return true
}

func (b *Budget) give(n int64) {
	b.held.Add(-n)
	b.sem.Release(n)
}

func (b *Budget) refuse(w http.ResponseWriter) {
	b.refused.Inc()
	w.Header().Set("Retry-After", RetryAfter)
	b.writeRefuse(w, ErrBusy.Error())
}

// budgetedBody counts a body against the budget as it is read, reserving a
// chunk ahead (never past its Content-Length, which net/http does not read
// beyond).
type budgetedBody struct {
	rc     io.ReadCloser
	budget *Budget
	length int64 // Content-Length, or -1

	mu       sync.Mutex // a handler may return while another goroutine reads
	reserved int64
	read     int64
	released bool
}

func (b *budgetedBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.released {
		b.mu.Unlock()
		return 0, errors.New("request body read after its handler returned")
	}
	if b.length >= 0 && b.read >= b.length {
		b.mu.Unlock()
		return b.rc.Read(p) // the end: io.EOF, nothing more to hold
	}
	if b.read == b.reserved {
		n := int64(chunk)
		if b.length >= 0 {
			n = min(n, b.length-b.reserved)
		}
		if !b.budget.take(n) {
			b.budget.refused.Inc()
			b.mu.Unlock()
			return 0, ErrBusy
		}
		b.reserved += n
	}
	if left := b.reserved - b.read; int64(len(p)) > left {
		p = p[:left]
	}
	b.mu.Unlock()
	n, err := b.rc.Read(p)
	b.mu.Lock()
	b.read += int64(n)
	b.mu.Unlock()
	return n, err
}

func (b *budgetedBody) Close() error { return b.rc.Close() }

func (b *budgetedBody) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.released {
		b.released = true
		b.budget.give(b.reserved)
	}
}
