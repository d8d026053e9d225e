package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/spf13/cobra"
)

// What is attached to an image, wherever cosign or signet put it: OCI 1.1
// referrers (cosign v3, signet) and cosign's legacy tags sha256-<hex>.sig,
// .att and .sbom. tree lists it, download prints it, copy moves it with
// the image, clean deletes it.

// Kinds of attachment, as --only and --type name them.
const (
	kindSignature   = "signature"
	kindAttestation = "attestation"
	kindSBOM        = "sbom"
	kindOther       = "other"
)

// legacySuffixes are cosign's legacy tags and the kind each holds.
var legacySuffixes = []struct{ suffix, kind string }{
	{".sig", kindSignature}, {".att", kindAttestation}, {".sbom", kindSBOM},
}

// attachment is one referrer of an image, or one layer of a legacy tag.
type attachment struct {
	Kind          string `json:"kind"`
	Digest        string `json:"digest"` // the referrer's manifest, or the legacy tag's layer
	MediaType     string `json:"mediaType"`
	ArtifactType  string `json:"artifactType,omitempty"`
	PredicateType string `json:"predicateType,omitempty"`
	Size          int64  `json:"size"`
}

// legacyTagContent is a legacy tag that exists: its manifest and layers.
type legacyTagContent struct {
	Tag    string       `json:"tag"`
	Digest string       `json:"digest"`
	Layers []attachment `json:"layers"`
}

// attachments is everything attached to one image.
type attachments struct {
	Image     string                       `json:"image"`
	Referrers []attachment                 `json:"referrers"`
	Legacy    map[string]*legacyTagContent `json:"legacyTags"` // by suffix; absent tags are not there
}

// attachedTo lists what is attached to d. It reads manifests and the
// referrers index only, never the attached blobs.
func (f *registryFlags) attachedTo(cmd *cobra.Command, d name.Digest) (*attachments, error) {
	opts := f.options(cmd)
	out := &attachments{Image: d.String(), Legacy: map[string]*legacyTagContent{}}
	idx, err := remote.Referrers(d, opts...)
	if err != nil {
		return nil, fmt.Errorf("listing the referrers of %s: %w", d, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(im.Manifests) > maxReferrers {
		return nil, fmt.Errorf("%s has %d referrers, more than the %d signet reads", d, len(im.Manifests), maxReferrers)
	}
	for _, m := range im.Manifests {
		a := attachment{Digest: m.Digest.String(), MediaType: string(m.MediaType), ArtifactType: m.ArtifactType, Size: m.Size}
		a.PredicateType = m.Annotations["dev.sigstore.bundle.predicateType"]
		if a.PredicateType == "" && strings.HasPrefix(a.ArtifactType, "application/vnd.dev.sigstore.bundle") {
			// A registry that leaves annotations out of the index: the
			// manifest has them.
			if a.PredicateType, err = f.referrerPredicate(cmd, d.Context().Digest(a.Digest)); err != nil {
				return nil, err
			}
		}
		a.Kind = referrerKind(a)
		out.Referrers = append(out.Referrers, a)
	}
	for _, l := range legacySuffixes {
		tag := legacyTag(d, l.suffix)
		img, err := remote.Image(tag, opts...)
		if notFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", tag, err)
		}
		m, err := img.Manifest()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", tag, err)
		}
		if len(m.Layers) > maxLegacyLayers {
			return nil, fmt.Errorf("%s has %d layers, more than the %d signet reads", tag, len(m.Layers), maxLegacyLayers)
		}
		dg, _ := img.Digest()
		c := &legacyTagContent{Tag: tag.String(), Digest: dg.String()}
		for _, layer := range m.Layers {
			c.Layers = append(c.Layers, attachment{Kind: l.kind, Digest: layer.Digest.String(), MediaType: string(layer.MediaType),
				PredicateType: layer.Annotations["predicateType"], Size: layer.Size})
		}
		out.Legacy[l.suffix] = c
	}
	return out, nil
}

