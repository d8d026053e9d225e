// Package alpine is the alpine entry kind (0.0.1): an Alpine Linux package
// (.apk) and the RSA key that signed it, as abuild-sign signs them. The leaf
// keeps the package's SHA-256, its .PKGINFO fields and the key, never the
// package.
//
// An .apk is three gzip streams back to back: signature.tar.gz (holding
// .SIGN.RSA.<key name>.rsa.pub, a PKCS#1 v1.5 signature over the SHA-1 of
// the compressed control stream), control.tar.gz (holding .PKGINFO, whose
// datahash is the SHA-256 of the compressed data stream) and data.tar.gz.
// The data stream is hashed, never decompressed.
package alpine

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto"
	"crypto/sha1" //nolint:gosec // the signature is over SHA-1: abuild's format
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
	"gopkg.in/ini.v1"

	"github.com/signet-dev/signet/types"
	"github.com/signet-dev/signet/types/pki"
)

// Name is the kind's name on the wire.
const Name = "alpine"

// Bounds on what a package makes the log decompress (the data stream is
// only hashed). Rekor reads the control stream unbounded.
const (
	// MaxSignatureStream bounds signature.tar.gz decompressed.
	MaxSignatureStream = 1 << 20
	// MaxControlStream bounds control.tar.gz decompressed.
	MaxControlStream = 8 << 20
	// MaxPkginfo bounds .PKGINFO, and MaxPkginfoLines its lines: the ini
	// reader Rekor's fields come from checks each new key against every
	// earlier one (80,000 keys took 11 s). abuild writes a few dozen.
	MaxPkginfo      = 64 << 10
	MaxPkginfoLines = 2048
)

// Kind returns the alpine kind.
func Kind() types.Kind {
	return types.Kind{Name: Name, DefaultVersion: "0.0.1", Versions: map[string]types.Parser{"0.0.1": parseV001}}
}

// specV001 is Rekor's alpine 0.0.1 schema; the canonical form drops
// package.content and adds hash and pkginfo.
type specV001 struct {
	Package   *packageV001 `json:"package"`
	PublicKey *keyV001     `json:"publicKey"`
}

type packageV001 struct {
	Content []byte            `json:"content,omitempty"`
	Hash    *hashV001         `json:"hash,omitempty"`
	Pkginfo map[string]string `json:"pkginfo,omitempty"`
}

