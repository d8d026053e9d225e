package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// verify --policy with ClusterImagePolicy documents, and verify-attestation
// --policy with Rego and CUE files, on images signed and attested in a
// registry: what the policies require passes, and each way of falling
// short is refused (exit 3) with its reason.
func TestVerifyPolicy(t *testing.T) {
	x := newPinned(t)
	host := startRegistry(t, "referrers API")
	t.Setenv("SIGNET_PASSWORD", "pw")
	keyPrefix := filepath.Join(x.dir, "release")
	if _, err := runCLI(t, "generate-key-pair", "--output-key-prefix", keyPrefix); err != nil {
		t.Fatal(err)
	}
	pub, _ := os.ReadFile(keyPrefix + ".pub")
	good := x.write("good.json", `{"buildDefinition":{"buildType":"https://example.com/build/v1"},"runDetails":{"builder":{"id":"https://ci.example.com"}}}`)
	evil := x.write("evil.json", `{"buildDefinition":{"buildType":"https://example.com/build/v1"},"runDetails":{"builder":{"id":"https://evil.example.com"}}}`)
	mustRun := func(args ...string) {
		t.Helper()
		if out, err := runCLI(t, append(args, "--allow-http-registry", "--yes")...); err != nil {
			t.Fatalf("signet %v: %v\n%s", args, err, out)
		}
	}
	signAs := func(image, email string) { mustRun("sign", image, "--identity-token", devToken(t, x.base, email)) }
	attest := func(image, predicate string) {
		mustRun("attest", image, "--predicate", predicate, "--type", "slsaprovenance1", "--identity-token", devToken(t, x.base, "alice@example.com"))
	}

	app := pushRandomImage(t, host, "apps/web:v1")
	signAs(app, "alice@example.com")
	attest(app, good)
	tampered := pushRandomImage(t, host, "apps/api:v1") // built elsewhere
	signAs(tampered, "alice@example.com")
	attest(tampered, evil)
	unattested := pushRandomImage(t, host, "apps/cron:v1")
	signAs(unattested, "alice@example.com")
	keyed := pushRandomImage(t, host, "keyed/tool:v1")
	mustRun("sign", keyed, "--key", keyPrefix+".key")
	critical := pushRandomImage(t, host, "critical/db:v1")
	signAs(critical, "alice@example.com")
	signAs(critical, "bob@example.com")
	half := pushRandomImage(t, host, "critical/cache:v1")
	signAs(half, "alice@example.com")
	warned := pushRandomImage(t, host, "legacy/old:v1")
	stranger := pushRandomImage(t, host, "elsewhere/x:v1")

	indent := func(s string) string {
		return "        " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n        ")
	}
	policyFile := x.write("policy.yaml", `apiVersion: policy.sigstore.dev/v1beta1
kind: ClusterImagePolicy
metadata:
  name: apps
spec:
  images:
  - glob: "`+host+`/apps/**"
  authorities:
  - name: ci
    keyless:
      identities:
      - issuer: `+x.issuer+`
        subject: alice@example.com
    attestations:
    - name: provenance
      predicateType: slsaprovenance1
      policy:
        type: cue
        data: |
          predicate: runDetails: builder: id: "https://ci.example.com"
---
apiVersion: policy.sigstore.dev/v1beta1
kind: ClusterImagePolicy
metadata:
  name: tools
spec:
  images:
  - glob: "`+host+`/keyed/**"
  authorities:
  - key:
      data: |
`+indent(string(pub))+`
---
apiVersion: policy.sigstore.dev/v1beta1
kind: ClusterImagePolicy
metadata:
  name: two-person
spec:
  images:
  - glob: "`+host+`/critical/**"
  authorities:
  - name: maintainers
    keyless:
      identities:
      - issuer: `+x.issuer+`
        subjectRegExp: "@example\\.com$"
  policy:
    type: rego
    data: |
      package sigstore
      isCompliant {
        subjects := {s.subject | s := input.authorityMatches.maintainers.signatures[_]}
        count(subjects) >= 2
      }
---
apiVersion: policy.sigstore.dev/v1beta1
kind: ClusterImagePolicy
metadata:
  name: retiring
spec:
  mode: warn
  images:
  - glob: "`+host+`/legacy/**"
  authorities:
  - static:
      action: fail
      message: legacy images are being retired
`)
	verify := func(images ...string) (string, string, error) {
		var out, stderr bytes.Buffer
		err := execCLI(&out, &stderr, append([]string{"verify", "--policy", policyFile, "--allow-http-registry"}, images...)...)
		return out.String(), stderr.String(), err
	}
	var ve *verifyError
	out, _, err := verify(app, keyed, critical)
	if err != nil || strings.Count(out, "Policy OK") != 3 || !strings.Contains(out, "apps, by authority ci (attestation provenance (1))") ||
		!strings.Contains(out, "two-person, by authority maintainers (") {
		t.Fatalf("what the policies require: %v\n%s", err, out)
	}
	for image, why := range map[string]string{
		tampered:   "no https://slsa.dev/provenance/v1 attestation passes its policy",
		unattested: "no verified attestation of type https://slsa.dev/provenance/v1",
		half:       "two-person spec.policy",
		stranger:   "no policy in " + policyFile + " applies to it",
	} {
		// With a good image beside it: one failure fails the command.
		if _, _, err := verify(app, image); !errors.As(err, &ve) || !strings.Contains(err.Error(), why) {
			t.Errorf("%s: %v, want exit 3 saying %q", image, err, why)
		}
	}
	out, stderr, err := verify(warned)
	if err != nil || !strings.Contains(out, "Policy warned") || !strings.Contains(stderr, "legacy images are being retired") {
		t.Fatalf("warn mode: %v\n%s\n%s", err, out, stderr)
	}
	if _, _, err := verify(app); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, "verify", app, "--policy", policyFile, "--key", keyPrefix+".pub"); err == nil || errors.As(err, &ve) || !strings.Contains(err.Error(), "drop --key") {
		t.Fatalf("--policy with --key: %v", err)
	}
	bad := x.write("bad.yaml", "apiVersion: policy.sigstore.dev/v1beta1\nkind: ClusterImagePolicy\nmetadata: {name: p}\nspec:\n  images: [{glob: \"x/**\"}]\n  authorities: [{key: {kms: \"awskms:///alias/x\"}}]\n")
	if _, err := runCLI(t, "verify", app, "--policy", bad, "--allow-http-registry"); err == nil || errors.As(err, &ve) || !strings.Contains(err.Error(), "give the PEM public key in key.data") {
		t.Fatalf("a policy needing a cluster: %v, want exit 1 saying why", err)
	}

	// verify-attestation --policy, as cosign's.
	rego := x.write("builder.rego", "package signature\nallow { input.predicate.runDetails.builder.id == \"https://ci.example.com\" }\n")
	cue := x.write("builder.cue", "predicate: runDetails: builder: id: \"https://ci.example.com\"\n")
	keyless := []string{"--allow-http-registry", "--type", "slsaprovenance1", "--certificate-identity", "alice@example.com", "--certificate-oidc-issuer", x.issuer}
	for _, p := range []string{rego, cue} {
		if out, err := runCLI(t, append([]string{"verify-attestation", app, "--policy", p}, keyless...)...); err != nil || !strings.Contains(out, "Verified OK") {
			t.Fatalf("%s on the good attestation: %v\n%s", p, err, out)
		}
		if _, err := runCLI(t, append([]string{"verify-attestation", tampered, "--policy", p}, keyless...)...); !errors.As(err, &ve) || !strings.Contains(err.Error(), "policy "+p) {
			t.Fatalf("%s on the other builder's attestation: %v", p, err)
		}
	}
}
