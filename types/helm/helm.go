// Package helm is the helm entry kind (0.0.1): a Helm chart's provenance
// file (helm package --sign) and the PGP key that signed it. The
// provenance is a clear-signed message: the chart's Chart.yaml, a YAML
// document end ("..."), and the files' sums; the leaf keeps the chart's
// digest from those sums, the signature and the key.
package helm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"sigs.k8s.io/yaml"

	"github.com/signet-dev/signet/types"
	"github.com/signet-dev/signet/types/pgp"
)

// Name is the kind's name on the wire.
const Name = "helm"

// Bounds on a provenance, read before its signature is checked: YAML
// decoding costs about 100 times the bytes in memory (7 MiB of sums took
// 3-5 s and 1 GiB). A chart's provenance is its Chart.yaml and one sum.
const (
	MaxProvenance = 1 << 20
	MaxSums       = 64 << 10
)

// Kind returns the helm kind.
func Kind() types.Kind {
	return types.Kind{Name: Name, DefaultVersion: "0.0.1", Versions: map[string]types.Parser{"0.0.1": parseV001}}
}

// specV001 is Rekor's helm 0.0.1 schema, proposed and canonical.
type specV001 struct {
	Chart     *chartV001 `json:"chart"`
	PublicKey *keyV001   `json:"publicKey"`
}

type chartV001 struct {
	Hash       *hashV001       `json:"hash,omitempty"`
	Provenance *provenanceV001 `json:"provenance"`
}

type hashV001 struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"value"`
}

type provenanceV001 struct {
	Content   []byte         `json:"content,omitempty"`
	Signature *signatureV001 `json:"signature,omitempty"`
}

type signatureV001 struct {
	Content []byte `json:"content"`
}

type keyV001 struct {
	Content []byte `json:"content"`
}

// sums is the provenance's second document (Helm's SumCollection).
type sums struct {
	Files  map[string]string `json:"files"`
	Images map[string]string `json:"images,omitempty"`
}

func parseV001(_ context.Context, raw json.RawMessage) (types.Entry, error) {
	var s specV001
	if err := types.DecodeStrict(raw, &s); err != nil {
		return nil, types.Invalid("helm spec: %v", err)
	}
	switch {
	case s.PublicKey == nil || len(s.PublicKey.Content) == 0:
		return nil, types.Invalid("helm: 'content' must be specified for publicKey (the PGP key that signed the chart)")
	case s.Chart == nil || s.Chart.Provenance == nil || len(s.Chart.Provenance.Content) == 0:
		return nil, types.Invalid("helm: 'content' must be specified for chart.provenance (the .prov file)")
	}
	if len(s.Chart.Provenance.Content) > MaxProvenance {
		return nil, types.Invalid("helm: the provenance is %d bytes, more than %d", len(s.Chart.Provenance.Content), MaxProvenance)
	}
	key, err := pgp.ReadKey(s.PublicKey.Content)
	if err != nil {
		return nil, types.Invalid("helm: publicKey: %v", err)
	}
	block, _ := clearsign.Decode(s.Chart.Provenance.Content)
	if block == nil {
		return nil, types.Invalid("helm: the provenance is not a PGP clear-signed message")
	}
	if block.ArmoredSignature == nil {
		return nil, types.Invalid("helm: the provenance has no armored signature")
	}
	algorithm, digest, err := chartDigest(block.Plaintext)
	if err != nil {
		return nil, types.Invalid("helm: %v", err)
	}
	sig, err := io.ReadAll(block.ArmoredSignature.Body)
	if err != nil {
		return nil, types.Invalid("helm: the provenance's signature: %v", err)
	}
	if _, _, err := pgp.SignaturePacket(sig); err != nil {
		return nil, types.Invalid("helm: the provenance's signature: %v", err)
	}
	if err := key.Verify(bytes.NewReader(block.Bytes), sig); err != nil {
		return nil, types.Invalid("helm: the provenance's signature does not verify with publicKey: %v", err)
	}
	// Rekor stores the signature armored anew, without the clear-signed
	// block's headers.
	canonSig, err := pgp.Armor(pgp.SignatureType, sig)
	if err != nil {
		return nil, err
	}
	leaf, err := types.Canonicalize(Name, "0.0.1", specV001{
		Chart: &chartV001{
			Hash:       &hashV001{Algorithm: algorithm, Value: digest},
			Provenance: &provenanceV001{Signature: &signatureV001{Content: canonSig}},
		},
		PublicKey: &keyV001{Content: key.Armored},
	})
	if err != nil {
		return nil, err
	}
	keyHash := sha256.Sum256(key.Armored)
	keys := append([]string{hex.EncodeToString(keyHash[:])}, key.Emails...)
	keys = append(keys, strings.ToLower(algorithm+":"+digest))
	return &types.Verified{Leaf: leaf, Keys: keys}, nil
}

// chartDigest reads the chart's digest from the provenance's sums. A
// provenance names one file, the chart archive; Rekor takes whichever
// entry Go's map order gives first, so several are refused here rather
// than logged under a digest chosen at random.
func chartDigest(plaintext []byte) (algorithm, digest string, err error) {
	parts := bytes.Split(plaintext, []byte("\n...\n"))
	if len(parts) < 2 {
		return "", "", errors.New(`the provenance has no sums: Chart.yaml, "...", then files`)
	}
	if len(parts[1]) > MaxSums {
		return "", "", fmt.Errorf("the provenance's sums are %d bytes, more than %d", len(parts[1]), MaxSums)
	}
	var sc sums
	if err := yaml.Unmarshal(parts[1], &sc); err != nil {
		return "", "", fmt.Errorf("the provenance's sums: %w", err)
	}
	switch len(sc.Files) {
	case 0:
		return "", "", errors.New("the provenance lists no files")
	case 1:
	default:
		return "", "", fmt.Errorf("the provenance lists %d files; a chart's lists one, its archive", len(sc.Files))
	}
	for _, v := range sc.Files {
		alg, d, ok := strings.Cut(v, ":")
		if !ok || strings.Contains(d, ":") {
			return "", "", fmt.Errorf("the provenance's sum %q is not <algorithm>:<hex>", v)
		}
		return alg, d, nil
	}
	return "", "", errors.New("unreachable")
}
