// Package rpm is the rpm entry kind (0.0.1): an RPM package signed with
// rpmsign and the PGP key that signed it. The leaf keeps the package's
// SHA-256, its name, epoch, version, release and architecture, the
// signature header's digests and the key, never the package.
//
// Packages are read and verified with SAS's go-rpmutils (on ProtonMail's
// go-crypto, as types/pgp): every signature in the package must verify
// with the given key, and the header and payload digests must match; at
// least one signature is required. Rekor checks only a signature over
// header and payload (rpmsign --rpmv3; rpm 4.16 and later sign the header
// alone by default, so Rekor refuses their packages): here a header-only
// signature is enough too when the header carries the payload's digest
// (rpm 4.14 and later), which is checked.
package rpm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"

	rpmutils "github.com/sassoftware/go-rpmutils"

	"github.com/signet-dev/signet/types"
	"github.com/signet-dev/signet/types/pgp"
)

// Name is the kind's name on the wire.
const Name = "rpm"

// Kind returns the rpm kind.
func Kind() types.Kind {
	return types.Kind{Name: Name, DefaultVersion: "0.0.1", Versions: map[string]types.Parser{"0.0.1": parseV001}}
}

// specV001 is Rekor's rpm 0.0.1 schema; the canonical form drops
// package.content and adds hash and headers.
type specV001 struct {
	Package   *packageV001 `json:"package"`
	PublicKey *keyV001     `json:"publicKey"`
}

type packageV001 struct {
	Content []byte            `json:"content,omitempty"`
	Hash    *hashV001         `json:"hash,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
}

type hashV001 struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"value"`
}

type keyV001 struct {
	Content []byte `json:"content"`
}

// Signature header tags Rekor copies into the leaf (its go-rpm's
// numbering: 1004 is the MD5 of header and payload).
var sigDigestTags = []struct {
	name string
	tag  int
}{{"RPMSIGTAG_MD5", 1004}, {"RPMSIGTAG_SHA1", 1012}, {"RPMSIGTAG_SHA256", 1016}}

func parseV001(_ context.Context, raw json.RawMessage) (types.Entry, error) {
	var s specV001
	if err := types.DecodeStrict(raw, &s); err != nil {
		return nil, types.Invalid("rpm spec: %v", err)
	}
	switch {
	case s.PublicKey == nil || len(s.PublicKey.Content) == 0:
		return nil, types.Invalid("rpm: 'content' must be specified for publicKey (the PGP key rpmsign used)")
	case s.Package == nil || len(s.Package.Content) == 0:
		return nil, types.Invalid("rpm: 'content' must be specified for package (the .rpm itself)")
	}
	key, err := pgp.ReadKey(s.PublicKey.Content)
	if err != nil {
		return nil, types.Invalid("rpm: publicKey: %v", err)
	}
	pkg := s.Package.Content
	sum := sha256.Sum256(pkg)
	computed := hex.EncodeToString(sum[:])
	if h := s.Package.Hash; h != nil && (h.Algorithm != "sha256" || h.Value != computed) {
		return nil, types.Invalid("rpm: SHA mismatch: %s != %s (package.hash is not the SHA-256 of package.content)", computed, h.Value)
	}
	if err := checkHeaderSizes(pkg); err != nil {
		return nil, types.Invalid("rpm: not an RPM package: %v", err)
	}
	hdr, sigs, err := rpmutils.Verify(bytes.NewReader(pkg), key.Keyring)
	if err != nil {
		return nil, types.Invalid("rpm: the package does not verify with publicKey: %v", err)
	}
	if len(sigs) == 0 {
		return nil, types.Invalid("rpm: the package is not signed (rpmsign --addsign)")
	}
	// A header-only signature covers the payload only through the header's
	// payload digest. Packages from before rpm 4.14 have none (their
	// payload is checked against the signature header's MD5, which nothing
	// signs), so they need a signature over header and payload.
	headerOnly := true
	for _, sig := range sigs {
		headerOnly = headerOnly && sig.HeaderOnly
	}
	if headerOnly && !hdr.HasTag(rpmutils.PAYLOADDIGEST) {
		return nil, types.Invalid("rpm: the package is signed over its header only and its header carries no payload digest (rpm before 4.14): the payload is not covered; sign it with rpmsign --rpmv3")
	}
	headers := map[string]string{}
	for name, tag := range map[string]int{"Name": rpmutils.NAME, "Version": rpmutils.VERSION, "Release": rpmutils.RELEASE, "Architecture": rpmutils.ARCH} {
		v, err := hdr.GetString(tag)
		if err != nil {
			return nil, types.Invalid("rpm: the package's header has no %s", name)
		}
		headers[name] = v
	}
	epoch := 0
	if hdr.HasTag(rpmutils.EPOCH) {
		if epoch, err = hdr.GetInt(rpmutils.EPOCH); err != nil {
			return nil, types.Invalid("rpm: the package's epoch: %v", err)
		}
	}
	headers["Epoch"] = strconv.Itoa(epoch)
	for _, d := range sigDigestTags {
		// Tags above the signature header base name the signature header.
		if b, err := hdr.GetBytes(sigHeaderBase + d.tag); err == nil && len(b) > 0 {
			headers[d.name] = hex.EncodeToString(b)
		}
	}
	leaf, err := types.Canonicalize(Name, "0.0.1", specV001{
		Package:   &packageV001{Hash: &hashV001{Algorithm: "sha256", Value: computed}, Headers: headers},
		PublicKey: &keyV001{Content: key.Armored},
	})
	if err != nil {
		return nil, err
	}
	keyHash := sha256.Sum256(key.Armored)
	keys := append([]string{hex.EncodeToString(keyHash[:])}, key.Emails...)
	keys = append(keys, "sha256:"+computed)
	return &types.Verified{Leaf: leaf, Keys: keys}, nil
}

