package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const provenance = `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"app","digest":{"sha256":"ab"}}],
"predicateType":"https://slsa.dev/provenance/v1",
"predicate":{"buildDefinition":{"buildType":"https://example.com/build/v1"},"runDetails":{"builder":{"id":"https://ci.example.com"}}}}`

// Rego and CUE conditions as cosign's verify-attestation --policy reads
// them from files: each allows the statement it should and refuses the
// others with a reason.
func TestConditionFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	other := strings.Replace(provenance, "https://ci.example.com", "https://evil.example.com", 1)
	for _, tc := range []struct {
		name, src   string
		allowsOther bool
		refusal     string // in the error for the other statement
	}{
		{"v0.rego", "package signature\nallow { input.predicate.runDetails.builder.id == \"https://ci.example.com\" }\n", false, "undefined"},
		{"v1.rego", "package signature\nallow if input.predicate.runDetails.builder.id == \"https://ci.example.com\"\n", false, "undefined"},
		{"default.rego", "package signature\ndefault allow = false\nallow { input.predicate.runDetails.builder.id == \"https://ci.example.com\" }\n", false, "is false, not true"},
		{"builder.cue", "predicateType: \"https://slsa.dev/provenance/v1\"\npredicate: runDetails: builder: id: \"https://ci.example.com\"\n", false, "conflicting values"},
		{"open.cue", "predicateType: \"https://slsa.dev/provenance/v1\"\n", true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := LoadFile(t.Context(), write(tc.name, tc.src))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Check(t.Context(), []byte(provenance)); err != nil {
				t.Fatalf("the builder it wants: %v", err)
			}
			err = c.Check(t.Context(), []byte(other))
			if tc.allowsOther != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.refusal)) {
				t.Fatalf("another builder: %v, want allowed=%v or an error saying %q", err, tc.allowsOther, tc.refusal)
			}
			if err != nil && !strings.Contains(err.Error(), tc.name) {
				t.Fatalf("the error does not name the policy: %v", err)
			}
		})
	}

	for name, want := range map[string]string{
		write("policy.json", "{}"):                               "must end in .rego or .cue",
		write("broken.rego", "package signature\nallow {"):       "broken.rego",
		write("broken.cue", "predicate: {"):                      "broken.cue",
		write("huge.cue", strings.Repeat("a", MaxPolicyBytes+1)): "larger than",
		filepath.Join(dir, "missing.rego"):                       "missing.rego",
	} {
		if _, err := LoadFile(t.Context(), name); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error saying %q", filepath.Base(name), err, want)
		}
	}
}

// policy-controller's Rego shape: package sigstore, isCompliant, either a
// boolean or an object with result and error.
func TestPolicyControllerRego(t *testing.T) {
	src := `package sigstore
isCompliant = {"result": ok, "error": msg} {
  ok := input.predicate.runDetails.builder.id == "https://ci.example.com"
  msg := sprintf("built by %s", [input.predicate.runDetails.builder.id])
}`
	c, err := Compile(t.Context(), "builder", "rego", src, PolicyControllerQuery)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check(t.Context(), []byte(provenance)); err != nil {
		t.Fatal(err)
	}
	other := strings.Replace(provenance, "https://ci.example.com", "https://evil.example.com", 1)
	if err := c.Check(t.Context(), []byte(other)); err == nil || !strings.Contains(err.Error(), "built by https://evil.example.com") {
		t.Fatalf("another builder: %v", err)
	}
}
