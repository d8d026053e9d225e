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
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
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

// legacyTag is where the legacy signatures of d live.
func legacyTag(d name.Digest) name.Tag {
	return d.Context().Tag(strings.Replace(d.DigestStr(), ":", "-", 1) + ".sig")
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
// payload, from the bundle sigstore-go made for it.
func legacyAnnotations(pb *protobundle.Bundle, tr *root.TrustedRoot) (map[string]string, error) {
	ms := pb.GetMessageSignature()
	if ms == nil {
		return nil, errors.New("the bundle holds no message signature")
	}
	ann := map[string]string{annSignature: base64.StdEncoding.EncodeToString(ms.GetSignature())}
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

// pushLegacy appends a signature layer to d's .sig image, as cosign does.
func (f *registryFlags) pushLegacy(cmd *cobra.Command, d name.Digest, payload []byte, ann map[string]string) error {
	opts := f.options(cmd)
	tag := legacyTag(d)
	var base v1.Image = mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	existing, err := remote.Image(tag, opts...)
	var terr *transport.Error
	switch {
	case err == nil:
		base = existing
	case errors.As(err, &terr) && terr.StatusCode == 404:
	default:
		return fmt.Errorf("reading %s: %w", tag, err)
	}
	img, err := mutate.Append(base, mutate.Addendum{Layer: static.NewLayer(payload, simpleSigningMediaType), Annotations: ann})
	if err != nil {
		return err
	}
	if err := remote.Write(tag, img, opts...); err != nil {
		return fmt.Errorf("pushing %s: %w", tag, err)
	}
	return nil
}

// legacySignature is one layer of a .sig image, as a bundle sigstore-go can
// verify (v0.1: a certificate chain, the log entry with its SET) and the
// payload it signs.
type legacySignature struct {
	bundle  *bundle.Bundle
	payload []byte
}

// legacySignaturesOf reads d's .sig image; none is no signatures.
func (f *registryFlags) legacySignaturesOf(cmd *cobra.Command, d name.Digest) ([]legacySignature, error) {
	img, err := remote.Image(legacyTag(d), f.options(cmd)...)
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == 404 {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", legacyTag(d), err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	if len(m.Layers) > maxLegacyLayers {
		return nil, fmt.Errorf("%s has %d signatures, more than the %d signet reads", legacyTag(d), len(m.Layers), maxLegacyLayers)
	}
	var out []legacySignature
	for _, desc := range m.Layers {
		if desc.MediaType != simpleSigningMediaType || desc.Size > maxBundleBytes {
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
		payload, err := io.ReadAll(io.LimitReader(rc, maxBundleBytes))
		rc.Close()
		if err != nil {
			continue
		}
		b, err := legacyBundle(payload, desc.Annotations)
		if err != nil {
			continue
		}
		out = append(out, legacySignature{bundle: b, payload: payload})
	}
	return out, nil
}

// legacyBundle turns a legacy signature's annotations into a v0.1 bundle.
func legacyBundle(payload []byte, ann map[string]string) (*bundle.Bundle, error) {
	sig, err := base64.StdEncoding.DecodeString(ann[annSignature])
	if err != nil || len(sig) == 0 {
		return nil, errors.New("no signature annotation")
	}
	digest := sha256.Sum256(payload)
	vm := &protobundle.VerificationMaterial{}
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
	return bundle.NewBundle(&protobundle.Bundle{
		MediaType:            "application/vnd.dev.sigstore.bundle+json;version=0.1",
		VerificationMaterial: vm,
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: digest[:]},
			Signature:     sig,
		}},
	})
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
