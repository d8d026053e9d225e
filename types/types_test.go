package types_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/signet-dev/signet/types"
	"github.com/signet-dev/signet/types/dsse"
	"github.com/signet-dev/signet/types/hashedrekord"
)

func registry(t testing.TB) *types.Registry {
	hr, err := hashedrekord.Kind()
	if err != nil {
		t.Fatal(err)
	}
	return types.NewRegistry(hr, dsse.Kind())
}

func TestEnable(t *testing.T) {
	r := registry(t)
	if got := strings.Join(r.Insertable(), ","); got != "dsse,hashedrekord" {
		t.Fatalf("insertable by default = %s", got)
	}
	if err := r.Enable([]string{"hashedrekord"}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.Insertable(), ","); got != "hashedrekord" {
		t.Fatalf("insertable = %s", got)
	}
	if err := r.Enable([]string{"helm"}); err == nil || !strings.Contains(err.Error(), `"helm" is not known (known: dsse, hashedrekord)`) {
		t.Fatalf("enabling an unknown kind: %v", err)
	}
}

func TestParseEnvelopeErrors(t *testing.T) {
	r := registry(t)
	for _, tt := range []struct{ body, want string }{
		{`[]`, "proposed entry"},
		{`{"kind":"hashedrekord","apiVersion":"0.0.1","spec":{},"extra":1}`, "unknown field"},
		{`{"apiVersion":"0.0.1","spec":{}}`, "kind is required"},
		{`{"kind":"hashedrekord","spec":{}}`, "apiVersion is required"},
		{`{"kind":"hashedrekord","apiVersion":"0.0.1","spec":null}`, "spec is required"},
		{`{"kind":"hashedrekord","apiVersion":"0.0.1","spec":{}} {}`, "unexpected data"},
	} {
		_, err := r.Parse(context.Background(), []byte(tt.body))
		var ve *types.ValidationError
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%s) = %v, want a ValidationError containing %q", tt.body, err, tt.want)
		}
	}
}

// ParseInsertable refuses a kind not enabled for insertion before looking
// at its spec (the dsse spec here is invalid and its error not reached);
// an enabled kind's spec is checked as Parse would.
func TestParseInsertableRefusals(t *testing.T) {
	r := registry(t)
	if err := r.Enable([]string{"hashedrekord"}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ body, want string }{
		{`{"kind":"dsse","apiVersion":"0.0.1","spec":{"proposedContent":{"envelope":"{}","verifiers":["QQ=="]}}}`,
			`entry kind "dsse" is not enabled for insertion on this log (enabled: hashedrekord)`},
		{`{"kind":"hashedrekord","apiVersion":"0.0.1","spec":{"data":{"hash":{"algorithm":"sha256","value":"` + strings.Repeat("a", 64) + `"}},"signature":{"content":"AAAA","publicKey":{"content":"QQ=="}}}}`,
			"public key"},
	} {
		_, err := r.ParseInsertable(context.Background(), []byte(tt.body))
		var ve *types.ValidationError
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseInsertable(%s) = %v, want a ValidationError containing %q", tt.body, err, tt.want)
		}
	}
	// Parse (for searches) still reads a kind that may not be inserted.
	if _, err := r.Parse(context.Background(), []byte(`{"kind":"dsse","apiVersion":"0.0.1","spec":{"proposedContent":{"envelope":"{}","verifiers":["QQ=="]}}}`)); err == nil || strings.Contains(err.Error(), "not enabled") {
		t.Errorf("Parse of a dsse entry: %v, want its own validation error", err)
	}
}

// FuzzParse feeds untrusted proposed entries to every kind: never a panic,
// and every failure is a ValidationError (a 400, not a 500).
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`{"kind":"hashedrekord","apiVersion":"0.0.1","spec":{"data":{"hash":{"algorithm":"sha256","value":"` + strings.Repeat("a", 64) + `"}},"signature":{"content":"AAAA","publicKey":{"content":"LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0KLS0tLS1FTkQgUFVCTElDIEtFWS0tLS0tCg=="}}}}`,
		`{"kind":"dsse","apiVersion":"0.0.1","spec":{"proposedContent":{"envelope":"{\"payload\":\"eA==\",\"payloadType\":\"t\",\"signatures\":[{\"sig\":\"AA==\"}]}","verifiers":["QQ=="]}}}`,
		`{"kind":"dsse","apiVersion":"0.0.1","spec":{"envelopeHash":{"algorithm":"sha256","value":"00"},"payloadHash":{"algorithm":"sha256","value":"00"},"signatures":[{"signature":"x","verifier":"QQ=="}]}}`,
		`{}`, `null`, `{"kind":1}`,
	} {
		f.Add([]byte(seed))
	}
	r := registry(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := r.Parse(context.Background(), body)
		if err != nil {
			var ve *types.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %T %v is not a ValidationError", err, err)
			}
			return
		}
		if len(e.Canonical()) == 0 {
			t.Fatal("accepted entry with an empty leaf")
		}
	})
}
