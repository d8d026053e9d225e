package httpjson

import (
	"net/http/httptest"
	"strconv"
	"testing"
)

func TestWrite(t *testing.T) {
	for _, tt := range []struct {
		name   string
		write  func(*httptest.ResponseRecorder)
		status int
		body   string
	}{
		{"value", func(w *httptest.ResponseRecorder) { Write(w, 201, map[string]string{"a": "<b>&"}) }, 201, "{\"a\":\"<b>&\"}\n"},
		{"error", func(w *httptest.ResponseRecorder) { WriteError(w, 404, "no such entry") }, 404, "{\"code\":404,\"message\":\"no such entry\"}\n"},
		{"unencodable", func(w *httptest.ResponseRecorder) { Write(w, 200, map[string]any{"f": func() {}}) }, 500, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			tt.write(w)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d", w.Code, tt.status)
			}
			if tt.body != "" {
				if got := w.Body.String(); got != tt.body || w.Header().Get("Content-Length") != strconv.Itoa(len(tt.body)) || w.Header().Get("Content-Type") != "application/json" {
					t.Fatalf("body %q headers %v, want %q", got, w.Header(), tt.body)
				}
			}
		})
	}
}
