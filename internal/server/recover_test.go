package server

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/signet-dev/signet/internal/requestid"
)

// A handler's panic is a 500 naming the request ID, and the log line with
// the panic and its stack carries that ID.
func TestRecoverPanicsNamesTheRequest(t *testing.T) {
	var logs bytes.Buffer
	recoverer := recoverPanics(slog.New(requestid.LogHandler(slog.NewTextHandler(&logs, nil))))
	h := requestid.Middleware(recoverer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("index out of range in the handler")
	})))
	req := httptest.NewRequest(http.MethodGet, "/api/v1/log", nil)
	req.Header.Set(requestid.Header, "probe-1")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "the server log has details under request_id probe-1") {
		t.Fatalf("panic answered %d %q", rec.Code, rec.Body.String())
	}
	line := logs.String()
	if !strings.Contains(line, `msg="handler panicked"`) || !strings.Contains(line, "index out of range in the handler") || !strings.Contains(line, "request_id=probe-1") || !strings.Contains(line, "recover_test.go") {
		t.Fatalf("log line %q lacks the panic, its stack or the request ID", line)
	}

	// http.ErrAbortHandler still aborts the connection.
	abort := requestid.Middleware(recoverer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })))
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Fatalf("recovered %v, want http.ErrAbortHandler passed through", v)
		}
	}()
	abort.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	t.Fatal("ErrAbortHandler was swallowed")
}
