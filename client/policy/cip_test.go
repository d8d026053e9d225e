package policy

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
)

const example = `apiVersion: policy.sigstore.dev/v1beta1
kind: ClusterImagePolicy
metadata:
  name: release
spec:
  images:
  - glob: "registry.example.com/apps/**"
  authorities:
  - name: maintainers
    keyless:
      url: https://fulcio.example.com
      identities:
      - issuer: https://issuer.example.com
        subject: alice@example.com
      - issuer: https://issuer.example.com
        subjectRegExp: "@example.com$"
    attestations:
    - name: provenance
      predicateType: slsaprovenance1
      policy:
        type: cue
        data: |
          predicate: runDetails: builder: id: "https://ci.example.com"
  - name: release-key
    key:
      data: |
        -----BEGIN PUBLIC KEY-----
        MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE
        -----END PUBLIC KEY-----
  policy:
    type: rego
    data: |
      package sigstore
      isCompliant { count(input.authorityMatches.maintainers.signatures) >= 2 }
---
apiVersion: policy.sigstore.dev/v1alpha1
kind: ClusterImagePolicy
metadata:
  name: hub
spec:
  mode: warn
  images:
  - glob: "*"
  authorities:
  - static:
      action: fail
      message: nothing from Docker Hub
`

func TestParse(t *testing.T) {
	ps, err := Parse(t.Context(), []byte(example))
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].Metadata.Name != "release" || ps[0].Spec.Mode != "enforce" || ps[1].Spec.Mode != "warn" {
		t.Fatalf("parsed %+v", ps)
	}
	a := ps[0].Spec.Authorities[0]
	if len(a.Keyless.Identities) != 2 || a.Attestations[0].Condition() == nil || ps[0].condition == nil {
		t.Fatalf("authority %+v", a)
	}
	if ps[1].Spec.Authorities[0].Name != "authority-0" {
		t.Fatalf("default authority name: %q", ps[1].Spec.Authorities[0].Name)
	}
}

// What policy-controller refuses, and what needs a cluster, is refused
// with the field named.
func TestParseRefusals(t *testing.T) {
	valid := func(authority string) string {
		return "apiVersion: policy.sigstore.dev/v1beta1\nkind: ClusterImagePolicy\nmetadata: {name: p}\nspec:\n  images: [{glob: \"r.example.com/**\"}]\n  authorities:\n" + authority
	}
	for want, doc := range map[string]string{
		"field colour not found":                     valid("  - static: {action: pass}\n    colour: red\n"),
		"exactly one of key, keyless or static":      valid("  - key: {data: x}\n    static: {action: pass}\n"),
		"give the PEM public key in key.data":        valid("  - key: {kms: awskms:///alias/x}\n"),
		"give the policy inline in data":             valid("  - keyless: {identities: [{issuer: i, subject: s}]}\n    attestations: [{name: a, predicateType: custom, policy: {type: cue, configMapRef: {name: x}}}]\n"),
		"keyless.identities: at least one":           valid("  - keyless: {url: https://f.example.com}\n"),
		"give issuer or issuerRegExp":                valid("  - keyless: {identities: [{issuer: i, issuerRegExp: j, subject: s}]}\n"),
		"static.action \"maybe\"":                    valid("  - static: {action: maybe}\n"),
		"static cannot be combined":                  valid("  - static: {action: pass}\n    attestations: [{name: a, predicateType: custom}]\n"),
		"remove ca-cert":                             valid("  - keyless: {ca-cert: {data: x}, identities: [{issuer: i, subject: s}]}\n"),
		"attestations[0].policy: type \"opa\"":       valid("  - keyless: {identities: [{issuer: i, subject: s}]}\n    attestations: [{name: a, predicateType: custom, policy: {type: opa, data: x}}]\n"),
		"a glob has letters":                         strings.Replace(valid("  - static: {action: pass}\n"), "r.example.com/**", "r.example.com/[ab]", 1),
		"apiVersion \"v1\"":                          strings.Replace(valid("  - static: {action: pass}\n"), "policy.sigstore.dev/v1beta1", "v1", 1),
		"spec.authorities: at least one is required": strings.TrimSuffix(valid(""), "  authorities:\n"),
		"the file holds no ClusterImagePolicy":       "---\n",
		"attestation a":                              valid("  - keyless: {identities: [{issuer: i, subject: s}]}\n    attestations: [{name: a, predicateType: custom, policy: {type: rego, data: \"package sigstore\\nisCompliant {\"}}]\n"),
	} {
		if _, err := Parse(t.Context(), []byte(doc)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want an error saying %q, got %v\n%s", want, err, doc)
		}
	}
}

