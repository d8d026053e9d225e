package model

import (
	"bytes"
	"encoding/json"
	"testing"
)

// encodingJSON is what AppendJSON must equal: encoding/json without HTML
// escaping, as the handlers wrote before.
func encodingJSON(t testing.TB, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func TestAppendJSONIsEncodingJSON(t *testing.T) {
	proof := &InclusionProof{Checkpoint: "rekor.example - 123\n5\nAAA=\n\n— rekor.example abc=\n", Hashes: []string{"00ff", "ee11"}, LogIndex: 4, RootHash: "abcd", TreeSize: 5}
	for name, e := range map[string]LogEntry{
		"nil":   nil,
		"empty": {},
		"full": {"24296fb2": {Body: "eyJhIjoxfQ==", IntegratedTime: 1700000000, LogID: "c0d2", LogIndex: 7,
			Verification: &Verification{InclusionProof: proof, SignedEntryTimestamp: []byte{1, 2, 3, 250}}}},
		"two keys and an attestation": {"b": {Body: "x"}, "a": {Attestation: &Attestation{Data: []byte("att")}, LogIndex: -1}},
		"empty attestation":           {"a": {Attestation: &Attestation{}}},
		"proof, no SET":               {"a": {Verification: &Verification{InclusionProof: &InclusionProof{}}}},
		"SET, no proof":               {"a": {Verification: &Verification{SignedEntryTimestamp: []byte("s")}}},
		"empty verification":          {"a": {Verification: &Verification{}}},
		"empty hashes":                {"a": {Verification: &Verification{InclusionProof: &InclusionProof{Hashes: []string{}}}}},
		"escapes":                     {"\"<k>\\": {Body: "\x00\x01\b\f\n\r\t\x1f\x7f <&> \u2028\u2029 é \xff\xfe end", LogID: "\u00e9\u2027\u202a"}},
	} {
		want := encodingJSON(t, e)
		if got := e.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "a\"b\\c", "\x00\u2028\xff", "— é 😀"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, body, checkpoint string) {
		e := LogEntry{body: {Body: body, Verification: &Verification{InclusionProof: &InclusionProof{Checkpoint: checkpoint, Hashes: []string{checkpoint}}}}}
		want := encodingJSON(t, e)
		if got := e.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Fatalf("got %s\nwant %s", got, want)
		}
	})
}
