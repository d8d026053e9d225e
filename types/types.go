// Package types is the registry of log entry kinds. Each kind (hashedrekord,
// dsse, ...) lives in its own package and is handed to NewRegistry by the
// server; nothing registers itself, so a test or a server sees exactly the
// kinds it asked for. The registry knows nothing of HTTP or storage.
package types

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/signet-dev/signet/internal/canonjson"
)

// Entry is a proposed entry that passed its kind's validation.
type Entry interface {
	// Canonical is the leaf stored in the log: RFC 8785 JSON of
	// {"apiVersion","kind","spec"}, byte-for-byte what Rekor stores.
	Canonical() []byte
	// IndexKeys are the search keys of the entry (not yet lower-cased).
	IndexKeys() []string
	// Insertable is false when the entry was given in its canonical form
	// (only useful to search for it), true when it was proposed in full and
	// every signature verified.
	Insertable() bool
}

// Verified is an entry proposed in full whose signatures verified: its
// leaf and search keys. Most kinds answer one.
type Verified struct {
	Leaf []byte
	Keys []string
}

func (e *Verified) Canonical() []byte   { return e.Leaf }
func (e *Verified) IndexKeys() []string { return e.Keys }
func (e *Verified) Insertable() bool    { return true }

// Attested is an entry that carries an attestation the log stores beside
// its leaf and returns with it (Rekor's attestation storage): an in-toto
// statement, a COSE message. The leaf holds only its digest.
type Attested interface {
	Entry
	// Attestation is the bytes to store; nil when there are none.
	Attestation() []byte
}

// Parser validates one version's spec and builds the entry.
type Parser func(ctx context.Context, spec json.RawMessage) (Entry, error)

// Kind is an entry kind and the versions of it that can be parsed.
type Kind struct {
	Name           string
	DefaultVersion string
	Versions       map[string]Parser
}

// ValidationError is an entry the client got wrong: it maps to HTTP 400.
type ValidationError struct{ Err error }

func (e *ValidationError) Error() string { return e.Err.Error() }
func (e *ValidationError) Unwrap() error { return e.Err }

// Invalid wraps a message as a ValidationError.
func Invalid(format string, args ...any) error {
	return &ValidationError{Err: fmt.Errorf(format, args...)}
}

// Registry holds the kinds this server understands and which of them may be
// inserted. Reads and searches work for every known kind.
type Registry struct {
	kinds      map[string]Kind
	insertable map[string]bool
}

// NewRegistry knows the given kinds, all insertable until Enable says otherwise.
func NewRegistry(kinds ...Kind) *Registry {
	r := &Registry{kinds: map[string]Kind{}, insertable: map[string]bool{}}
	for _, k := range kinds {
		r.kinds[k.Name] = k
		r.insertable[k.Name] = true
	}
	return r
}

// Enable limits insertion to the named kinds; an empty list keeps all.
func (r *Registry) Enable(names []string) error {
	if len(names) == 0 {
		return nil
	}
	allowed := map[string]bool{}
	for _, n := range names {
		if _, ok := r.kinds[n]; !ok {
			return fmt.Errorf("entry type %q is not known (known: %s)", n, strings.Join(r.Names(), ", "))
		}
		allowed[n] = true
	}
	r.insertable = allowed
	return nil
}

