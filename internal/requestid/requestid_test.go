package requestid

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestMiddleware(t *testing.T) {
	generated := regexp.MustCompile(`^[0-9a-f]{16}$`)
	cases := []struct {
		name, incoming string
		keep           bool
	}{
		{"none", "", false},
		{"ingress-nginx", "3f2c9a0d8e1b4c7a9f0e1d2c3b4a5968", true},
		{"uuid", "0b6f2e6a-8c4d-4e2f-9a1b-7c3d5e9f1a2b", true},
		{"dotted and colons", "edge-1:req.42_a", true},
		{"longest kept", strings.Repeat("a", MaxLen), true},
		{"too long", strings.Repeat("a", MaxLen+1), false},
		{"space", "a b", false},
		{"newline", "a\nlevel=ERROR msg=forged", false},
		{"quote", `a"b`, false},
		{"non-ASCII", "réq", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var seen string
			h := Middleware(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { seen = FromContext(r.Context()) }))
			req := httptest.NewRequest("GET", "/", nil)
			if c.incoming != "" {
				req.Header.Set(Header, c.incoming)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			got := rec.Header().Get(Header)
			if got != seen {
				t.Fatalf("response header %q, context %q: want the same ID", got, seen)
			}
			if c.keep && got != c.incoming {
				t.Errorf("incoming %q replaced by %q", c.incoming, got)
			}
			if !c.keep && !generated.MatchString(got) {
				t.Errorf("incoming %q gave %q, want 16 fresh hex digits", c.incoming, got)
			}
		})
	}
	// Fresh IDs differ.
	ids := map[string]bool{}
	for i := 0; i < 1000; i++ {
		ids[newID()] = true
	}
	if len(ids) != 1000 {
		t.Errorf("1000 generated IDs hold %d distinct ones", len(ids))
	}
}

func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(LogHandler(LogHandler(slog.NewTextHandler(&buf, nil)))).With("component", "test")
	ctx := context.WithValue(context.Background(), ctxKey{}, "abc123")
	logger.ErrorContext(ctx, "failed", "err", "boom")
	logger.Error("no request")
	logger.WithGroup("g").InfoContext(ctx, "grouped")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("log:\n%s", buf.String())
	}
	for i, want := range []string{
		"msg=failed component=test err=boom request_id=abc123",
		"msg=\"no request\" component=test",
		"msg=grouped component=test g.request_id=abc123",
	} {
		if !strings.HasSuffix(lines[i], want) {
			t.Errorf("line %d = %q, want it to end %q", i, lines[i], want)
		}
	}
}