// referrerPredicate is the predicate type in a referrer manifest's
// annotations.
func (f *registryFlags) referrerPredicate(cmd *cobra.Command, ref name.Digest) (string, error) {
	desc, err := remote.Get(ref, f.options(cmd)...)
	if err != nil {
		return "", fmt.Errorf("reading the referrer %s: %w", ref, err)
	}
	var m struct {
		Annotations map[string]string `json:"annotations"`
	}
	json.Unmarshal(desc.Manifest, &m) //nolint:errcheck // no annotations is no predicate
	return m.Annotations["dev.sigstore.bundle.predicateType"], nil
}

// referrerKind classifies a referrer: a Sigstore bundle with cosign's
// signature predicate is a signature, with another predicate an
// attestation; SPDX and CycloneDX documents are SBOMs.
func referrerKind(a attachment) string {
	switch t := strings.ToLower(a.ArtifactType); {
	case a.PredicateType == cosignSignPredicateType:
		return kindSignature
	case a.PredicateType != "":
		return kindAttestation
	case strings.Contains(t, "spdx") || strings.Contains(t, "cyclonedx"):
		return kindSBOM
	}
	return kindOther
}

func notFound(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound
}

// count is the number of attachments of the kinds wanted (all when
// kinds is empty).
func (a *attachments) count(kinds []string) int {
	n := 0
	for _, r := range a.Referrers {
		if wanted(kinds, r.Kind) {
			n++
		}
	}
	for _, l := range legacySuffixes {
		if c := a.Legacy[l.suffix]; c != nil && wanted(kinds, l.kind) {
			n += len(c.Layers)
		}
	}
	return n
}

func wanted(kinds []string, kind string) bool { return len(kinds) == 0 || slices.Contains(kinds, kind) }

// parseKinds reads --only/--type: sig, att, sbom (cosign's spellings) or
// the full words; empty or "all" is everything.
func parseKinds(in []string) ([]string, error) {
	var out []string
	for _, k := range in {
		switch strings.TrimSpace(k) {
		case "all", "":
			return nil, nil
		case "sig", "signature":
			out = append(out, kindSignature)
		case "att", "attestation":
			out = append(out, kindAttestation)
		case "sbom":
			out = append(out, kindSBOM)
		default:
			return nil, fmt.Errorf("%q is not a kind of attachment: use sig, att, sbom or all", k)
		}
	}
	return out, nil
}

