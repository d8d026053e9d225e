// Package jar is the jar entry kind (0.0.1): a signed Java archive, as
// jarsigner signs it. The signature block (META-INF/*.RSA, .DSA, .EC or
// SIG-*) is a PKCS#7 signature over the .SF file, which holds digests of
// the manifest, which holds a digest of every entry; all of it is checked
// with SAS's relic (the library Rekor uses; v8 here). The leaf keeps the
// archive's SHA-256, the detached signature and the signer's certificate.
package jar

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/sassoftware/relic/v8/lib/pkcs7"
	"github.com/sassoftware/relic/v8/lib/signjar"

	"github.com/signet-dev/signet/types"
	"github.com/signet-dev/signet/types/pki"
)

// Name is the kind's name on the wire.
const Name = "jar"

// Bounds on what an archive makes the log decompress: checking every
// entry's digest reads every entry, so an archive of a few MiB could
// otherwise cost gigabytes of inflation (Rekor bounds only META-INF).
const (
	// MaxEntries bounds the archive's entries.
	MaxEntries = 1 << 16
	// MaxUncompressed bounds the entries' sizes added up, as the archive
	// declares them (archive/zip refuses an entry longer than declared).
	MaxUncompressed = 256 << 20
	// MaxExpansion bounds the entries' sizes added up against the archive's.
	MaxExpansion = 32
	// MaxMetadata bounds META-INF's files, added up: relic reads them
	// whole.
	MaxMetadata = 16 << 20
)

// Kind returns the jar kind.
func Kind() types.Kind {
	return types.Kind{Name: Name, DefaultVersion: "0.0.1", Versions: map[string]types.Parser{"0.0.1": parseV001}}
}

// specV001 is Rekor's jar 0.0.1 schema; the canonical form drops
// archive.content and adds the hash and the signature.
type specV001 struct {
	Archive   *archiveV001   `json:"archive"`
	Signature *signatureV001 `json:"signature,omitempty"`
}

type archiveV001 struct {
	Content []byte    `json:"content,omitempty"`
	Hash    *hashV001 `json:"hash,omitempty"`
}

