package rekord_test

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signet-dev/signet/types"
	"github.com/signet-dev/signet/types/internal/rekorref"
	"github.com/signet-dev/signet/types/rekord"
)

// minisigned makes a minisign key pair without a password and signs
// content with it (extra: -l for the legacy format); it returns the
// signature and public key files' bytes.
func minisigned(t *testing.T, content []byte, extra ...string) (sig, pub []byte) {
	t.Helper()
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("minisign", args...).CombinedOutput(); err != nil {
			t.Fatalf("minisign %v: %v\n%s", args, err, out)
		}
	}
	pubPath, secPath, file := filepath.Join(dir, "minisign.pub"), filepath.Join(dir, "minisign.key"), filepath.Join(dir, "artifact")
	run("-G", "-W", "-p", pubPath, "-s", secPath)
	os.WriteFile(file, content, 0o600) //nolint:errcheck
	run(append([]string{"-S", "-s", secPath, "-m", file, "-t", "release v1"}, extra...)...)
	// minisign itself verifies what it made.
	run("-V", "-p", pubPath, "-m", file)
	sig, _ = os.ReadFile(file + ".minisig")
	pub, _ = os.ReadFile(pubPath)
	return sig, pub
}

// Keys and signatures as minisign makes them, and the other forms Rekor
// reads: leaf and index keys are Rekor 1.5's.
func TestMinisignMatchesRekor(t *testing.T) {
	reg := types.NewRegistry(rekord.Kind())
	content := []byte("release signed with minisign")
	prehashed, pub := minisigned(t, content)
	legacy, legacyPub := minisigned(t, content, "-l")
	if !strings.HasPrefix(strings.Split(string(prehashed), "\n")[1], "RU") || !strings.HasPrefix(strings.Split(string(legacy), "\n")[1], "RW") {
		t.Fatalf("want an ED (prehashed) and an Ed (legacy) signature:\n%s\n%s", prehashed, legacy)
	}
	pubLine := strings.Split(string(pub), "\n")[1]
	raw, _ := base64.StdEncoding.DecodeString(pubLine)
	// A signify signature: the comment and signature lines of a legacy one.
	lines := strings.Split(string(legacy), "\n")
	signify := []byte(lines[0] + "\n" + lines[1] + "\n")

	for name, p := range map[string][]byte{
		"prehashed":            proposal(t, "minisign", content, prehashed, pub, ""),
		"legacy":               proposal(t, "minisign", content, legacy, legacyPub, ""),
		"key as its base64":    proposal(t, "minisign", content, prehashed, []byte(pubLine), ""),
		"key as its raw bytes": proposal(t, "minisign", content, prehashed, raw[10:], ""),
		"signify":              proposal(t, "minisign", content, signify, legacyPub, ""),
	} {
		t.Run(name, func(t *testing.T) { rekorref.Matches(t, reg, p) })
	}
}

func TestMinisignRefusals(t *testing.T) {
	reg := types.NewRegistry(rekord.Kind())
	content := []byte("artifact")
	sig, pub := minisigned(t, content)
	_, otherPub := minisigned(t, content)
	for name, tc := range map[string]struct {
		proposal []byte
		want     string
	}{
		"another key":            {proposal(t, "minisign", content, sig, otherPub, ""), "does not verify"},
		"another artifact":       {proposal(t, "minisign", []byte("tampered"), sig, pub, ""), "does not verify"},
		"a key as the signature": {proposal(t, "minisign", content, pub, pub, ""), "not a signify signature"},
		"three lines":            {proposal(t, "minisign", content, []byte("a\nb\nc\n"), pub, ""), "this has 3"},
		"not a key":              {proposal(t, "minisign", content, sig, []byte("untrusted comment: x\nnot base64!\n"), ""), "not a minisign public key"},
	} {
		_, err := reg.ParseInsertable(context.Background(), tc.proposal)
		var ve *types.ValidationError
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a validation error saying %q", name, err, tc.want)
		}
	}
}
