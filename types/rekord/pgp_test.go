package rekord_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/signet-dev/signet/types"
	"github.com/signet-dev/signet/types/internal/rekorref"
	"github.com/signet-dev/signet/types/rekord"
)

// gpgHome is a GnuPG home of its own, with its agent stopped at the end.
type gpgHome struct {
	t   *testing.T
	dir string
}

func newGPGHome(t *testing.T) *gpgHome {
	t.Helper()
	// Short: the agent's socket path must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o700) //nolint:errcheck
	g := &gpgHome{t: t, dir: dir}
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", dir, "--kill", "all").Run() //nolint:errcheck
		os.RemoveAll(dir)
	})
	return g
}

func (g *gpgHome) run(args ...string) []byte {
	g.t.Helper()
	cmd := exec.Command("gpg", append([]string{"--homedir", g.dir, "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		g.t.Fatalf("gpg %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

// fingerprint of the key whose user ID is uid.
func (g *gpgHome) fingerprint(uid string) string {
	g.t.Helper()
	for _, line := range strings.Split(string(g.run("--with-colons", "--list-keys", uid)), "\n") {
		if f := strings.Split(line, ":"); f[0] == "fpr" {
			return f[9]
		}
	}
	g.t.Fatalf("no fingerprint for %s", uid)
	return ""
}

// sign makes a detached signature over content with uid's key.
func (g *gpgHome) sign(uid string, content []byte, armor bool) []byte {
	g.t.Helper()
	file := filepath.Join(g.dir, "artifact")
	os.WriteFile(file, content, 0o600) //nolint:errcheck
	args := []string{"--local-user", uid, "--output", "-", "--detach-sign"}
	if armor {
		args = append([]string{"--armor"}, args...)
	}
	return g.run(append(args, file)...)
}

// Keys and signatures as GnuPG makes them: the leaf and index keys are
// Rekor 1.5's for every key x/crypto/openpgp can read.
func TestPGPMatchesRekor(t *testing.T) {
	reg := types.NewRegistry(rekord.Kind())
	content := []byte("release tarball signed with gpg")
	g := newGPGHome(t)
	g.run("--quick-gen-key", "Release <release@example.com>", "rsa2048", "default", "1y")
	rsaFpr := g.fingerprint("release@example.com")
	// An encryption subkey, and the expiry extended (a second
	// self-signature on the user ID: Rekor keeps the last one only).
	g.run("--quick-add-key", rsaFpr, "rsa2048", "encr", "1y")
	g.run("--quick-set-expire", rsaFpr, "2y")
	g.run("--quick-gen-key", "Nist Signer <nist@example.com>", "nistp256", "default", "1y")
	nistFpr := g.fingerprint("nist@example.com")
	// A signing subkey: gpg signs with it, not the primary key.
	g.run("--quick-add-key", nistFpr, "nistp256/ecdsa", "sign", "1y")
	// A certification by another key on the user ID, after the self-signature.
	g.run("--local-user", rsaFpr, "--quick-sign-key", nistFpr)

	// Two self-signatures on one user ID: gpg exports only the newest, so
	// the older one is spliced back in, before it, as a key that was
	// re-signed and merged elsewhere would carry it. Rekor keeps the last.
	g.run("--quick-gen-key", "Twice <twice@example.com>", "rsa2048", "default", "1y")
	before := pgpPackets(t, g.run("--export", "twice@example.com"))
	g.run("--quick-set-expire", g.fingerprint("twice@example.com"), "3y")
	after := pgpPackets(t, g.run("--export", "twice@example.com"))
	if len(before) != 3 || len(after) != 3 {
		t.Fatalf("want key, user ID and self-signature, got %d and %d packets", len(before), len(after))
	}
	twice := slices.Concat(before[0], before[1], before[2], after[2])

	for _, uid := range []string{"release@example.com", "nist@example.com", "twice@example.com"} {
		armoredKey := g.run("--armor", "--export", uid)
		binaryKey := g.run("--export", uid)
		if uid == "twice@example.com" {
			binaryKey = twice
			armoredKey = armorKey(t, twice)
		}
		for name, p := range map[string][]byte{
			"armored key, armored signature": proposal(t, "pgp", content, g.sign(uid, content, true), armoredKey, ""),
			"binary key, binary signature":   proposal(t, "pgp", content, g.sign(uid, content, false), binaryKey, ""),
		} {
			t.Run(uid+", "+name, func(t *testing.T) {
				e := rekorref.Matches(t, reg, p)
				if !strings.Contains(strings.Join(e.IndexKeys(), " "), uid) {
					t.Errorf("index keys %v lack the key's email", e.IndexKeys())
				}
			})
		}
	}
}

// pgpPackets splits a binary OpenPGP stream into its packets (RFC 4880
// section 4.2 headers, old and new format, definite lengths).
func pgpPackets(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(b) > 0 {
		h, n := 1, 0
		switch {
		case b[0]&0x40 == 0: // old format
			switch b[0] & 3 {
			case 0:
				h, n = 2, int(b[1])
			case 1:
				h, n = 3, int(binary.BigEndian.Uint16(b[1:]))
			case 2:
				h, n = 5, int(binary.BigEndian.Uint32(b[1:]))
			default:
				t.Fatal("indeterminate length")
			}
		case b[1] < 192:
			h, n = 2, int(b[1])
		case b[1] < 224:
			h, n = 3, (int(b[1])-192)<<8+int(b[2])+192
		case b[1] == 255:
			h, n = 6, int(binary.BigEndian.Uint32(b[2:]))
		default:
			t.Fatal("partial length")
		}
		out = append(out, b[:h+n])
		b = b[h+n:]
	}
	return out
}

func armorKey(t *testing.T, bin []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, "PGP PUBLIC KEY BLOCK", nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(bin) //nolint:errcheck
	w.Close()    //nolint:errcheck
	return buf.Bytes()
}

// GnuPG's default keys since 2.3 (Ed25519, with a Curve25519 encryption
// subkey) are refused by Rekor's x/crypto/openpgp and accepted here.
func TestPGPEd25519(t *testing.T) {
	reg := types.NewRegistry(rekord.Kind())
	content := []byte("signed with a modern gpg key")
	g := newGPGHome(t)
	g.run("--quick-gen-key", "Modern <modern@example.com>", "ed25519", "default", "1y")
	g.run("--quick-add-key", g.fingerprint("modern@example.com"), "cv25519", "encr", "1y")
	key := g.run("--armor", "--export", "modern@example.com")
	p := proposal(t, "pgp", content, g.sign("modern@example.com", content, true), key, "")
	if _, _, err := rekorref.Canonicalize(p); err == nil {
		t.Log("Rekor now reads Ed25519 PGP keys: compare with it")
	}
	e, err := reg.ParseInsertable(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if keys := strings.Join(e.IndexKeys(), " "); !strings.Contains(keys, "modern@example.com") || !strings.Contains(string(e.Canonical()), `"format":"pgp"`) {
		t.Fatalf("keys %s, leaf %s", keys, e.Canonical())
	}
	// The same key sent binary is the same entry.
	e2, err := reg.ParseInsertable(context.Background(), proposal(t, "pgp", content, g.sign("modern@example.com", content, true), g.run("--export", "modern@example.com"), ""))
	if err != nil {
		t.Fatal(err)
	}
	if a, b := canonicalKey(t, e.Canonical()), canonicalKey(t, e2.Canonical()); a != b {
		t.Fatalf("armored and binary inputs give different canonical keys:\n%s\n%s", a, b)
	}
}

func canonicalKey(t *testing.T, leaf []byte) string {
	t.Helper()
	i := strings.Index(string(leaf), `"publicKey":{"content":"`)
	if i < 0 {
		t.Fatalf("no key in %s", leaf)
	}
	rest := string(leaf[i+len(`"publicKey":{"content":"`):])
	return rest[:strings.Index(rest, `"`)]
}

func TestPGPRefusals(t *testing.T) {
	reg := types.NewRegistry(rekord.Kind())
	content := []byte("artifact")
	g := newGPGHome(t)
	g.run("--quick-gen-key", "A <a@example.com>", "nistp256", "default", "1y")
	g.run("--quick-gen-key", "B <b@example.com>", "nistp256", "default", "1y")
	aKey := g.run("--armor", "--export", "a@example.com")
	aSig := g.sign("a@example.com", content, true)
	private := g.run("--armor", "--export-secret-keys", "a@example.com")
	// Costly keys: a self-signature repeated past the limit on checks, and
	// more primary keys than a key may hold.
	packets := pgpPackets(t, g.run("--export", "a@example.com"))
	manySigs := slices.Concat(packets...)
	for range 32 {
		manySigs = append(manySigs, packets[2]...)
	}
	manyKeys := bytes.Repeat(g.run("--export", "a@example.com"), 9)
	for name, tc := range map[string]struct {
		proposal []byte
		want     string
	}{
		"another key":        {proposal(t, "pgp", content, aSig, g.run("--armor", "--export", "b@example.com"), ""), "does not verify"},
		"another artifact":   {proposal(t, "pgp", []byte("tampered"), aSig, aKey, ""), "does not verify"},
		"a private key":      {proposal(t, "pgp", content, aSig, private, ""), "this is a PGP private key"},
		"a key as signature": {proposal(t, "pgp", content, aKey, aKey, ""), "not a \"PGP SIGNATURE\""},
		"an x509 key":        {proposal(t, "pgp", content, aSig, []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), ""), "publicKey"},
		"garbage key":        {proposal(t, "pgp", content, aSig, []byte{0x99, 0, 1, 2}, ""), "publicKey"},
		"garbage signature":  {proposal(t, "pgp", content, []byte{0xc2, 1, 2}, aKey, ""), "signature"},
		"33 self-signatures": {proposal(t, "pgp", content, aSig, manySigs, ""), "more than 32 signatures by its primary key"},
		"9 primary keys":     {proposal(t, "pgp", content, aSig, manyKeys, ""), "more than 8 primary keys"},
	} {
		_, err := reg.ParseInsertable(context.Background(), tc.proposal)
		var ve *types.ValidationError
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a validation error saying %q", name, err, tc.want)
		}
	}
}