// Globs as policy-controller matches them: '*' within a path segment,
// '**' across, against the normalized reference; a bare '*' is Docker Hub.
func TestGlobs(t *testing.T) {
	digest := "@sha256:" + strings.Repeat("a", 64)
	for _, tc := range []struct {
		glob, ref string
		match     bool
	}{
		{"registry.example.com/apps/**", "registry.example.com/apps/web" + digest, true},
		{"registry.example.com/apps/**", "registry.example.com/apps/team/web:v1", true},
		{"registry.example.com/apps/*", "registry.example.com/apps/team/web:v1", false},
		{"registry.example.com/apps/web", "registry.example.com/apps/web" + digest, false},
		{"registry.example.com/apps/web*", "registry.example.com/apps/web" + digest, true},
		{"registry.example.com/apps/web:*", "registry.example.com/apps/web", true}, // :latest
		{"*", "busybox", true},
		{"*", "ghcr.io/busybox", false},
		{"*/*", "acme/busybox:1", true},
		{"registry.example.com/apps/**", "registry.example.com/appsx/web:v1", false},
	} {
		p := &ClusterImagePolicy{}
		p.Spec.Images = []struct{ Glob string }{{tc.glob}}
		ref, err := name.ParseReference(tc.ref)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Matches(ref); got != tc.match {
			t.Errorf("%s on %s (%s): %v, want %v", tc.glob, tc.ref, ref.Name(), got, tc.match)
		}
	}
}

// Authorities are alternatives; spec.policy sees what verified, in
// policy-controller's shape, and may ask for more (two maintainers here).
func TestEvaluate(t *testing.T) {
	ps, err := Parse(t.Context(), []byte(example))
	if err != nil {
		t.Fatal(err)
	}
	release := ps[0]
	sig := func(who string) Signature { return Signature{Subject: who, Issuer: "https://issuer.example.com"} }
	check := func(maintainers []Signature, keyOK bool) func(*Authority) (*Match, error) {
		return func(a *Authority) (*Match, error) {
			switch {
			case a.Name == "maintainers" && len(maintainers) > 0:
				return &Match{Signatures: maintainers}, nil
			case a.Name == "release-key" && keyOK:
				return &Match{Signatures: []Signature{{ID: "k"}}}, nil
			}
			return nil, errors.New("no signature verifies")
		}
	}
	if d := release.Evaluate(t.Context(), check([]Signature{sig("alice@example.com"), sig("bob@example.com")}, false)); d.Err != nil || d.Matches["maintainers"] == nil {
		t.Fatalf("two maintainers: %+v", d)
	}
	d := release.Evaluate(t.Context(), check([]Signature{sig("alice@example.com")}, true))
	if d.Err == nil || !strings.Contains(d.Err.Error(), "release spec.policy") {
		t.Fatalf("one maintainer: %+v", d)
	}
	d = release.Evaluate(t.Context(), check(nil, false))
	if d.Err == nil || !strings.Contains(d.Err.Error(), "authority maintainers: no signature verifies") || !strings.Contains(d.Err.Error(), "authority release-key") {
		t.Fatalf("nothing verifies: %+v", d)
	}
	hub := ps[1].Evaluate(t.Context(), check(nil, false))
	if hub.Err == nil || !strings.Contains(hub.Err.Error(), "nothing from Docker Hub") || !hub.Warn {
		t.Fatalf("static fail in warn mode: %+v", hub)
	}
}
