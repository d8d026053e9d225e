package main

import (
	"bytes"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/spf13/cobra"
)

// What cosign v3 writes for an image signature (cosign:pkg/oci/remote/
// write.go WriteAttestationNewBundleFormat, cmd/cosign/cli/sign/sign.go):
// a DSSE in-toto statement whose subject is the image digest, with this
// predicate type and an empty predicate, in a Sigstore bundle pushed as an
// OCI 1.1 referrer of the image.
const (
	cosignSignPredicateType = "https://sigstore.dev/cosign/sign/v1"
	inTotoStatementV1       = "https://in-toto.io/Statement/v1"
	bundleMediaType         = "application/vnd.dev.sigstore.bundle.v0.3+json"
	emptyMediaType          = "application/vnd.oci.empty.v1+json"
	// maxReferrers bounds the referrers of one image read by verify, and
	// maxReferrerBytes the bytes of the bundles among them.
	maxReferrers     = 256
	maxReferrerBytes = 64 << 20
)

// registryFlags are how signet reaches registries: the Docker config and
// credential helpers (authn.DefaultKeychain), plain HTTP or unverified TLS
// only when asked.
type registryFlags struct {
	allowHTTP, allowInsecure bool
}

func (f *registryFlags) add(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.allowHTTP, "allow-http-registry", false, "reach the registry over plain HTTP (local registries)")
	cmd.Flags().BoolVar(&f.allowInsecure, "allow-insecure-registry", false, "reach the registry over HTTP or TLS without verifying its certificate")
}

// nameOptions are how references are parsed: plain HTTP allowed when asked.
func (f *registryFlags) nameOptions() []name.Option {
	if f.allowHTTP || f.allowInsecure {
		return []name.Option{name.Insecure}
	}
	return nil
}

func (f *registryFlags) parse(ref string) (name.Reference, error) {
	r, err := name.ParseReference(ref, f.nameOptions()...)
	if err != nil {
		return nil, fmt.Errorf("%q is not an image reference (registry/repository:tag or @sha256:...): %w", ref, err)
	}
	return r, nil
}

func (f *registryFlags) options(cmd *cobra.Command) []remote.Option {
	opts := []remote.Option{remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithContext(cmd.Context())}
	if f.allowInsecure {
		t := remote.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for with --allow-insecure-registry
		opts = append(opts, remote.WithTransport(t))
	}
	return opts
}

// lookup parses an image reference and finds the manifest it names now; a
// tag is reported on stderr, since what gets signed or verified is the
// digest.
func (f *registryFlags) lookup(cmd *cobra.Command, image string) (name.Digest, *v1.Descriptor, error) {
	ref, err := f.parse(image)
	if err != nil {
		return name.Digest{}, nil, err
	}
	desc, err := remote.Head(ref, f.options(cmd)...)
	if err != nil {
		return name.Digest{}, nil, fmt.Errorf("looking up %s: %w", ref, err)
	}
	d := ref.Context().Digest(desc.Digest.String())
	if _, isTag := ref.(name.Tag); isTag {
		fmt.Fprintf(cmd.ErrOrStderr(), "signet: %s is a tag; using the digest it points to now, %s\n", ref, d)
	}
	return d, desc, nil
}

// parseAnnotations reads -a key=value flags.
func parseAnnotations(in []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range in {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("annotation %q is not key=value", kv)
		}
		out[k] = v
	}
	return out, nil
}

// imageStatement is the statement cosign sign makes for an image digest:
// the digest as the subject, the annotations on the subject.
func imageStatement(d name.Digest, annotations map[string]string) ([]byte, error) {
	alg, hexDigest, _ := strings.Cut(d.DigestStr(), ":")
	subject := map[string]any{"digest": map[string]string{alg: hexDigest}}
	if len(annotations) > 0 {
		subject["annotations"] = annotations
	}
	return json.Marshal(map[string]any{
		"_type": inTotoStatementV1, "subject": []any{subject},
		"predicateType": cosignSignPredicateType, "predicate": map[string]any{},
	})
}

