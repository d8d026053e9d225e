package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/spf13/cobra"
)

// cosign's legacy tag scheme (cosign:specs/SIGNATURE_SPEC.md,
// pkg/oci/static): the signatures of sha256:<hex> are the layers of the
// image tagged sha256-<hex>.sig, each a simple-signing payload with the
// signature, certificate, chain, log entry (SET) and timestamp in its
// annotations. Policy engines (Kyverno, policy-controller, Connaisseur)
// still read these.
const (
	simpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	annSignature           = "dev.cosignproject.cosign/signature"
	annCertificate         = "dev.sigstore.cosign/certificate"
	annChain               = "dev.sigstore.cosign/chain"
	annBundle              = "dev.sigstore.cosign/bundle"
	annRFC3161             = "dev.sigstore.cosign/rfc3161timestamp"
	// maxLegacyLayers bounds the signatures read from one .sig image.
	maxLegacyLayers = 256
)

// simpleSigning is the payload cosign signs for an image in the legacy
// scheme (sigstore:pkg/signature/payload).
type simpleSigning struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
	Optional map[string]any `json:"optional"`
}

func simpleSigningPayload(d name.Digest, annotations map[string]string) ([]byte, error) {
	var p simpleSigning
	p.Critical.Identity.DockerReference = d.Context().Name()
	p.Critical.Image.DockerManifestDigest = d.DigestStr()
	p.Critical.Type = "cosign container image signature"
	if len(annotations) > 0 {
		p.Optional = map[string]any{}
		for k, v := range annotations {
			p.Optional[k] = v
		}
	}
	return json.Marshal(p)
}

// legacyTag is where the legacy signatures (suffix .sig) or attestations
// (.att) of d live.
func legacyTag(d name.Digest, suffix string) name.Tag {
	return d.Context().Tag(strings.Replace(d.DigestStr(), ":", "-", 1) + suffix)
}

// dsseMediaType is the layer media type of a legacy attestation, whose
// blob is the DSSE envelope.
const dsseMediaType = "application/vnd.dsse.envelope.v1+json"

// envelopeJSON is a DSSE envelope as cosign stores it in a .att layer.
type envelopeJSON struct {
	PayloadType string `json:"payloadType"`
	Payload     []byte `json:"payload"`
	Signatures  []struct {
		KeyID string `json:"keyid"`
		Sig   []byte `json:"sig"`
	} `json:"signatures"`
}

