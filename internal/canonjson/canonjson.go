// Package canonjson writes RFC 8785 (JSON Canonicalization Scheme) JSON, the
// form Rekor hashes entries in and signs entry timestamps over.
package canonjson

import (
	"bytes"
	"encoding/json"

	"github.com/cyberphone/json-canonicalization/go/src/webpki.org/jsoncanonicalizer"
)

// Marshal returns v as RFC 8785 JSON.
func Marshal(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return jsoncanonicalizer.Transform(raw)
}

// Transform rewrites JSON in the canonical form (keys sorted, no
// whitespace, numbers and strings as RFC 8785 spells them).
func Transform(raw []byte) ([]byte, error) { return jsoncanonicalizer.Transform(raw) }

// MarshalSorted is Marshal for values made only of strings, byte slices,
// integers of magnitude below 2^53 and structs whose fields are declared in
// the order RFC 8785 sorts their JSON names (callers' tests hold them to
// that). encoding/json then writes the canonical form itself whenever no
// string needs an escape, which is checked; otherwise Marshal runs. The log
// canonicalizes every entry and every signed entry timestamp, and re-parsing
// the JSON to sort it was about a tenth of an append's CPU.
func MarshalSorted(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	out := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	for _, c := range out {
		if c < 0x20 || c > 0x7e || c == '\\' {
			return Marshal(v)
		}
	}
	return out, nil
}