// Names lists the known kinds, sorted.
func (r *Registry) Names() []string {
	var out []string
	for n := range r.kinds {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Insertable lists the kinds that may be inserted, sorted.
func (r *Registry) Insertable() []string {
	var out []string
	for n, ok := range r.insertable {
		if ok {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

type proposed struct {
	Kind       string          `json:"kind"`
	APIVersion string          `json:"apiVersion"`
	Spec       json.RawMessage `json:"spec"`
}

// Parse validates a ProposedEntry ({"kind","apiVersion","spec"}) of any known kind.
func (r *Registry) Parse(ctx context.Context, body []byte) (Entry, error) {
	return r.parse(ctx, body, false)
}

// ParseInsertable is Parse for entries that are to be added to the log: a
// kind not enabled for insertion is refused before its signatures are
// checked.
func (r *Registry) ParseInsertable(ctx context.Context, body []byte) (Entry, error) {
	return r.parse(ctx, body, true)
}

func (r *Registry) parse(ctx context.Context, body []byte, insert bool) (Entry, error) {
	var p proposed
	if err := DecodeStrict(body, &p); err != nil {
		return nil, Invalid("proposed entry: %v", err)
	}
	if p.Kind == "" {
		return nil, Invalid("proposed entry: kind is required")
	}
	k, ok := r.kinds[p.Kind]
	if !ok {
		return nil, Invalid("entry kind %q is not supported (supported: %s)", p.Kind, strings.Join(r.Names(), ", "))
	}
	if insert && !r.insertable[p.Kind] {
		return nil, Invalid("entry kind %q is not enabled for insertion on this log (enabled: %s)", p.Kind, strings.Join(r.Insertable(), ", "))
	}
	if p.APIVersion == "" {
		return nil, Invalid("proposed entry: apiVersion is required")
	}
	parse, ok := k.Versions[p.APIVersion]
	if !ok {
		var vs []string
		for v := range k.Versions {
			vs = append(vs, v)
		}
		sort.Strings(vs)
		return nil, Invalid("%s apiVersion %q is not supported (supported: %s)", p.Kind, p.APIVersion, strings.Join(vs, ", "))
	}
	if len(p.Spec) == 0 || bytes.Equal(p.Spec, []byte("null")) {
		return nil, Invalid("proposed entry: spec is required")
	}
	e, err := parseRecovering(ctx, parse, p.Kind, p.Spec)
	if err != nil {
		return nil, err
	}
	if insert && !e.Insertable() {
		return nil, Invalid("%s entry is in canonical form; propose it with its full content to insert it", p.Kind)
	}
	return e, nil
}

// envelope is an entry's outer object; its fields are in RFC 8785 order.
type envelope struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Spec       any    `json:"spec"`
}

// Canonicalize marshals {"apiVersion","kind","spec"} as RFC 8785 JSON.
func Canonicalize(kind, apiVersion string, spec any) ([]byte, error) {
	out, err := canonjson.Marshal(envelope{apiVersion, kind, spec})
	if err != nil {
		return nil, fmt.Errorf("canonicalizing %s entry: %w", kind, err)
	}
	return out, nil
}

// CanonicalizeSorted is Canonicalize for specs canonjson.MarshalSorted
// accepts: strings, byte slices and structs with fields in RFC 8785 order
// (each type's tests hold it to that).
func CanonicalizeSorted(kind, apiVersion string, spec any) ([]byte, error) {
	out, err := canonjson.MarshalSorted(envelope{apiVersion, kind, spec})
	if err != nil {
		return nil, fmt.Errorf("canonicalizing %s entry: %w", kind, err)
	}
	return out, nil
}

// DecodeStrict decodes one JSON value, refusing unknown fields and trailing data.
func DecodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

// ErrParserPanic is wrapped in the validation error a parser's panic
// becomes: the fuzz targets fail on it, so that a recovered panic is still
// found and fixed.
var ErrParserPanic = errors.New("parser panic")

// parseRecovering runs a kind's parser, turning a panic into a validation
// error: the parsers read untrusted bytes with third-party libraries, and a
// panic on one input must neither take down a bulk import nor answer 500.
// Each kind bounds and checks its input first; this is the last guard.
func parseRecovering(ctx context.Context, parse Parser, kind string, spec json.RawMessage) (e Entry, err error) {
	defer func() {
		if r := recover(); r != nil {
			e, err = nil, &ValidationError{Err: fmt.Errorf("%s entry: the input broke its parser (%v): %w", kind, r, ErrParserPanic)}
		}
	}()
	return parse(ctx, spec)
}
