// Package httpjson writes JSON answers, the one way every API here does:
// encoding/json without HTML escaping, ending in a newline (as
// json.Encoder), with Content-Length set so that large answers are not sent
// chunked.
package httpjson

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
)

// Error is the {"code": N, "message": "..."} body the log (as Rekor), the
// TSA and the server itself answer errors with.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// Write answers v as JSON with status. If v cannot be encoded (a bug),
// the answer is a 500 saying so.
func Write(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, "encoding the answer: "+err.Error(), http.StatusInternalServerError)
		return
	}
	WriteBody(w, status, buf.Bytes())
}

// WriteBody answers body, already JSON, with status.
func WriteBody(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body) //nolint:errcheck // the client went away
}

// WriteError answers Error{status, msg}.
func WriteError(w http.ResponseWriter, status int, msg string) {
	Write(w, status, Error{Code: status, Message: msg})
}