func newTreeCommand() *cobra.Command {
	var reg registryFlags
	cmd := &cobra.Command{
		Use:   "tree IMAGE",
		Short: "List what is attached to an image: signatures, attestations, SBOMs",
		Long: `tree lists everything attached to an image in its registry: its OCI 1.1
referrers (signatures and attestations as cosign v3 and signet store them,
SBOMs and other artifacts), with the predicate type of each Sigstore bundle,
and cosign's legacy tags (sha256-<digest>.sig, .att, .sbom) with their
layers. Nothing is verified: use verify and verify-attestation for that.`,
		Example: `  signet tree registry.example.com/app:v1
  signet tree registry.example.com/app@sha256:3f1c... -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, _, err := reg.lookup(cmd, args[0])
			if err != nil {
				return err
			}
			a, err := reg.attachedTo(cmd, d)
			if err != nil {
				return err
			}
			format, _ := cmd.Flags().GetString("output")
			if format == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(a)
			}
			if format != "text" {
				return fmt.Errorf("--output %q: use text or json", format)
			}
			return a.printTree(cmd.OutOrStdout())
		},
	}
	reg.add(cmd)
	return cmd
}

// printTree draws a as a tree.
func (a *attachments) printTree(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", a.Image)
	type branch struct {
		title string
		items []string
	}
	var branches []branch
	refs := branch{title: fmt.Sprintf("OCI referrers: %d", len(a.Referrers))}
	for _, r := range a.Referrers {
		what := r.PredicateType
		if what == "" {
			what = r.ArtifactType
		}
		refs.items = append(refs.items, fmt.Sprintf("%-11s %s %s", r.Kind, r.Digest, what))
	}
	branches = append(branches, refs)
	for _, l := range legacySuffixes {
		c := a.Legacy[l.suffix]
		if c == nil {
			continue
		}
		br := branch{title: fmt.Sprintf("legacy tag %s: %d %s(s)", c.Tag, len(c.Layers), l.kind)}
		for _, layer := range c.Layers {
			what := layer.PredicateType
			if what == "" {
				what = layer.MediaType
			}
			br.items = append(br.items, fmt.Sprintf("%s %s", layer.Digest, what))
		}
		branches = append(branches, br)
	}
	for i, br := range branches {
		last := i == len(branches)-1
		stem, indent := "├── ", "│   "
		if last {
			stem, indent = "└── ", "    "
		}
		b.WriteString(stem + br.title + "\n")
		for j, item := range br.items {
			leaf := "├── "
			if j == len(br.items)-1 {
				leaf = "└── "
			}
			b.WriteString(indent + leaf + item + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func newTriangulateCommand() *cobra.Command {
	var reg registryFlags
	var typ string
	cmd := &cobra.Command{
		Use:   "triangulate IMAGE [--type signature|attestation|sbom|digest]",
		Short: "Print where cosign's legacy signature (or attestation, SBOM) tag of an image is",
		Long: `triangulate prints the reference of the tag where cosign's legacy scheme keeps
an image's signatures (sha256-<digest>.sig), attestations (.att) or SBOM
(.sbom), or with --type digest the image's digest reference. Signatures
stored as OCI referrers have no such tag: signet tree lists them.`,
		Example: `  signet triangulate registry.example.com/app:v1
  crane manifest $(signet triangulate registry.example.com/app:v1 --type attestation)`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			suffix, ok := map[string]string{"signature": ".sig", "attestation": ".att", "sbom": ".sbom", "digest": ""}[typ]
			if !ok {
				return fmt.Errorf("--type %q: use signature, attestation, sbom or digest", typ)
			}
			d, _, err := reg.lookup(cmd, args[0])
			if err != nil {
				return err
			}
			ref := d.String()
			if suffix != "" {
				ref = legacyTag(d, suffix).String()
			}
			return report(cmd, map[string]any{"reference": ref}, ref)
		},
	}
	cmd.Flags().StringVar(&typ, "type", "signature", "signature, attestation, sbom or digest")
	reg.add(cmd)
	return cmd
}

func newDownloadCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "download signature|attestation IMAGE",
		Short: "Print the signatures or attestations attached to an image, as Sigstore bundles",
	}
	for _, kind := range []string{kindSignature, kindAttestation} {
		var reg registryFlags
		var predicateType string
		sub := &cobra.Command{
			Use:   kind + " IMAGE",
			Short: "Print the " + kind + "s attached to an image, one Sigstore bundle per line",
			Long: `download ` + kind + ` prints each ` + kind + ` attached to the image as a Sigstore
bundle, one JSON document per line: the bundles stored as OCI referrers as
they are, and the layers of cosign's legacy ` + map[string]string{kindSignature: ".sig", kindAttestation: ".att"}[kind] + ` tag turned into
bundles (v0.1, with the certificate chain and log entry of its annotations).
Nothing is verified: verify-blob can check a bundle saved to a file.`,
			Example: `  signet download ` + kind + ` registry.example.com/app:v1 > ` + kind + `s.jsonl
  signet download ` + kind + ` registry.example.com/app:v1 | head -1 > one.sigstore.json`,
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				var want string
				if predicateType != "" {
					var err error
					if want, err = predicateTypeURI(predicateType); err != nil {
						return err
					}
				}
				d, _, err := reg.lookup(cmd, args[0])
				if err != nil {
					return err
				}
				bundles, err := reg.bundlesOf(cmd, d)
				if err != nil {
					return err
				}
				var legacy []legacySignature
				if kind == kindSignature {
					legacy, err = reg.legacySignaturesOf(cmd, d)
				} else {
					legacy, err = reg.legacyAttestationsOf(cmd, d)
				}
				if err != nil {
					return err
				}
				for _, l := range legacy {
					bundles = append(bundles, l.bundle)
				}
				n := 0
				for _, b := range bundles {
					pt := statementType(b)
					isSig := pt == cosignSignPredicateType || b.GetMessageSignature() != nil
					if isSig != (kind == kindSignature) || (want != "" && pt != want) {
						continue
					}
					raw, err := b.MarshalJSON()
					if err != nil {
						return err
					}
					if _, err := fmt.Fprintf(cmd.OutOrStdout(), "%s\n", raw); err != nil {
						return err
					}
					n++
				}
				if n == 0 {
					return fmt.Errorf("no %s is attached to %s", kind, d)
				}
				return nil
			},
		}
		if kind == kindAttestation {
			sub.Flags().StringVar(&predicateType, "predicate-type", "", "only attestations of this predicate type (a URI or cosign's short name)")
		}
		reg.add(sub)
		cmd.AddCommand(sub)
	}
	return cmd
}

// statementType is the predicate type of the in-toto statement a DSSE
// bundle signs ("" for another bundle).
func statementType(b *bundle.Bundle) string {
	env := b.GetDsseEnvelope()
	if env == nil {
		return ""
	}
	var st struct {
		PredicateType string `json:"predicateType"`
	}
	json.Unmarshal(env.GetPayload(), &st) //nolint:errcheck // not a statement: no type
	return st.PredicateType
}

func newCopyCommand() *cobra.Command {
	var reg registryFlags
	var only []string
	var force bool
	cmd := &cobra.Command{
		Use:   "copy SRC DST",
		Short: "Copy an image with its signatures and attestations to another repository or registry",
		Long: `copy copies an image (a manifest or a multi-platform index, by digest) from SRC
to the repository DST, with what is attached to it and, for an index, to
each platform's manifest: OCI referrers (pushed as referrers of the same
digest, so a registry without the referrers API gets its referrers tag) and
cosign's legacy .sig, .att and .sbom tags. Digests do not change, so every
signature still verifies at the destination.

DST is registry/repository[:tag]; without a tag, SRC's tag is used if SRC
was given by tag. --only sig,att,sbom copies only those attachments, not the
image. A tag at DST that names something else is not moved without --force.`,
		Example: `  signet copy registry.example.com/app:v1 mirror.example.com/app
  signet copy registry.example.com/app@sha256:3f1c... mirror.example.com/app:v1 --only sig,att`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kinds, err := parseKinds(only)
			if err != nil {
				return err
			}
			src, err := reg.parse(args[0])
			if err != nil {
				return err
			}
			dstRepo, dstTag, err := reg.destination(args[1], src)
			if err != nil {
				return err
			}
			d, desc, err := reg.lookup(cmd, args[0])
			if err != nil {
				return err
			}
			c := copier{cmd: cmd, reg: &reg, dst: dstRepo, force: force, kinds: kinds, progress: cmd.ErrOrStderr()}
			if len(only) == 0 {
				if err := c.image(d, desc, dstTag); err != nil {
					return err
				}
			}
			subjects := []name.Digest{d}
			if desc.MediaType.IsIndex() {
				children, err := reg.children(cmd, d)
				if err != nil {
					return err
				}
				for _, ch := range children {
					subjects = append(subjects, d.Context().Digest(ch.Digest.String()))
				}
			}
			for _, s := range subjects {
				if err := c.attachments(s); err != nil {
					return err
				}
			}
			target := dstRepo.Digest(d.DigestStr()).String()
			return report(cmd, map[string]any{"image": target, "attachments": c.copied},
				fmt.Sprintf("Copied %s to %s with %d attachment(s)", d, target, c.copied))
		},
	}
	cmd.Flags().StringSliceVar(&only, "only", nil, "copy only these attachments, not the image: sig, att, sbom (comma-separated)")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "move tags at the destination that name something else")
	reg.add(cmd)
	return cmd
}

// destination parses copy's DST: a repository, maybe with a tag (a
// digest would be SRC's, so it is refused). Without one, SRC's tag.
func (f *registryFlags) destination(dst string, src name.Reference) (name.Repository, string, error) {
	if strings.Contains(dst, "@") {
		return name.Repository{}, "", fmt.Errorf("DST %q names a digest: give a repository (and a tag); the digest is SRC's", dst)
	}
	var opts []name.Option
	if f.allowHTTP || f.allowInsecure {
		opts = append(opts, name.Insecure)
	}
	// A tag is a ':' after the last '/' (a ':' before it is a port).
	if i := strings.LastIndex(dst, ":"); i > strings.LastIndex(dst, "/") {
		t, err := name.NewTag(dst, opts...)
		if err != nil {
			return name.Repository{}, "", fmt.Errorf("DST %q: %w", dst, err)
		}
		return t.Context(), t.TagStr(), nil
	}
	repo, err := name.NewRepository(dst, opts...)
	if err != nil {
		return name.Repository{}, "", fmt.Errorf("DST %q is not a repository: %w", dst, err)
	}
	if t, ok := src.(name.Tag); ok {
		return repo, t.TagStr(), nil
	}
	return repo, "", nil
}

// copier copies manifests into dst, never moving a tag there that names
// something else unless forced.
type copier struct {
	cmd      *cobra.Command
	reg      *registryFlags
	dst      name.Repository
	force    bool
	kinds    []string
	progress io.Writer
	copied   int
}

// image copies d (an image or an index with its children) to dst, by
// digest and, if tag is set, tagged.
func (c *copier) image(d name.Digest, desc *v1.Descriptor, tag string) error {
	var target name.Reference = c.dst.Digest(d.DigestStr())
	if tag != "" {
		t := c.dst.Tag(tag)
		if err := c.mayTag(t, desc.Digest); err != nil {
			return err
		}
		target = t
	}
	fmt.Fprintf(c.progress, "Copying %s to %s\n", d, target)
	return c.put(d, target)
}

// mayTag refuses to move t from another manifest to h, unless forced.
func (c *copier) mayTag(t name.Tag, h v1.Hash) error {
	existing, err := remote.Head(t, c.reg.options(c.cmd)...)
	switch {
	case notFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("looking up %s: %w", t, err)
	case existing.Digest != h && !c.force:
		return fmt.Errorf("%s names %s, not %s: pass --force to move it", t, existing.Digest, h)
	}
	return nil
}

// put copies the manifest (and what it references) at src to target,
// byte for byte, so its digest is kept.
func (c *copier) put(src name.Reference, target name.Reference) error {
	opts := c.reg.options(c.cmd)
	desc, err := remote.Get(src, opts...)
	if err != nil {
		return fmt.Errorf("reading %s: %w", src, err)
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return err
		}
		err = remote.WriteIndex(target, idx, opts...)
		if err != nil {
			return fmt.Errorf("writing %s: %w", target, err)
		}
		return nil
	}
	img, err := desc.Image()
	if err != nil {
		return err
	}
	if err := remote.Write(target, img, opts...); err != nil {
		return fmt.Errorf("writing %s: %w", target, err)
	}
	return nil
}

// attachments copies what is attached to s that c.kinds asks for.
func (c *copier) attachments(s name.Digest) error {
	a, err := c.reg.attachedTo(c.cmd, s)
	if err != nil {
		return err
	}
	for _, r := range a.Referrers {
		if !wanted(c.kinds, r.Kind) {
			continue
		}
		fmt.Fprintf(c.progress, "Copying the %s %s of %s\n", r.Kind, r.Digest, s.DigestStr())
		if err := c.put(s.Context().Digest(r.Digest), c.dst.Digest(r.Digest)); err != nil {
			return err
		}
		c.copied++
	}
	for _, l := range legacySuffixes {
		lt := a.Legacy[l.suffix]
		if lt == nil || !wanted(c.kinds, l.kind) {
			continue
		}
		h, _ := v1.NewHash(lt.Digest)
		target := c.dst.Tag(legacyTag(s, l.suffix).TagStr())
		if err := c.mayTag(target, h); err != nil {
			return err
		}
		fmt.Fprintf(c.progress, "Copying %s\n", lt.Tag)
		if err := c.put(legacyTag(s, l.suffix), target); err != nil {
			return err
		}
		c.copied += len(lt.Layers)
	}
	return nil
}

func newCleanCommand() *cobra.Command {
	var reg registryFlags
	var typ string
	var yes bool
	cmd := &cobra.Command{
		Use:   "clean IMAGE [--type all|signature|attestation|sbom]",
		Short: "Delete the signatures, attestations or SBOMs attached to an image",
		Long: `clean deletes what is attached to an image (not the image): the OCI referrers
of the kinds --type names, and cosign's legacy .sig, .att and .sbom tags. A
registry without the referrers API keeps a referrers tag (sha256-<digest>)
listing them: it is rewritten without the deleted ones, and deleted once
empty. clean says what it will delete and asks first (--yes skips the
question; off a terminal it is required). The registry must allow deletes
(docker-registry: storage.delete.enabled).`,
		Example: `  signet clean registry.example.com/app:v1
  signet clean registry.example.com/app@sha256:3f1c... --type attestation --yes`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kinds, err := parseKinds([]string{typ})
			if err != nil {
				return err
			}
			d, _, err := reg.lookup(cmd, args[0])
			if err != nil {
				return err
			}
			a, err := reg.attachedTo(cmd, d)
			if err != nil {
				return err
			}
			n := a.count(kinds)
			if n == 0 {
				return report(cmd, map[string]any{"image": d.String(), "deleted": 0}, fmt.Sprintf("Nothing of that kind is attached to %s", d))
			}
			if err := confirm(cmd, yes, fmt.Sprintf("This deletes %d attachment(s) of %s for good", n, d)); err != nil {
				return err
			}
			if err := reg.clean(cmd, d, a, kinds); err != nil {
				return err
			}
			return report(cmd, map[string]any{"image": d.String(), "deleted": n}, fmt.Sprintf("Deleted %d attachment(s) of %s", n, d))
		},
	}
	cmd.Flags().StringVar(&typ, "type", "all", "what to delete: all, signature, attestation or sbom")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask before deleting")
	reg.add(cmd)
	return cmd
}

// clean deletes the attachments a lists of the kinds asked for.
func (f *registryFlags) clean(cmd *cobra.Command, d name.Digest, a *attachments, kinds []string) error {
	opts := f.options(cmd)
	repo := d.Context()
	var deleted []v1.Hash
	for _, r := range a.Referrers {
		if !wanted(kinds, r.Kind) {
			continue
		}
		if err := remote.Delete(repo.Digest(r.Digest), opts...); err != nil && !notFound(err) {
			return fmt.Errorf("deleting the %s %s: %w", r.Kind, r.Digest, err)
		}
		h, _ := v1.NewHash(r.Digest)
		deleted = append(deleted, h)
	}
	for _, l := range legacySuffixes {
		if lt := a.Legacy[l.suffix]; lt != nil && wanted(kinds, l.kind) {
			if err := f.deleteTagged(cmd, legacyTag(d, l.suffix), lt.Digest); err != nil {
				return err
			}
		}
	}
	if len(deleted) == 0 {
		return nil
	}
	// The referrers tag, where the registry has no referrers API.
	tag := repo.Tag(strings.Replace(d.DigestStr(), ":", "-", 1))
	idx, err := remote.Index(tag, opts...)
	if notFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the referrers tag %s: %w", tag, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	old, err := idx.Digest()
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(im.Manifests, func(m v1.Descriptor) bool { return !slices.Contains(deleted, m.Digest) }) {
		return f.deleteTagged(cmd, tag, old.String())
	}
	rest := mutate.RemoveManifests(idx, match.Digests(deleted...))
	if err := remote.WriteIndex(tag, rest, opts...); err != nil {
		return fmt.Errorf("rewriting the referrers tag %s: %w", tag, err)
	}
	// The old index, now untagged.
	if err := remote.Delete(repo.Digest(old.String()), opts...); err != nil && !notFound(err) {
		return fmt.Errorf("deleting the old referrers index of %s: %w", tag, err)
	}
	return nil
}

// deleteTagged deletes the manifest tag names (digest) with its tag.
// Registries differ: distribution refuses to delete a tag and deletes the
// manifest by digest with its tags; others delete tags, and a digest
// deleted there may leave its tag behind. So the tag first, and the
// digest when that is refused.
func (f *registryFlags) deleteTagged(cmd *cobra.Command, tag name.Tag, digest string) error {
	opts := f.options(cmd)
	if err := remote.Delete(tag, opts...); err == nil || notFound(err) {
		return nil
	}
	if err := remote.Delete(tag.Context().Digest(digest), opts...); err != nil && !notFound(err) {
		return fmt.Errorf("deleting %s: %w", tag, err)
	}
	return nil
}