// pushReferrer stores a bundle as an OCI 1.1 referrer of subject, as cosign
// does; go-containerregistry keeps the referrers tag (sha256-<hex>) up to
// date when the registry has no referrers API.
func (f *registryFlags) pushReferrer(cmd *cobra.Command, subject name.Digest, desc *v1.Descriptor, bundleJSON []byte, predicateType string) (name.Digest, error) {
	opts := f.options(cmd)
	repo := subject.Context()
	config := static.NewLayer([]byte("{}"), emptyMediaType)
	layer := static.NewLayer(bundleJSON, bundleMediaType)
	for _, l := range []v1.Layer{config, layer} {
		if err := remote.WriteLayer(repo, l, opts...); err != nil {
			return name.Digest{}, fmt.Errorf("uploading to %s: %w", repo, err)
		}
	}
	cd, _ := config.Digest()
	ld, _ := layer.Digest()
	manifest := struct {
		v1.Manifest
		ArtifactType string `json:"artifactType"`
	}{v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: emptyMediaType, ArtifactType: bundleMediaType, Digest: cd, Size: 2},
		Layers:        []v1.Descriptor{{MediaType: bundleMediaType, Digest: ld, Size: int64(len(bundleJSON))}},
		Subject:       &v1.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size},
		Annotations: map[string]string{
			"org.opencontainers.image.created":  time.Now().UTC().Format(time.RFC3339),
			"dev.sigstore.bundle.content":       "dsse-envelope",
			"dev.sigstore.bundle.predicateType": predicateType,
		},
	}, bundleMediaType}
	raw, err := json.Marshal(manifest)
	if err != nil {
		return name.Digest{}, err
	}
	h, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return name.Digest{}, err
	}
	target := repo.Digest(h.String())
	if err := remote.Put(target, rawManifest{raw: raw, mediaType: types.OCIManifestSchema1}, opts...); err != nil {
		return name.Digest{}, fmt.Errorf("pushing the signature to %s: %w", repo, err)
	}
	return target, nil
}

// registryFailure tells a registry or network failure (exit 1) from an
// answer about the content (a referrer that is not a signature).
func registryFailure(err error) bool {
	var terr *transport.Error
	if errors.As(err, &terr) {
		return terr.StatusCode != http.StatusNotFound
	}
	var ue *url.Error
	return errors.As(err, &ue)
}

// rawManifest is a manifest's bytes as go-containerregistry's Taggable.
type rawManifest struct {
	raw       []byte
	mediaType types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mediaType, nil }

// bundlesOf reads the Sigstore bundles stored as referrers of d (through
// the referrers API, else the referrers tag), skipping other referrers.
func (f *registryFlags) bundlesOf(cmd *cobra.Command, d name.Digest) ([]*bundle.Bundle, error) {
	opts := f.options(cmd)
	im, err := f.referrersOf(cmd, d, maxReferrers)
	if err != nil {
		return nil, err
	}
	var out []*bundle.Bundle
	var total int64
	for _, m := range im.Manifests {
		// Not filtered on artifactType: registries disagree on it (go-
		// containerregistry's reports the config's media type); the one
		// bundle layer is what counts, as for cosign. A referrer that is
		// not a bundle is skipped; a registry that fails is an error
		// (exit 1), not "no signature".
		img, err := remote.Image(d.Context().Digest(m.Digest.String()), opts...)
		if err != nil {
			if registryFailure(err) {
				return nil, fmt.Errorf("reading the referrer %s of %s: %w", m.Digest, d, err)
			}
			continue
		}
		mf, err := img.Manifest()
		if err != nil || len(mf.Layers) != 1 || !strings.HasPrefix(string(mf.Layers[0].MediaType), "application/vnd.dev.sigstore.bundle") {
			continue
		}
		layer := mf.Layers[0]
		if layer.Size > maxBundleBytes {
			continue
		}
		if total += layer.Size; total > maxReferrerBytes {
			return nil, fmt.Errorf("the bundles attached to %s hold more than %d bytes in all; signet reads no more", d, maxReferrerBytes)
		}
		l, err := img.LayerByDigest(layer.Digest)
		if err != nil {
			continue
		}
		rc, err := l.Compressed()
		if err != nil {
			return nil, fmt.Errorf("fetching the bundle %s of %s: %w", layer.Digest, d, err)
		}
		data, err := io.ReadAll(io.LimitReader(rc, maxBundleBytes+1))
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("fetching the bundle %s of %s: %w", layer.Digest, d, err)
		}
		b, err := parseBundle(data)
		if err != nil {
			continue
		}
		out = append(out, b)
	}
	return out, nil
}

