// Package requestid gives every HTTP request an ID that is sent back in
// the X-Request-ID response header and added to every log line written with
// the request's context, so a client's report ("my upload failed with
// X-Request-ID 5f0c…") leads to the server's log lines about it.
//
// An ID arriving in the request's X-Request-ID (set by a reverse proxy or
// ingress, which then logs the same ID) is kept when it is at most MaxLen
// characters of [A-Za-z0-9._:-]; anything else is replaced, so a client
// cannot put arbitrary bytes in the log. IDs are for correlation, not
// secrets: they come from math/rand.
package requestid

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"net/http"
)

// Header carries the ID both ways.
const Header = "X-Request-ID"

// MaxLen bounds an ID taken from a request (ingress-nginx's are 32 hex
// characters, a UUID is 36).
const MaxLen = 64

// LogKey names the ID in log lines.
const LogKey = "request_id"

type ctxKey struct{}

// FromContext is the ID of the request ctx belongs to, or "".
func FromContext(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// Middleware assigns the ID, puts it in the response header and the
// request's context.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(Header)
		if !valid(id) {
			id = newID()
		}
		w.Header().Set(Header, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, id)))
	})
}

// newID is 16 hex digits.
func newID() string {
	return hex.EncodeToString(binary.BigEndian.AppendUint64(nil, rand.Uint64()))
}

func valid(id string) bool {
	if id == "" || len(id) > MaxLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// LogHandler adds the request's ID to records logged with its context
// (logger.ErrorContext(r.Context(), …)).
// A handler that already adds them is returned as it is.
func LogHandler(h slog.Handler) slog.Handler {
	if _, ok := h.(logHandler); ok {
		return h
	}
	return logHandler{h}
}

type logHandler struct{ slog.Handler }

func (h logHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := FromContext(ctx); id != "" {
		r.AddAttrs(slog.String(LogKey, id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHandler{h.Handler.WithAttrs(attrs)}
}

func (h logHandler) WithGroup(name string) slog.Handler {
	return logHandler{h.Handler.WithGroup(name)}
}

// SeeLog ends a 5xx message: it points the client at the server's log, by
// the request's ID when it has one, so an operator can find the cause.
func SeeLog(ctx context.Context) string {
	if id := FromContext(ctx); id != "" {
		return "the server log has details under request_id " + id
	}
	return "the server log has details"
}
