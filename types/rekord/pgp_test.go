package rekord_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/signet-dev/signet/internal/gpgtest"
	"github.com/signet-dev/signet/types"
	"github.com/signet-dev/signet/types/internal/rekorref"
	"github.com/signet-dev/signet/types/rekord"
)

// Keys and signatures as GnuPG makes them: the leaf and index keys are
// Rekor 1.5's for every key x/crypto/openpgp can read.
func TestPGPMatchesRekor(t *testing.T) {
	reg := types.NewRegistry(rekord.Kind())
	content := []byte("release tarball signed with gpg")
	g := gpgtest.New(t)
	g.GPG("--quick-gen-key", "Release <release@example.com>", "rsa2048", "default", "1y")
	rsaFpr := g.Fingerprint("release@example.com")
	// An encryption subkey, and the expiry extended (a second
	// self-signature on the user ID: Rekor keeps the last one only).
	g.GPG("--quick-add-key", rsaFpr, "rsa2048", "encr", "1y")
	g.GPG("--quick-set-expire", rsaFpr, "2y")
	g.GPG("--quick-gen-key", "Nist Signer <nist@example.com>", "nistp256", "default", "1y")
	nistFpr := g.Fingerprint("nist@example.com")
	// A signing subkey: gpg signs with it, not the primary key.
	g.GPG("--quick-add-key", nistFpr, "nistp256/ecdsa", "sign", "1y")
	// A certification by another key on the user ID, after the self-signature.
	g.GPG("--local-user", rsaFpr, "--quick-sign-key", nistFpr)

	// Two self-signatures on one user ID: gpg exports only the newest, so
	// the older one is spliced back in, before it, as a key that was
	// re-signed and merged elsewhere would carry it. Rekor keeps the last.
	g.GPG("--quick-gen-key", "Twice <twice@example.com>", "rsa2048", "default", "1y")
	before := pgpPackets(t, g.GPG("--export", "twice@example.com"))
	g.GPG("--quick-set-expire", g.Fingerprint("twice@example.com"), "3y")
	after := pgpPackets(t, g.GPG("--export", "twice@example.com"))
	if len(before) != 3 || len(after) != 3 {
		t.Fatalf("want key, user ID and self-signature, got %d and %d packets", len(before), len(after))
	}
	twice := slices.Concat(before[0], before[1], before[2], after[2])

	for _, uid := range []string{"release@example.com", "nist@example.com", "twice@example.com"} {
		armoredKey := g.GPG("--armor", "--export", uid)
		binaryKey := g.GPG("--export", uid)
		if uid == "twice@example.com" {
			binaryKey = twice
			armoredKey = armorKey(t, twice)
		}
		for name, p := range map[string][]byte{
			"armored key, armored signature": proposal(t, "pgp", content, g.Sign(uid, content, true), armoredKey, ""),
			"binary key, binary signature":   proposal(t, "pgp", content, g.Sign(uid, content, false), binaryKey, ""),
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
	g := gpgtest.New(t)
	g.GPG("--quick-gen-key", "Modern <modern@example.com>", "ed25519", "default", "1y")
	g.GPG("--quick-add-key", g.Fingerprint("modern@example.com"), "cv25519", "encr", "1y")
	key := g.GPG("--armor", "--export", "modern@example.com")
	p := proposal(t, "pgp", content, g.Sign("modern@example.com", content, true), key, "")
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
	e2, err := reg.ParseInsertable(context.Background(), proposal(t, "pgp", content, g.Sign("modern@example.com", content, true), g.GPG("--export", "modern@example.com"), ""))
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
	g := gpgtest.New(t)
	g.GPG("--quick-gen-key", "A <a@example.com>", "nistp256", "default", "1y")
	g.GPG("--quick-gen-key", "B <b@example.com>", "nistp256", "default", "1y")
	aKey := g.GPG("--armor", "--export", "a@example.com")
	aSig := g.Sign("a@example.com", content, true)
	private := g.GPG("--armor", "--export-secret-keys", "a@example.com")
	// Costly keys: a self-signature repeated past the limit on checks, and
	// more primary keys than a key may hold.
	packets := pgpPackets(t, g.GPG("--export", "a@example.com"))
	manySigs := slices.Concat(packets...)
	for range 32 {
		manySigs = append(manySigs, packets[2]...)
	}
	manyKeys := bytes.Repeat(g.GPG("--export", "a@example.com"), 9)
	for name, tc := range map[string]struct {
		proposal []byte
		want     string
	}{
		"another key":        {proposal(t, "pgp", content, aSig, g.GPG("--armor", "--export", "b@example.com"), ""), "does not verify"},
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