// referrersOf lists the referrers of d (the registry's referrers API, else
// the referrers tag), at most limit.
func (f *registryFlags) referrersOf(cmd *cobra.Command, d name.Digest, limit int) (*v1.IndexManifest, error) {
	idx, err := remote.Referrers(d, f.options(cmd)...)
	if err != nil {
		return nil, fmt.Errorf("listing the referrers of %s: %w", d, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("listing the referrers of %s: %w", d, err)
	}
	if len(im.Manifests) > limit {
		return nil, fmt.Errorf("%s has %d referrers, more than the %d signet reads", d, len(im.Manifests), limit)
	}
	return im, nil
}

func newSignImageCommand() *cobra.Command {
	var f signFlags
	var reg registryFlags
	var annotations []string
	var recursive, legacyTags bool
	cmd := &cobra.Command{
		Use:   "sign IMAGE",
		Short: "Sign a container image into its registry, keyless or with a key",
		Long: `sign signs the image's manifest digest (a tag is resolved, and the digest is
what gets signed) as cosign v3 does: an in-toto statement about the digest
(with the -a annotations), signed as DSSE keyless or with --key, logged and
timestamped by the pinned instance, stored as a Sigstore bundle that is an
OCI 1.1 referrer of the image (with the referrers tag sha256-<hex> where the
registry has no referrers API). cosign verify reads it, and signet verify
reads what cosign sign writes.

Registry credentials come from the Docker config and its credential helpers.`,
		Example: `  signet sign registry.example.com/app@sha256:3f1c... --identity-token "$TOKEN" --yes
  SIGNET_PASSWORD=... signet sign registry.example.com/app:v1 --key release.key -a release=v1
  signet sign registry.example.com/app:v1 --recursive --identity-token "$TOKEN"   # the index and each platform
  signet verify registry.example.com/app:v1 --certificate-identity alice@example.com \
    --certificate-oidc-issuer https://issuer.example.com`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ann, err := parseAnnotations(annotations)
			if err != nil {
				return err
			}
			d, desc, err := reg.lookup(cmd, args[0])
			if err != nil {
				return err
			}
			targets := []*v1.Descriptor{desc}
			if recursive && desc.MediaType.IsIndex() {
				children, err := reg.children(cmd, d)
				if err != nil {
					return err
				}
				targets = append(targets, children...)
			}
			if len(targets) > 1 && f.bundlePath != "" {
				return fmt.Errorf("--bundle keeps one bundle, and --recursive makes %d: leave --bundle out (every bundle is stored in the registry)", len(targets))
			}
			for _, t := range targets {
				td := d.Context().Digest(t.Digest.String())
				if legacyTags {
					if err := signLegacy(cmd, &f, &reg, td, ann); err != nil {
						return err
					}
					continue
				}
				st, err := imageStatement(td, ann)
				if err != nil {
					return err
				}
				b, err := f.sign(cmd, td.String(), &sign.DSSEData{Data: st, PayloadType: inTotoPayloadType})
				if err != nil {
					return err
				}
				bundleJSON, err := b.MarshalJSON()
				if err != nil {
					return err
				}
				if progressOn(cmd) {
					fmt.Fprintf(cmd.ErrOrStderr(), "Pushing the signature to %s\n", td.Context())
				}
				if _, err := reg.pushReferrer(cmd, td, t, bundleJSON, cosignSignPredicateType); err != nil {
					return err
				}
				if err := reportSigned(cmd, b, td.String(), f.bundlePath); err != nil {
					return err
				}
			}
			return nil
		},
	}
	f.addOptionalBundle(cmd)
	reg.add(cmd)
	cmd.Flags().StringArrayVarP(&annotations, "annotations", "a", nil, "key=value annotation to sign with the image (repeatable)")
	cmd.Flags().BoolVar(&recursive, "recursive", false, "for a multi-platform index, also sign each platform's manifest")
	cmd.Flags().BoolVar(&legacyTags, "legacy-tags", false, "write cosign's legacy signature (a simple-signing payload in the sha256-<hex>.sig tag, read by policy engines) instead of a bundle referrer")
	return cmd
}

