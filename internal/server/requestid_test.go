package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/internal/requestid"
)

// Every response carries an X-Request-ID, a proxy's own is kept, and a
// server-side failure is logged under the ID its 500 names.
func TestRequestIDsInResponsesAndLogs(t *testing.T) {
	inst, logs := newFixture(t).startLogged(t, func(*config.Config) {})

	resp, _ := inst.do(http.MethodGet, "/api/v1/log", nil, http.StatusOK)
	if id := resp.Header.Get(requestid.Header); !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(id) {
		t.Errorf("X-Request-ID = %q, want 16 hex digits", id)
	}

	// The search index gone, a search fails server-side.
	if _, err := inst.srvPool(t).Exec(context.Background(), "ALTER TABLE search_index RENAME TO search_index_gone"); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, inst.http.URL+"/api/v1/index/retrieve", strings.NewReader(`{"hash":"sha256:`+strings.Repeat("ab", 32)+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(requestid.Header, "ingress-7f3a9c")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Message string `json:"message"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get(requestid.Header) != "ingress-7f3a9c" {
		t.Fatalf("search without its index: %s, X-Request-ID %q", resp.Status, resp.Header.Get(requestid.Header))
	}
	if !strings.HasSuffix(body.Message, "the server log has details under request_id ingress-7f3a9c") {
		t.Errorf("500 message %q does not name the request ID", body.Message)
	}
	line := regexp.MustCompile(`(?m)^.*level=ERROR msg="request failed".*$`).FindString(logs.String())
	if !strings.Contains(line, "request_id=ingress-7f3a9c") || !strings.Contains(line, "search_index") {
		t.Errorf("the failure's log line %q lacks the request ID or the cause\nlog:\n%s", line, logs.String())
	}
}
