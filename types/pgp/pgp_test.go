package pgp_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // a v4 fingerprint is SHA-1
	"encoding/binary"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/signet-dev/signet/types/pgp"
)

func entity(t *testing.T) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity("A", "", "a@example.com", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func serialize(t *testing.T, e *openpgp.Entity) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := e.Serialize(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Short BEGIN/END lines before a real block used to make the block decode
// once per pair (3 GiB from 390 KiB): each block is now decoded once, and
// the junk is refused.
func TestArmorJunkIsRefused(t *testing.T) {
	block, err := pgp.Armor(pgp.PublicKeyType, serialize(t, entity(t)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pgp.ReadKey(block); err != nil {
		t.Fatalf("the block alone: %v", err)
	}
	junk := []byte(strings.Repeat("-----BEGIN PGP\n-----END PGP\n", 1000) + string(block))
	if _, err := pgp.ReadKey(junk); err == nil || !strings.Contains(err.Error(), "not an armored PGP key") {
		t.Fatalf("junk lines before the block: %v, want a refusal", err)
	}
	// Two real blocks, one after the other, are one key ring.
	two := append(append(append([]byte(nil), block...), '\n'), block...)
	if k, err := pgp.ReadKey(two); err != nil || len(k.Keyring) != 2 {
		t.Fatalf("two blocks: %v", err)
	}
}

// Signatures the primary key made count whatever their type: persona
// certifications, which go-crypto's ReadKeyRing verifies too, used not to.
func TestEverySignatureByThePrimaryCounts(t *testing.T) {
	e := entity(t)
	var id *openpgp.Identity
	for _, i := range e.Identities {
		id = i
	}
	var buf bytes.Buffer
	e.PrimaryKey.Serialize(&buf)     //nolint:errcheck
	id.UserId.Serialize(&buf)        //nolint:errcheck
	id.SelfSignature.Serialize(&buf) //nolint:errcheck
	for range pgp.MaxSignatureChecks {
		s := &packet.Signature{Version: 4, SigType: packet.SigTypePersonaCert, PubKeyAlgo: e.PrimaryKey.PubKeyAlgo, Hash: id.SelfSignature.Hash,
			CreationTime: time.Now(), IssuerKeyId: &e.PrimaryKey.KeyId}
		if err := s.SignUserId(id.Name, e.PrimaryKey, e.PrivateKey, nil); err != nil {
			t.Fatal(err)
		}
		s.Serialize(&buf) //nolint:errcheck
	}
	if _, err := pgp.ReadKey(buf.Bytes()); err == nil || !strings.Contains(err.Error(), "signatures by its primary key") {
		t.Fatalf("a self-signature and %d persona certifications: %v, want a refusal", pgp.MaxSignatureChecks, err)
	}
}

// dsaKey is a v4 DSA public key with bits-bit p and q (primality is not
// what is checked), a user ID and a self-signature that would cost two
// bits-bit exponentiations to check.
func dsaKey(bits int) []byte {
	mpi := func(b []byte) []byte {
		n := new(big.Int).SetBytes(b)
		return append([]byte{byte(n.BitLen() >> 8), byte(n.BitLen())}, n.Bytes()...)
	}
	pkt := func(tag byte, body []byte) []byte {
		out := []byte{0xC0 | tag, 0xFF, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(out[2:], uint32(len(body)))
		return append(out, body...)
	}
	rnd := func() []byte {
		n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), uint(bits)))
		n.SetBit(n, bits-1, 1)
		return n.Bytes()
	}
	p, q := rnd(), rnd()
	body := []byte{4, 0x60, 0, 0, 0, 17}
	body = append(append(append(append(body, mpi(p)...), mpi(q)...), mpi([]byte{2})...), mpi([]byte{3})...)
	h := sha1.New() //nolint:gosec
	h.Write([]byte{0x99, byte(len(body) >> 8), byte(len(body))})
	h.Write(body)
	fp := h.Sum(nil)
	hashed := append([]byte{5, 2, 0x60, 0, 0, 1, 9, 16}, fp[12:]...)
	sig := append([]byte{4, 0x13, 17, 8, 0, byte(len(hashed))}, hashed...)
	sig = append(append(append(sig, 0, 0, 0, 0), mpi([]byte{1})...), mpi([]byte{2})...)
	return append(append(pkt(6, body), pkt(13, []byte("a <a@example.com>"))...), pkt(2, sig)...)
}

// A DSA key bigger than FIPS 186 allows is refused before any of its
// signatures is checked (a 32768-bit one cost 10 s a check).
func TestOversizedKeysAreRefused(t *testing.T) {
	if _, err := pgp.ReadKey(dsaKey(4096)); err == nil || !strings.Contains(err.Error(), "is DSA with a 4096-bit p") {
		t.Fatalf("a 4096-bit DSA key: %v, want a refusal naming its size", err)
	}
}

// rewriteUnhashed replaces a serialized v4 signature packet's unhashed
// subpacket area (not covered by the signature) with unhashed.
func rewriteUnhashed(t *testing.T, pkt, unhashed []byte) []byte {
	// new-format header
	if pkt[0] != 0xc2 {
		t.Fatalf("tag %x", pkt[0])
	}
	var body []byte
	switch l := pkt[1]; {
	case l < 192:
		body = pkt[2:]
	case l < 224:
		body = pkt[3:]
	case l == 255:
		body = pkt[6:]
	default:
		t.Fatal("partial length")
	}
	hl := int(binary.BigEndian.Uint16(body[4:6]))
	pre := body[:6+hl]
	ul := int(binary.BigEndian.Uint16(body[6+hl:]))
	post := body[6+hl+2+ul:]
	nb := append([]byte{}, pre...)
	nb = binary.BigEndian.AppendUint16(nb, uint16(len(unhashed)))
	nb = append(nb, unhashed...)
	nb = append(nb, post...)
	out := []byte{0xc2, 0xff}
	out = binary.BigEndian.AppendUint32(out, uint32(len(nb)))
	return append(out, nb...)
}

// Signatures whose issuer subpackets disagree with what go-crypto matches
// count too (a second review found both): a version-0 fingerprint (which
// go-crypto ignores, matching the key ID) on persona certifications, and
// subkey bindings naming another issuer (verified here whoever they name).
func TestIssuerTricksCount(t *testing.T) {
	e, err := openpgp.NewEntity("a", "", "a@example.com", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	var id *openpgp.Identity
	for _, i := range e.Identities {
		id = i
	}
	// Persona certifications with a v0 fingerprint, then the primary's ID.
	v0 := append(append([]byte{22, 33, 0}, bytes.Repeat([]byte{0xAA}, 20)...), 9, 16)
	v0 = binary.BigEndian.AppendUint64(v0, e.PrimaryKey.KeyId)
	s := &packet.Signature{Version: 4, SigType: packet.SigTypePersonaCert, PubKeyAlgo: e.PrimaryKey.PubKeyAlgo, Hash: id.SelfSignature.Hash,
		CreationTime: time.Now(), IssuerKeyId: &e.PrimaryKey.KeyId}
	if err := s.SignUserId(id.Name, e.PrimaryKey, e.PrivateKey, nil); err != nil {
		t.Fatal(err)
	}
	var sb bytes.Buffer
	s.Serialize(&sb) //nolint:errcheck
	persona := rewriteUnhashed(t, sb.Bytes(), v0)
	var buf bytes.Buffer
	e.PrimaryKey.Serialize(&buf)     //nolint:errcheck
	id.UserId.Serialize(&buf)        //nolint:errcheck
	id.SelfSignature.Serialize(&buf) //nolint:errcheck
	for range pgp.MaxSignatureChecks {
		buf.Write(persona)
	}
	if _, err := pgp.ReadKey(buf.Bytes()); err == nil || !strings.Contains(err.Error(), "signatures by its primary key") {
		t.Errorf("persona certifications with a v0 fingerprint: %v, want a refusal", err)
	}
	// Subkey bindings naming a foreign fingerprint.
	sb.Reset()
	e.Subkeys[0].Sig.Serialize(&sb) //nolint:errcheck
	binding := rewriteUnhashed(t, sb.Bytes(), append([]byte{22, 33, 4}, bytes.Repeat([]byte{0xAA}, 20)...))
	buf.Reset()
	e.PrimaryKey.Serialize(&buf)           //nolint:errcheck
	id.UserId.Serialize(&buf)              //nolint:errcheck
	id.SelfSignature.Serialize(&buf)       //nolint:errcheck
	e.Subkeys[0].PublicKey.Serialize(&buf) //nolint:errcheck
	for range pgp.MaxSignatureChecks {
		buf.Write(binding)
	}
	if _, err := pgp.ReadKey(buf.Bytes()); err == nil || !strings.Contains(err.Error(), "signatures by its primary key") {
		t.Errorf("subkey bindings naming another issuer: %v, want a refusal", err)
	}
}