// children are the manifests an image index lists (one level, as cosign
// --recursive signs them).
func (f *registryFlags) children(cmd *cobra.Command, d name.Digest) ([]*v1.Descriptor, error) {
	idx, err := remote.Index(d, f.options(cmd)...)
	if err != nil {
		return nil, fmt.Errorf("reading the index %s: %w", d, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	out := make([]*v1.Descriptor, len(im.Manifests))
	for i := range im.Manifests {
		out[i] = &im.Manifests[i]
	}
	return out, nil
}

func newVerifyImageCommand() *cobra.Command {
	var f verifyFlags
	var reg registryFlags
	var annotations []string
	var policyPath string
	cmd := &cobra.Command{
		Use:   "verify IMAGE (--certificate-identity ID --certificate-oidc-issuer URL | --key PUB | --policy FILE)",
		Short: "Verify the signatures of a container image in its registry",
		Long: `verify reads the Sigstore bundles stored as referrers of the image (as cosign v3
and signet sign write them) and the signatures in cosign's legacy
sha256-<digest>.sig tag, and checks each with sigstore-go: the signer
(identity and issuer, or --key), the log entry, the time of signing, and that
it signs this image's digest with cosign's signature predicate and the -a
annotations given. It succeeds when at least one signature verifies.

With --policy FILE, whose signatures to expect comes from Sigstore
policy-controller ClusterImagePolicy documents instead (the same YAML the
admission controller reads), for each IMAGE given: every policy whose
images globs match an image must be met (mode warn: reported on stderr,
not enforced), a policy is met when one of its authorities is (a key, or
keyless identities, with the attestations it lists and their Rego or CUE
policies) and its spec.policy, if any, allows what verified (say, two
signatures). An image no policy matches is refused. Fields that need a
cluster (kms, secretRef, configMapRef, remote, ca-cert) are refused, not ignored.

Exit status 0: verified; 3: no signature verifies, or the policy is not
met (each reason listed); 1: could not run (registry, network, a bad policy).`,
		Example: `  signet verify registry.example.com/app:v1 --certificate-identity alice@example.com \
    --certificate-oidc-issuer https://issuer.example.com
  signet verify registry.example.com/app@sha256:3f1c... --key release.pub -a release=v1
  signet verify --policy release-policy.yaml registry.example.com/app:v1 registry.example.com/api:v1`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if policyPath != "" {
				if f.keyPath != "" || f.identity != "" || f.identityRegexp != "" || f.issuer != "" || f.issuerRegexp != "" || len(annotations) > 0 {
					return errors.New("--policy says whose signatures to expect: drop --key, --certificate-* and -a")
				}
				return verifyWithPolicies(cmd, &f, &reg, policyPath, args)
			}
			if len(args) != 1 {
				return fmt.Errorf("verify checks one image against flags (%d given); with --policy FILE, several", len(args))
			}
			want, err := parseAnnotations(annotations)
			if err != nil {
				return err
			}
			return verifyImageBundles(cmd, &f, &reg, args[0], func(res *verify.VerificationResult) error {
				return checkImageStatement(res, want)
			}, &legacyScheme{suffix: ".sig", read: reg.legacySignaturesOf, signsPayload: true,
				check: func(l legacySignature, _ *verify.VerificationResult, d name.Digest) error {
					return checkSimpleSigning(l.payload, d, want)
				}})
		},
	}
	f.addPolicy(cmd)
	reg.add(cmd)
	cmd.Flags().StringArrayVarP(&annotations, "annotations", "a", nil, "key=value annotation the signature must carry (repeatable)")
	cmd.Flags().StringVar(&policyPath, "policy", "", "ClusterImagePolicy YAML (policy-controller's) saying what each image needs, instead of the signer flags")
	return cmd
}

// verifyImageBundles verifies the bundles among the referrers of image
// against its digest, each then checked by check, and reports those that
// pass; none passing is a *verifyError listing each one's reason.
//
// With legacy, the layers of that legacy tag of cosign's are verified too.
func verifyImageBundles(cmd *cobra.Command, f *verifyFlags, reg *registryFlags, image string, check func(*verify.VerificationResult) error, legacy *legacyScheme) error {
	vr, err := f.prepare(cmd)
	if err != nil {
		return err
	}
	d, _, err := reg.lookup(cmd, image)
	if err != nil {
		return err
	}
	signed, err := reg.readSigned(cmd, d, d, legacy)
	if err != nil {
		return err
	}
	if err := signed.none(); err != nil {
		return err
	}
	ok, reasons := signed.verifyWith(vr, check)
	if len(ok) == 0 {
		return &verifyError{fmt.Errorf("nothing attached to %s verifies:\n  %s", d, strings.Join(reasons, "\n  "))}
	}
	var lines []string
	var verified []map[string]any
	for _, s := range ok {
		v, line := describeVerified(s.res, s.b)
		if s.legacy {
			v["legacy"] = true
			line += " (legacy " + legacy.suffix + " tag)"
		} else if s.res.Statement != nil {
			v["statement"] = s.res.Statement
		}
		verified = append(verified, v)
		lines = append(lines, line)
	}
	return report(cmd, map[string]any{"image": d.String(), "verified": verified},
		fmt.Sprintf("Verified OK: %s\n  %s", d, strings.Join(lines, "\n  ")))
}

// signedContent is what verify reads for one image: the bundles among its
// referrers and, with a legacy scheme, that legacy tag's layers.
type signedContent struct {
	d       name.Digest // what the signatures must be about
	bundles []*bundle.Bundle
	legacy  []legacySignature
	scheme  *legacyScheme
}

// readSigned reads what is attached to at (d itself, or d's digest in the
// repository a policy says signatures are kept in) for d.
func (f *registryFlags) readSigned(cmd *cobra.Command, d, at name.Digest, legacy *legacyScheme) (*signedContent, error) {
	bundles, err := f.bundlesOf(cmd, at)
	if err != nil {
		return nil, err
	}
	s := &signedContent{d: d, bundles: bundles, scheme: legacy}
	if legacy != nil {
		if s.legacy, err = legacy.read(cmd, at); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// none is the *verifyError for an image with nothing attached, else nil.
func (s *signedContent) none() error {
	if len(s.bundles)+len(s.legacy) > 0 {
		return nil
	}
	if s.scheme == nil {
		return &verifyError{fmt.Errorf("%s has no Sigstore signature (no bundle among its referrers)", s.d)}
	}
	return &verifyError{fmt.Errorf("%s has no Sigstore signature (no bundle among its referrers, nothing in %s)", s.d, legacyTag(s.d, s.scheme.suffix).TagStr())}
}

// verifiedSig is one signature (or attestation) that verified.
type verifiedSig struct {
	res    *verify.VerificationResult
	b      *bundle.Bundle
	legacy bool
}

// verifyWith verifies each bundle and legacy layer with vr against the
// digest, then check (or the scheme's check); it returns those that pass,
// and why each other one did not.
func (s *signedContent) verifyWith(vr *verifier, check func(*verify.VerificationResult) error) ([]verifiedSig, []string) {
	digest, _ := hex.DecodeString(s.d.DigestStr()[len("sha256:"):])
	var ok []verifiedSig
	var reasons []string
	for i, b := range s.bundles {
		res, err := vr.check(b, verify.WithArtifactDigest("sha256", digest))
		if err == nil {
			err = check(res)
		}
		if err != nil {
			reasons = append(reasons, fmt.Sprintf("bundle %d: %v", i+1, err))
			continue
		}
		ok = append(ok, verifiedSig{res: res, b: b})
	}
	for i, l := range s.legacy {
		artifact := verify.WithArtifactDigest("sha256", digest)
		if s.scheme.signsPayload {
			artifact = verify.WithArtifact(bytes.NewReader(l.payload))
		}
		res, err := vr.check(l.bundle, artifact)
		if err == nil {
			err = s.scheme.check(l, res, s.d)
		}
		if err != nil {
			reasons = append(reasons, fmt.Sprintf("legacy signature %d: %v", i+1, err))
			continue
		}
		ok = append(ok, verifiedSig{res: res, b: l.bundle, legacy: true})
	}
	return ok, reasons
}

// legacyScheme is one of cosign's legacy tags as verify reads it.
type legacyScheme struct {
	suffix string // ".sig" or ".att"
	read   func(*cobra.Command, name.Digest) ([]legacySignature, error)
	// signsPayload: the signature is over the payload itself (.sig); else
	// it is a DSSE statement about the image digest (.att).
	signsPayload bool
	check        func(legacySignature, *verify.VerificationResult, name.Digest) error
}

// signLegacy signs d the way cosign's legacy scheme does and appends the
// signature to its .sig tag.
func signLegacy(cmd *cobra.Command, f *signFlags, reg *registryFlags, d name.Digest, ann map[string]string) error {
	payload, err := simpleSigningPayload(d, ann)
	if err != nil {
		return err
	}
	b, err := f.sign(cmd, d.String(), &sign.PlainData{Data: payload})
	if err != nil {
		return err
	}
	layerAnn, err := legacyAnnotations(b.Bundle, f.loaded.tr)
	if err != nil {
		return err
	}
	if progressOn(cmd) {
		fmt.Fprintf(cmd.ErrOrStderr(), "Pushing the signature to %s\n", legacyTag(d, ".sig"))
	}
	if err := reg.pushLegacy(cmd, legacyTag(d, ".sig"), payload, simpleSigningMediaType, layerAnn); err != nil {
		return err
	}
	return reportSigned(cmd, b, d.String()+" (legacy "+legacyTag(d, ".sig").TagStr()+")", f.bundlePath)
}

// checkImageStatement checks what the signature says besides the digest
// (which sigstore-go checked): cosign's signature predicate, and every
// wanted annotation on the subject.
func checkImageStatement(res *verify.VerificationResult, want map[string]string) error {
	if res.Statement == nil {
		return errors.New("the bundle holds no in-toto statement")
	}
	if got := res.Statement.GetPredicateType(); got != cosignSignPredicateType {
		return fmt.Errorf("it is an attestation of type %s, not a signature", got)
	}
	have := map[string]string{}
	for _, s := range res.Statement.GetSubject() {
		for k, v := range s.GetAnnotations().AsMap() {
			if sv, ok := v.(string); ok {
				have[k] = sv
			}
		}
	}
	var missing []string
	for k, v := range want {
		if have[k] != v {
			missing = append(missing, fmt.Sprintf("%s=%s", k, v))
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("it does not carry the annotations %s", strings.Join(missing, ", "))
	}
	return nil
}
