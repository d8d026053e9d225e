package server_test

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// The curl examples in the README must work as written.
func TestREADMECurlExamples(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "<!-- curl-examples -->\n```sh\n")
	if !ok {
		t.Fatal("README has no curl-examples block")
	}
	block, _, ok = strings.Cut(block, "```\n<!-- /curl-examples -->")
	if !ok {
		t.Fatal("README curl-examples block is not closed")
	}
	inst := newFixture(t).startDev(t)
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", block)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "SIGNET="+inst.http.URL)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("README examples failed: %v\n%s", err, out)
	}
	for _, want := range []string{
		"ok\n", "-----BEGIN PUBLIC KEY-----",
		`"logIndex":0`, `"signedEntryTimestamp":`, `"logIndex":1`,
		`{"code":409,"message":"an equivalent entry already exists`,
		`"treeSize":1`, `{"hashes":[],"rootHash":`,
		`{"signedCertificateEmbeddedSct":{"chain":{"certificates":["-----BEGIN CERTIFICATE-----`,
		`{"chains":[{"certificates":[`, `"issuerType":"email-or-uri"`, "Verification: OK",
		"application/vnd.dev.sigstore.trustedroot+json;version=0.1", "application/vnd.dev.sigstore.signingconfig.v0.2+json",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("README examples output lacks %q:\n%s", want, out)
		}
	}
	if n := len(regexp.MustCompile(`\["[0-9a-f]{80}"\]`).FindAllString(string(out), -1)); n != 2 {
		t.Errorf("the two index searches returned %d single-entry answers, want 2:\n%s", n, out)
	}
}