// rekorBundle is cosign's dev.sigstore.cosign/bundle annotation: the log
// entry and its SET, no inclusion proof.
type rekorBundle struct {
	SignedEntryTimestamp []byte
	Payload              struct {
		Body           string `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogIndex       int64  `json:"logIndex"`
		LogID          string `json:"logID"`
	}
}

// legacyAnnotations are the layer annotations cosign writes for a signed
// payload (a simple-signing payload, or a DSSE envelope whose signature is
// inside it, so the signature annotation is empty), from the bundle
// sigstore-go made for it.
func legacyAnnotations(pb *protobundle.Bundle, tr *root.TrustedRoot) (map[string]string, error) {
	ann := map[string]string{annSignature: ""}
	switch {
	case pb.GetMessageSignature() != nil:
		ann[annSignature] = base64.StdEncoding.EncodeToString(pb.GetMessageSignature().GetSignature())
	case pb.GetDsseEnvelope() == nil:
		return nil, errors.New("the bundle holds neither a message signature nor a DSSE envelope")
	}
	vm := pb.GetVerificationMaterial()
	if c := vm.GetCertificate(); c != nil {
		leaf, err := x509.ParseCertificate(c.GetRawBytes())
		if err != nil {
			return nil, err
		}
		ann[annCertificate] = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}))
		ann[annChain] = string(caChainPEM(leaf, tr))
	}
	if entries := vm.GetTlogEntries(); len(entries) > 0 {
		e := entries[0]
		var rb rekorBundle
		rb.SignedEntryTimestamp = e.GetInclusionPromise().GetSignedEntryTimestamp()
		rb.Payload.Body = base64.StdEncoding.EncodeToString(e.GetCanonicalizedBody())
		rb.Payload.IntegratedTime = e.GetIntegratedTime()
		rb.Payload.LogIndex = e.GetLogIndex()
		rb.Payload.LogID = hex.EncodeToString(e.GetLogId().GetKeyId())
		b, err := json.Marshal(rb)
		if err != nil {
			return nil, err
		}
		ann[annBundle] = string(b)
	}
	if ts := vm.GetTimestampVerificationData().GetRfc3161Timestamps(); len(ts) > 0 {
		b, err := json.Marshal(map[string][]byte{"SignedRFC3161Timestamp": ts[0].GetSignedTimestamp()})
		if err != nil {
			return nil, err
		}
		ann[annRFC3161] = string(b)
	}
	return ann, nil
}

// caChainPEM is the chain above leaf from the trusted root: the CA that
// issued it, its intermediates then its root.
func caChainPEM(leaf *x509.Certificate, tr *root.TrustedRoot) []byte {
	var out bytes.Buffer
	for _, ca := range tr.FulcioCertificateAuthorities() {
		f, ok := ca.(*root.FulcioCertificateAuthority)
		if !ok {
			continue
		}
		chain := append(append([]*x509.Certificate{}, f.Intermediates...), f.Root)
		if len(chain) == 0 || chain[0] == nil || leaf.CheckSignatureFrom(chain[0]) != nil {
			continue
		}
		for _, c := range chain {
			pem.Encode(&out, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}) //nolint:errcheck
		}
		break
	}
	return out.Bytes()
}

// pushLegacy appends a layer to the image at tag (d's .sig or .att), as
// cosign does.
func (f *registryFlags) pushLegacy(cmd *cobra.Command, tag name.Tag, blob []byte, mediaType types.MediaType, ann map[string]string) error {
	opts := f.options(cmd)
	base := emptyOCIImage()
	existing, err := remote.Image(tag, opts...)
	switch {
	case err == nil:
		base = existing
	case notFound(err):
	default:
		return fmt.Errorf("reading %s: %w", tag, err)
	}
	img, err := mutate.Append(base, mutate.Addendum{Layer: static.NewLayer(blob, mediaType), Annotations: ann})
	if err != nil {
		return err
	}
	if err := remote.Write(tag, img, opts...); err != nil {
		return fmt.Errorf("pushing %s: %w", tag, err)
	}
	return nil
}

// emptyOCIImage is an OCI image with no layers and an empty config, the
// base of the images signet pushes (legacy tags, uploaded files).
func emptyOCIImage() v1.Image {
	return mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
}

// legacySignature is one layer of a .sig or .att image as a bundle
// sigstore-go can verify (v0.1: a certificate chain, the log entry with its
// SET) and the payload it signs (the simple-signing payload; for an
// attestation, the in-toto statement inside the envelope).
type legacySignature struct {
	bundle  *bundle.Bundle
	payload []byte
}

// legacyLayers reads the layers of media type mediaType in the image at
// tag, with their annotations; no image is no layers.
func (f *registryFlags) legacyLayers(cmd *cobra.Command, tag name.Tag, mediaType types.MediaType) ([][]byte, []map[string]string, error) {
	img, err := remote.Image(tag, f.options(cmd)...)
	if notFound(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", tag, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, nil, err
	}
	if len(m.Layers) > maxLegacyLayers {
		return nil, nil, fmt.Errorf("%s has %d layers, more than the %d signet reads", tag, len(m.Layers), maxLegacyLayers)
	}
	var blobs [][]byte
	var anns []map[string]string
	for _, desc := range m.Layers {
		if desc.MediaType != mediaType || desc.Size > maxBundleBytes {
			continue
		}
		l, err := img.LayerByDigest(desc.Digest)
		if err != nil {
			continue
		}
		rc, err := l.Compressed()
		if err != nil {
			continue
		}
		blob, err := io.ReadAll(io.LimitReader(rc, maxBundleBytes))
		rc.Close()
		if err != nil {
			continue
		}
		blobs = append(blobs, blob)
		anns = append(anns, desc.Annotations)
	}
	return blobs, anns, nil
}

// legacySignaturesOf reads d's .sig image.
func (f *registryFlags) legacySignaturesOf(cmd *cobra.Command, d name.Digest) ([]legacySignature, error) {
	blobs, anns, err := f.legacyLayers(cmd, legacyTag(d, ".sig"), simpleSigningMediaType)
	if err != nil {
		return nil, err
	}
	var out []legacySignature
	for i, payload := range blobs {
		if b, err := legacyBundle(payload, nil, anns[i]); err == nil {
			out = append(out, legacySignature{bundle: b, payload: payload})
		}
	}
	return out, nil
}

// legacyAttestationsOf reads d's .att image.
func (f *registryFlags) legacyAttestationsOf(cmd *cobra.Command, d name.Digest) ([]legacySignature, error) {
	blobs, anns, err := f.legacyLayers(cmd, legacyTag(d, ".att"), dsseMediaType)
	if err != nil {
		return nil, err
	}
	var out []legacySignature
	for i, blob := range blobs {
		var env envelopeJSON
		if err := json.Unmarshal(blob, &env); err != nil {
			continue
		}
		if b, err := legacyBundle(nil, &env, anns[i]); err == nil {
			out = append(out, legacySignature{bundle: b, payload: env.Payload})
		}
	}
	return out, nil
}

// legacyBundle turns a legacy layer into a v0.1 bundle: a signed payload
// (signature in the annotations) or, for an attestation, a DSSE envelope.
func legacyBundle(payload []byte, env *envelopeJSON, ann map[string]string) (*bundle.Bundle, error) {
	pb := &protobundle.Bundle{MediaType: "application/vnd.dev.sigstore.bundle+json;version=0.1"}
	if env != nil {
		if len(env.Signatures) == 0 {
			return nil, errors.New("the envelope has no signature")
		}
		e := &protodsse.Envelope{Payload: env.Payload, PayloadType: env.PayloadType}
		for _, s := range env.Signatures {
			e.Signatures = append(e.Signatures, &protodsse.Signature{Sig: s.Sig, Keyid: s.KeyID})
		}
		pb.Content = &protobundle.Bundle_DsseEnvelope{DsseEnvelope: e}
	} else {
		sig, err := base64.StdEncoding.DecodeString(ann[annSignature])
		if err != nil || len(sig) == 0 {
			return nil, errors.New("no signature annotation")
		}
		digest := sha256.Sum256(payload)
		pb.Content = &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: digest[:]},
			Signature:     sig,
		}}
	}
	vm := &protobundle.VerificationMaterial{}
	pb.VerificationMaterial = vm
	if certPEM := ann[annCertificate]; certPEM != "" {
		var chain protocommon.X509CertificateChain
		for rest := []byte(certPEM + "\n" + ann[annChain]); ; {
			var block *pem.Block
			block, rest = pem.Decode(rest)
			if block == nil {
				break
			}
			chain.Certificates = append(chain.Certificates, &protocommon.X509Certificate{RawBytes: block.Bytes})
		}
		if len(chain.Certificates) == 0 {
			return nil, errors.New("the certificate annotation holds no certificate")
		}
		vm.Content = &protobundle.VerificationMaterial_X509CertificateChain{X509CertificateChain: &chain}
	} else {
		vm.Content = &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{}}
	}
	if s := ann[annBundle]; s != "" {
		var rb rekorBundle
		if err := json.Unmarshal([]byte(s), &rb); err != nil {
			return nil, fmt.Errorf("the bundle annotation: %w", err)
		}
		body, err := base64.StdEncoding.DecodeString(rb.Payload.Body)
		if err != nil {
			return nil, fmt.Errorf("the bundle annotation's body: %w", err)
		}
		var kind struct {
			Kind       string `json:"kind"`
			APIVersion string `json:"apiVersion"`
		}
		if err := json.Unmarshal(body, &kind); err != nil {
			return nil, fmt.Errorf("the log entry body: %w", err)
		}
		logID, err := hex.DecodeString(rb.Payload.LogID)
		if err != nil {
			return nil, fmt.Errorf("the log ID: %w", err)
		}
		vm.TlogEntries = []*protorekor.TransparencyLogEntry{{
			LogIndex: rb.Payload.LogIndex, LogId: &protocommon.LogId{KeyId: logID},
			KindVersion:       &protorekor.KindVersion{Kind: kind.Kind, Version: kind.APIVersion},
			IntegratedTime:    rb.Payload.IntegratedTime,
			InclusionPromise:  &protorekor.InclusionPromise{SignedEntryTimestamp: rb.SignedEntryTimestamp},
			CanonicalizedBody: body,
		}}
	}
	if s := ann[annRFC3161]; s != "" {
		var ts struct{ SignedRFC3161Timestamp []byte }
		if err := json.Unmarshal([]byte(s), &ts); err == nil && len(ts.SignedRFC3161Timestamp) > 0 {
			vm.TimestampVerificationData = &protobundle.TimestampVerificationData{Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: ts.SignedRFC3161Timestamp}}}
		}
	}
	return bundle.NewBundle(pb)
}

// checkSimpleSigning checks that a verified legacy payload signs d with
// the wanted annotations.
func checkSimpleSigning(payload []byte, d name.Digest, want map[string]string) error {
	var p simpleSigning
	if err := json.Unmarshal(payload, &p); err != nil {
		return fmt.Errorf("the signed payload is not simple signing: %w", err)
	}
	if got := p.Critical.Image.DockerManifestDigest; got != d.DigestStr() {
		return fmt.Errorf("it signs %s, not %s", got, d.DigestStr())
	}
	for k, v := range want {
		if got, _ := p.Optional[k].(string); got != v {
			return fmt.Errorf("it does not carry the annotation %s=%s", k, v)
		}
	}
	return nil
}

// envelopeOf is the DSSE envelope of a bundle as a .att layer: the very
// bytes sigstore-go logged (encoding/json of the protobuf envelope), since
// cosign matches the layer's SHA-256 against the log entry's envelopeHash.
func envelopeOf(pb *protobundle.Bundle) ([]byte, error) {
	e := pb.GetDsseEnvelope()
	if e == nil {
		return nil, errors.New("the bundle holds no DSSE envelope")
	}
	return json.Marshal(e)
}
