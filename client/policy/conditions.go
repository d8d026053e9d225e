// Package policy decides whether verified signatures and attestations of
// an image are what an organisation requires: conditions on an
// attestation's statement written in Rego or CUE (as cosign's
// verify-attestation --policy evaluates them), and Sigstore
// policy-controller's ClusterImagePolicy documents (cip.go), so a policy
// moves between the admission controller and the command line.
//
// The package evaluates; it does not fetch or verify. Its callers verify
// signatures with sigstore-go and hand it what verified.
package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	cuejson "cuelang.org/go/encoding/json"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// MaxPolicyBytes bounds a policy file or inline policy.
const MaxPolicyBytes = 1 << 20

// A Condition is one Rego or CUE policy over an in-toto statement (the
// JSON document with _type, subject, predicateType and predicate).
type Condition struct {
	name string
	rego *rego.PreparedEvalQuery
	cue  cue.Value
}

// Name is where the condition came from (a file name, or a policy's name).
func (c *Condition) Name() string { return c.name }

// The queries: cosign's verify-attestation --policy asks data.signature.allow
// (cosign:pkg/cosign/rego); policy-controller asks data.sigstore.isCompliant.
const (
	CosignQuery               = "data.signature.allow"
	PolicyControllerQuery     = "data.sigstore.isCompliant"
	regoTypeName, cueTypeName = "rego", "cue"
)

// LoadFile reads a condition from a .rego or .cue file, as cosign's
// verify-attestation --policy does (Rego asked for data.signature.allow).
func LoadFile(ctx context.Context, path string) (*Condition, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, MaxPolicyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(src) > MaxPolicyBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, MaxPolicyBytes)
	}
	switch filepath.Ext(path) {
	case ".rego":
		return Compile(ctx, path, regoTypeName, string(src), CosignQuery)
	case ".cue":
		return Compile(ctx, path, cueTypeName, string(src), "")
	}
	return nil, fmt.Errorf("%s: a policy file must end in .rego or .cue", path)
}

// Compile makes a condition from source: kind "rego" (evaluated with query;
// Rego v0 syntax as cosign reads it, or v1) or "cue".
func Compile(ctx context.Context, name, kind, src, query string) (*Condition, error) {
	if len(src) > MaxPolicyBytes {
		return nil, fmt.Errorf("%s: the policy is larger than %d bytes", name, MaxPolicyBytes)
	}
	switch kind {
	case regoTypeName:
		var firstErr error
		// cosign evaluates Rego v0; policies written for OPA 1.0 are v1.
		for _, v := range []ast.RegoVersion{ast.RegoV0, ast.RegoV1} {
			q, err := rego.New(rego.Query(query), rego.Module(name, src), rego.SetRegoVersion(v)).PrepareForEval(ctx)
			if err == nil {
				return &Condition{name: name, rego: &q}, nil
			}
			if firstErr == nil {
				firstErr = err
			}
		}
		return nil, fmt.Errorf("%s: %w", name, firstErr)
	case cueTypeName:
		v := cuecontext.New().CompileString(src, cue.Filename(name))
		if err := v.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return &Condition{name: name, cue: v}, nil
	}
	return nil, fmt.Errorf("%s: policy type %q: use rego or cue", name, kind)
}

// Check evaluates the condition on a document (for attestations, the
// in-toto statement). nil: allowed. A CUE condition allows a document that
// unifies with it; a Rego one, when its query is true, or, in
// policy-controller's shape, an object (or a set of objects, any one
// sufficing) whose "result" is true and that carries no "warning".
func (c *Condition) Check(ctx context.Context, doc []byte) error {
	if c.rego == nil {
		if err := cuejson.Validate(doc, c.cue); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		return nil
	}
	var input any
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&input); err != nil {
		return fmt.Errorf("%s: the input is not JSON: %w", c.name, err)
	}
	rs, err := c.rego.Eval(ctx, rego.EvalInput(input))
	if err != nil {
		return fmt.Errorf("%s: %w", c.name, err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return fmt.Errorf("%s: the policy does not decide (its query is undefined for this input)", c.name)
	}
	e := rs[0].Expressions[0]
	results := []any{e.Value}
	if set, ok := e.Value.([]any); ok {
		results = set
	}
	var reasons []string
	for _, r := range results {
		reason := regoResult(r)
		if reason == "" {
			return nil
		}
		reasons = append(reasons, reason)
	}
	if len(reasons) == 0 {
		reasons = append(reasons, "an empty set")
	}
	return fmt.Errorf("%s: %s is %s", c.name, e.Text, strings.Join(reasons, "; "))
}

// regoResult is "" for a result that allows, else why it does not.
func regoResult(v any) string {
	switch v := v.(type) {
	case bool:
		if v {
			return ""
		}
		return "false, not true"
	case map[string]any:
		warning, _ := v["warning"].(string)
		msg, _ := v["error"].(string)
		switch {
		case v["result"] == true && warning == "":
			return ""
		case msg != "":
			return "not met: " + msg
		case warning != "":
			return "not met (a warning fails, as in policy-controller): " + warning
		}
		return fmt.Sprintf("%v, whose result is not true", v)
	}
	return fmt.Sprintf("%v, not true", v)
}