type hashV001 struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"value"`
}

type signatureV001 struct {
	Content   []byte   `json:"content"`
	PublicKey *keyV001 `json:"publicKey"`
}

type keyV001 struct {
	Content []byte `json:"content"`
}

func parseV001(_ context.Context, raw json.RawMessage) (types.Entry, error) {
	var s specV001
	if err := types.DecodeStrict(raw, &s); err != nil {
		return nil, types.Invalid("jar spec: %v", err)
	}
	if s.Archive == nil || len(s.Archive.Content) == 0 {
		return nil, types.Invalid("jar: 'content' must be specified for archive (the signed .jar itself)")
	}
	if s.Signature != nil {
		return nil, types.Invalid("jar: signature is computed by the log from the archive; send archive.content alone")
	}
	jar := s.Archive.Content
	sum := sha256.Sum256(jar)
	computed := hex.EncodeToString(sum[:])
	if h := s.Archive.Hash; h != nil && (h.Algorithm != "sha256" || h.Value != computed) {
		return nil, types.Invalid("jar: SHA mismatch: %s != %s (archive.hash is not the SHA-256 of archive.content)", computed, h.Value)
	}
	zr, err := zip.NewReader(bytes.NewReader(jar), int64(len(jar)))
	if err != nil {
		return nil, types.Invalid("jar: not a zip archive: %v", err)
	}
	if err := checkSizes(zr, len(jar)); err != nil {
		return nil, types.Invalid("jar: %v", err)
	}
	if err := everyEntrySigned(zr); err != nil {
		return nil, types.Invalid("jar: %v", err)
	}
	if err := checkBlockKeys(zr); err != nil {
		return nil, types.Invalid("jar: %v", err)
	}
	sigs, err := signjar.Verify(zr, false)
	if err != nil {
		return nil, types.Invalid("jar: the archive's signature does not verify: %v", err)
	}
	if len(sigs) != 1 {
		return nil, types.Invalid("jar: %d signatures in the archive; one is logged (as Rekor)", len(sigs))
	}
	// The block and certificate logged are the ones relic verified: Rekor
	// takes the first block in zip order and its first certificate, which
	// for jarsigner's archives are the same, but an archive can carry
	// another signer's block, unverified, ahead of its own.
	sig := sigs[0]
	if sig.Certificate == nil {
		return nil, types.Invalid("jar: the signature block carries no signer certificate")
	}
	psd, err := pkcs7.Unmarshal(sig.Raw)
	if err != nil {
		return nil, types.Invalid("jar: the signature block: %v", err)
	}
	// The stored forms are Rekor's: the signer's certificate as PEM, and
	// the block re-encoded detached, as PEM "PKCS7".
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: sig.Certificate.Raw})
	if _, err := psd.Detach(); err != nil {
		return nil, types.Invalid("jar: the signature block: %v", err)
	}
	detached, err := psd.Marshal()
	if err != nil {
		return nil, types.Invalid("jar: the signature block: %v", err)
	}
	sigPEM := pem.EncodeToMemory(&pem.Block{Type: "PKCS7", Bytes: detached})
	leaf, err := types.Canonicalize(Name, "0.0.1", specV001{
		Archive:   &archiveV001{Hash: &hashV001{Algorithm: "sha256", Value: computed}},
		Signature: &signatureV001{Content: sigPEM, PublicKey: &keyV001{Content: certPEM}},
	})
	if err != nil {
		return nil, err
	}
	// Rekor indexes the signature's digest (its code names it the key's)
	// and the archive's. The certificate's digest is indexed too (a
	// deviation, on purpose): a search by the signer's certificate then
	// finds its archives.
	sigHash, certHash := sha256.Sum256(sigPEM), sha256.Sum256(certPEM)
	keys := []string{hex.EncodeToString(sigHash[:]), "sha256:" + computed, hex.EncodeToString(certHash[:])}
	return &types.Verified{Leaf: leaf, Keys: keys}, nil
}

// isMetadata is whether a zip entry is one of META-INF's signature files
// (the files relic reads whole).
func isMetadata(name string) (ext string, ok bool) {
	dir, base := path.Split(strings.ToUpper(name))
	if dir != "META-INF/" || base == "" {
		return "", false
	}
	i := strings.LastIndex(base, ".")
	if i < 0 {
		return "", false
	}
	return base[i:], true
}

// isSignatureFile is whether name is META-INF's manifest, a .SF file or a
// signature block: the files a signature does not list.
func isSignatureFile(name string) bool {
	ext, ok := isMetadata(name)
	_, base := path.Split(strings.ToUpper(name))
	return ok && (base == "MANIFEST.MF" || ext == ".SF" || isBlock(name))
}

// isBlock is whether name is a signature block, as relic tells them.
func isBlock(name string) bool {
	ext, ok := isMetadata(name)
	_, base := path.Split(strings.ToUpper(name))
	return ok && (ext == ".RSA" || ext == ".DSA" || ext == ".EC" || strings.HasPrefix(base, "SIG-"))
}

// checkBlockKeys applies types/pki's key bounds to every certificate in
// every signature block before relic verifies with them (relic checks a
// failing RSA signature twice: a 512 Kib modulus cost 24 s).
func checkBlockKeys(zr *zip.Reader) error {
	for _, f := range zr.File {
		if !isBlock(f.Name) {
			continue
		}
		r, err := f.Open()
		if err != nil {
			return err
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			return err
		}
		psd, err := pkcs7.Unmarshal(b)
		if err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
		certs, err := psd.Content.Certificates.Parse()
		if err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
		for _, c := range certs {
			if err := pki.CheckKey(c.PublicKey); err != nil {
				return fmt.Errorf("%s: %w", f.Name, err)
			}
		}
	}
	return nil
}

func checkSizes(zr *zip.Reader, size int) error {
	if len(zr.File) > MaxEntries {
		return fmt.Errorf("%d entries, more than %d", len(zr.File), MaxEntries)
	}
	// Inflation is bounded by the archive too: a few hundred KiB of
	// deflate can declare the whole 256 MiB.
	limit := min(uint64(MaxUncompressed), uint64(MaxExpansion)*uint64(size))
	var total, metadata uint64
	for _, f := range zr.File {
		total += f.UncompressedSize64
		if total > limit {
			return fmt.Errorf("its entries decompress to more than %d bytes (%d times the archive, at most %d)", limit, MaxExpansion, MaxUncompressed)
		}
		if _, ok := isMetadata(f.Name); ok {
			if metadata += f.UncompressedSize64; metadata > MaxMetadata {
				return fmt.Errorf("its META-INF files decompress to more than %d bytes", MaxMetadata)
			}
		}
	}
	return nil
}

// everyEntrySigned refuses entries the signature does not cover: relic
// checks the files the manifest lists, so a file it does not list, or a
// second file of the same name, would be logged as signed (Rekor logs it
// so). Directories and META-INF's own files are not listed by jarsigner.
func everyEntrySigned(zr *zip.Reader) error {
	var manifest []byte
	seen := map[string]bool{}
	for _, f := range zr.File {
		if seen[f.Name] {
			return fmt.Errorf("two entries named %q", f.Name)
		}
		seen[f.Name] = true
		if strings.EqualFold(f.Name, "META-INF/MANIFEST.MF") {
			r, err := f.Open()
			if err != nil {
				return err
			}
			manifest, err = io.ReadAll(r)
			r.Close()
			if err != nil {
				return err
			}
		}
	}
	parsed, err := signjar.ParseManifest(manifest)
	if err != nil {
		return fmt.Errorf("the manifest: %w", err)
	}
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/") {
			if f.UncompressedSize64 > 0 {
				return fmt.Errorf("directory entry %s has content", f.Name)
			}
			continue
		}
		// The manifest and signature files are not listed; anything else,
		// in META-INF too (META-INF/versions/ holds code), must be.
		if isSignatureFile(f.Name) {
			continue
		}
		if _, ok := parsed.Files[f.Name]; !ok {
			return fmt.Errorf("%s is not in the manifest: the signature does not cover it", f.Name)
		}
	}
	return nil
}