// sigHeaderBase is go-rpmutils' offset for signature header tags.
const sigHeaderBase = 16384

// RPM's layout: a 96-byte lead, then the signature header and the main
// header, each a 16-byte intro (magic 8e ad e8 01, 4 reserved bytes, the
// entry count and the data size, big-endian), 16 bytes per entry and the
// data (the signature header's padded to 8 bytes).
const (
	leadSize  = 96
	introSize = 16
)

var headerMagic = []byte{0x8e, 0xad, 0xe8, 0x01}

// checkHeaderSizes refuses a package whose headers claim more bytes than
// it has, before go-rpmutils allocates what they claim (up to 64 GiB from
// a few bytes), and whose entries point outside their header's data or
// overlap so much that reading them would cost more than the package is
// big (go-rpmutils slices each entry unchecked, and scans each string
// entry from its offset).
func checkHeaderSizes(pkg []byte) error {
	off := leadSize
	for i, name := range []string{"signature header", "header"} {
		if len(pkg) < off+introSize {
			return fmt.Errorf("truncated before its %s", name)
		}
		intro := pkg[off : off+introSize]
		if !bytes.Equal(intro[:4], headerMagic) {
			return errors.New("bad magic for " + name)
		}
		entries, size := uint64(binary.BigEndian.Uint32(intro[8:12])), uint64(binary.BigEndian.Uint32(intro[12:16]))
		padded := size
		if i == 0 {
			padded = (size + 7) / 8 * 8
		}
		need := uint64(introSize) + entries*16 + padded
		if need > uint64(len(pkg)-off) {
			return fmt.Errorf("its %s claims %d bytes, more than the package has", name, need)
		}
		table := pkg[off+introSize : off+introSize+int(entries)*16]
		data := pkg[off+introSize+int(entries)*16 : off+introSize+int(entries)*16+int(size)]
		if err := checkEntries(table, data); err != nil {
			return fmt.Errorf("its %s: %w", name, err)
		}
		off += int(need)
	}
	return nil
}

// RPM's entry types with a fixed size per element; the string types (6, 8,
// 9) are NUL-terminated.
var rpmTypeSizes = map[uint32]uint64{0: 0, 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1}

// checkEntries checks every entry of a header against its data: in range,
// and the bytes all entries span, added up, at most a few times the data.
func checkEntries(table, data []byte) error {
	var nuls []int // positions of NUL bytes, to find string ends quickly
	for i, b := range data {
		if b == 0 {
			nuls = append(nuls, i)
		}
	}
	var spanned uint64
	for e := 0; e+16 <= len(table); e += 16 {
		typ := binary.BigEndian.Uint32(table[e+4:])
		offset, count := uint64(binary.BigEndian.Uint32(table[e+8:])), uint64(binary.BigEndian.Uint32(table[e+12:]))
		if offset > uint64(len(data)) || count > uint64(len(data))+1 {
			return fmt.Errorf("entry %d points outside the header's data", e/16)
		}
		var end uint64
		if size, ok := rpmTypeSizes[typ]; ok {
			end = offset + size*count
		} else {
			// The count-th NUL at or after offset ends the entry.
			first := sort.SearchInts(nuls, int(offset))
			if count == 0 {
				return fmt.Errorf("entry %d is a string list of none", e/16)
			} else if last := first + int(count) - 1; last < len(nuls) {
				end = uint64(nuls[last]) + 1
			} else {
				return fmt.Errorf("entry %d's strings run past the header's data", e/16)
			}
		}
		if end > uint64(len(data)) {
			return fmt.Errorf("entry %d runs past the header's data", e/16)
		}
		if spanned += end - offset; spanned > 4*uint64(len(data))+1<<20 {
			return errors.New("its entries overlap far more than a real header's")
		}
	}
	return nil
}