type hashV001 struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"value"`
}

type keyV001 struct {
	Content []byte `json:"content"`
}

func parseV001(_ context.Context, raw json.RawMessage) (types.Entry, error) {
	var s specV001
	if err := types.DecodeStrict(raw, &s); err != nil {
		return nil, types.Invalid("alpine spec: %v", err)
	}
	switch {
	case s.PublicKey == nil || len(s.PublicKey.Content) == 0:
		return nil, types.Invalid("alpine: 'content' must be specified for publicKey")
	case s.Package == nil || len(s.Package.Content) == 0:
		return nil, types.Invalid("alpine: 'content' must be specified for package (the .apk itself)")
	}
	key, err := pki.ParseVerifier(s.PublicKey.Content)
	if err != nil {
		return nil, types.Invalid("alpine: publicKey: %v", err)
	}
	sum := sha256.Sum256(s.Package.Content)
	computed := hex.EncodeToString(sum[:])
	if h := s.Package.Hash; h != nil && (h.Algorithm != "sha256" || h.Value != computed) {
		return nil, types.Invalid("alpine: SHA mismatch: %s != %s (package.hash is not the SHA-256 of package.content)", computed, h.Value)
	}
	apk, err := readPackage(s.Package.Content)
	if err != nil {
		return nil, types.Invalid("alpine: %v", err)
	}
	// abuild signs with RSA and SHA-1; LoadUnsafeVerifier is what accepts
	// SHA-1, as in Rekor.
	verifier, err := signature.LoadUnsafeVerifier(key.Key)
	if err != nil {
		return nil, types.Invalid("alpine: publicKey: %v", err)
	}
	if err := verifier.VerifySignature(bytes.NewReader(apk.signature), nil, options.WithDigest(apk.controlSHA1), options.WithCryptoSignerOpts(crypto.SHA1)); err != nil {
		return nil, types.Invalid("alpine: the package's signature does not verify with publicKey: %v", err)
	}
	canonKey, err := key.CanonicalPEM()
	if err != nil {
		return nil, err
	}
	leaf, err := types.Canonicalize(Name, "0.0.1", specV001{
		Package:   &packageV001{Hash: &hashV001{Algorithm: "sha256", Value: computed}, Pkginfo: apk.pkginfo},
		PublicKey: &keyV001{Content: canonKey},
	})
	if err != nil {
		return nil, err
	}
	keyHash := sha256.Sum256(canonKey)
	keys := append([]string{hex.EncodeToString(keyHash[:])}, key.Subjects()...)
	keys = append(keys, "sha256:"+computed)
	return &types.Verified{Leaf: leaf, Keys: keys}, nil
}

// apkPackage is what the log reads from an .apk.
type apkPackage struct {
	signature   []byte
	controlSHA1 []byte
	pkginfo     map[string]string
}

// hashingReader passes bytes through, adding them to a hash while on. It
// is an io.ByteReader, so gzip reads exactly the bytes of one stream from
// it and the hash covers exactly the control stream.
type hashingReader struct {
	r  *bufio.Reader
	h  hash.Hash
	on bool
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if h.on && n > 0 {
		h.h.Write(p[:n])
	}
	return n, err
}

func (h *hashingReader) ReadByte() (byte, error) {
	b, err := h.r.ReadByte()
	if h.on && err == nil {
		h.h.Write([]byte{b})
	}
	return b, err
}

func readPackage(apk []byte) (*apkPackage, error) {
	in := &hashingReader{r: bufio.NewReader(bytes.NewReader(apk)), h: sha1.New()} //nolint:gosec
	gz, err := gzip.NewReader(in)
	if err != nil {
		return nil, fmt.Errorf("not an .apk: signature.tar.gz: %w", err)
	}
	gz.Multistream(false)
	sigTar, err := readBounded(gz, MaxSignatureStream, "signature.tar.gz")
	if err != nil {
		return nil, err
	}
	in.on = true
	if err := gz.Reset(in); err != nil {
		return nil, fmt.Errorf("not an .apk: control.tar.gz: %w", err)
	}
	gz.Multistream(false)
	controlTar, err := readBounded(gz, MaxControlStream, "control.tar.gz")
	if err != nil {
		return nil, err
	}
	in.on = false
	apk1 := &apkPackage{controlSHA1: in.h.Sum(nil)}

	if apk1.signature, err = tarFile(sigTar, func(name string) bool { return strings.HasPrefix(name, ".SIGN") }, MaxSignatureStream); err != nil {
		return nil, fmt.Errorf("signature.tar.gz: %w", err)
	}
	if apk1.signature == nil {
		return nil, errors.New("no signature in the package (signature.tar.gz has no .SIGN file): sign it with abuild-sign")
	}
	if block, _ := pem.Decode(apk1.signature); block != nil {
		apk1.signature = block.Bytes
	}
	info, err := tarFile(controlTar, func(name string) bool { return name == ".PKGINFO" }, MaxPkginfo)
	if err != nil {
		return nil, fmt.Errorf("control.tar.gz: %w", err)
	}
	if info == nil {
		return nil, errors.New("control.tar.gz has no .PKGINFO")
	}
	if n := bytes.Count(info, []byte("\n")); n > MaxPkginfoLines {
		return nil, fmt.Errorf(".PKGINFO has %d lines, more than %d", n, MaxPkginfoLines)
	}
	cfg, err := ini.Load(info)
	if err != nil {
		return nil, fmt.Errorf(".PKGINFO: %w", err)
	}
	apk1.pkginfo = cfg.Section("").KeysHash()
	datahash, err := hex.DecodeString(apk1.pkginfo["datahash"])
	if err != nil || len(datahash) != sha256.Size {
		return nil, errors.New(".PKGINFO's datahash is not a SHA-256 in hex")
	}
	data := sha256.New()
	if _, err := io.Copy(data, in); err != nil {
		return nil, fmt.Errorf("data.tar.gz: %w", err)
	}
	if got := data.Sum(nil); !bytes.Equal(got, datahash) {
		return nil, fmt.Errorf("checksum for data.tar.gz (%x) does not match .PKGINFO's datahash (%x)", got, datahash)
	}
	return apk1, nil
}

// readBounded decompresses one gzip stream, refusing more than limit bytes.
func readBounded(r io.Reader, limit int64, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s decompresses to more than %d bytes", what, limit)
	}
	return b, nil
}

// tarFile returns the first file of the archive whose name matches, at most
// limit bytes; nil when there is none. abuild cuts the archives' end
// blocks, so the end of the bytes ends the archive.
func tarFile(archive []byte, match func(string) bool, limit int64) ([]byte, error) {
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if !match(h.Name) {
			continue
		}
		if h.Size < 0 || h.Size > limit {
			return nil, fmt.Errorf("%s is %d bytes, more than %d", h.Name, h.Size, limit)
		}
		return io.ReadAll(tr)
	}
}
