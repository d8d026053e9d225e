// Package canonjson writes RFC 8785 (JSON Canonicalization Scheme) JSON, the
// form Rekor hashes entries in and signs entry timestamps over.
package canonjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

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

// MaxMembers bounds the members of any one object in JSON that Marshal or
// Transform is given from untrusted input: the canonicalizer sorts an
// object's members by insertion into a list, quadratic in their number
// (40,000 members took 6 s), so such input is checked with CheckMembers
// first. 4,096 members cost about 60 ms; MaxTotalMembers bounds them over
// the document (many objects of 4,096 members add up: 256 took 14 s).
const (
	MaxMembers      = 4096
	MaxTotalMembers = 16384
)

// CheckMembers refuses JSON that is not JSON, has an object of more than
// max members, or more than MaxTotalMembers in all (duplicates count: the
// canonicalizer sees each). It reads the tokens once.
func CheckMembers(raw []byte, max int) error {
	total := 0
	type frame struct {
		object, wantName bool
		members          int
	}
	var stack []frame
	// valueDone is called when a value ends: in an object, a name is next.
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].wantName = true
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if len(stack) > 0 {
				return io.ErrUnexpectedEOF
			}
			return nil
		}
		if err != nil {
			return err
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantName {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:n-1]
				valueDone()
				continue
			}
			if stack[n-1].members++; stack[n-1].members > max {
				return fmt.Errorf("an object with more than %d members", max)
			}
			if total++; total > MaxTotalMembers {
				return fmt.Errorf("more than %d object members in all", MaxTotalMembers)
			}
			stack[n-1].wantName = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{object: true, wantName: true})
		case json.Delim('['):
			stack = append(stack, frame{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}
