package model

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cyberphone/json-canonicalization/go/src/webpki.org/jsoncanonicalizer"
)

func TestParseEntryID(t *testing.T) {
	leaf := strings.Repeat("ab", 32)
	tests := []struct {
		id      string
		tree    int64
		wantErr string
	}{
		{leaf, 0, ""},
		{"108e9186e8c5677a" + leaf, 1193050959916656506, ""},
		{strings.ToUpper("108e9186e8c5677a" + leaf), 1193050959916656506, ""},
		{"0000000000000000" + leaf, 0, "invalid tree ID"},
		{"ffffffffffffffff" + leaf, 0, "invalid tree ID"},
		{leaf[:63], 0, "64 or 80"},
		{strings.Repeat("g", 64), 0, "64 or 80"},
	}
	for _, tt := range tests {
		tree, h, err := ParseEntryID(tt.id)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseEntryID(%s) error %v, want %q", tt.id, err, tt.wantErr)
			}
			continue
		}
		if err != nil || tree != tt.tree || len(h) != 32 {
			t.Errorf("ParseEntryID(%s) = %d, %x, %v", tt.id, tree, h, err)
		}
		if tree != 0 && EntryID(tree, h) != strings.ToLower(tt.id) {
			t.Errorf("EntryID round trip: %s", EntryID(tree, h))
		}
	}
}

// The payload Rekor and sigstore-go sign and verify, key order and all.
func TestSETPayloadIsCanonical(t *testing.T) {
	got, err := SETPayload("eyJ9", 1700000000, "c0d2", 7)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"body":"eyJ9","integratedTime":1700000000,"logID":"c0d2","logIndex":7}`
	if string(got) != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func FuzzParseEntryID(f *testing.F) {
	f.Add("108e9186e8c5677a" + strings.Repeat("ab", 32))
	f.Add(strings.Repeat("0", 64))
	f.Fuzz(func(t *testing.T, id string) {
		tree, h, err := ParseEntryID(id)
		if err == nil && (len(h) != 32 || tree < 0) {
			t.Fatalf("accepted %q as tree %d hash %x", id, tree, h)
		}
	})
}

// The directly written payload is what the RFC 8785 canonicalizer makes of
// the same object.
func FuzzSETPayloadMatchesCanonicalizer(f *testing.F) {
	f.Add("eyJ9", int64(1700000000), "c0d2", int64(7))
	f.Add("a\"b\\c\u00e9\n", int64(-5), "<&>", int64(1<<53))
	f.Add("", int64(1<<62), "", int64(-(1 << 53)))
	f.Fuzz(func(t *testing.T, body string, integrated int64, logID string, index int64) {
		got, err := SETPayload(body, integrated, logID, index)
		raw, err2 := json.Marshal(map[string]any{"body": body, "integratedTime": integrated, "logID": logID, "logIndex": index})
		if err2 != nil {
			t.Skip()
		}
		want, err2 := jsoncanonicalizer.Transform(raw)
		if (err == nil) != (err2 == nil) || string(got) != string(want) {
			t.Fatalf("SETPayload = %s (%v), canonicalizer = %s (%v)", got, err, want, err2)
		}
	})
}
