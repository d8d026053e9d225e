package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/spf13/cobra"

	"github.com/signet-dev/signet/internal/cligroup"
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
	// Listed as referrers but not referring to this image (a referrers
	// tag anyone who can push may have rewritten), or gone: never copied
	// or deleted as this image's.
	Foreign []string `json:"foreign,omitempty"`
	Stale   []string `json:"stale,omitempty"`
}

// attachedTo lists what is attached to d, at most limit referrers. Each
// referrer's manifest is read (not its blobs) and kept only if its subject
// is d: the list comes from the registry's API or from a referrers tag
// that anyone who can push may have rewritten, and what it names is
// copied and deleted as d's.
func (f *registryFlags) attachedTo(cmd *cobra.Command, d name.Digest, limit int) (*attachments, error) {
	opts := f.options(cmd)
	out := &attachments{Image: d.String(), Legacy: map[string]*legacyTagContent{}}
	im, err := f.referrersOf(cmd, d, limit)
	if err != nil {
		return nil, err
	}
	for _, m := range im.Manifests {
		ref := d.Context().Digest(m.Digest.String())
		desc, err := remote.Get(ref, opts...)
		if notFound(err) {
			out.Stale = append(out.Stale, m.Digest.String())
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading the referrer %s: %w", ref, err)
		}
		var mf struct {
			ArtifactType string            `json:"artifactType"`
			Config       v1.Descriptor     `json:"config"`
			Subject      *v1.Descriptor    `json:"subject"`
			Annotations  map[string]string `json:"annotations"`
		}
		if err := json.Unmarshal(desc.Manifest, &mf); err != nil || mf.Subject == nil || mf.Subject.Digest.String() != d.DigestStr() || m.Digest.String() == d.DigestStr() {
			out.Foreign = append(out.Foreign, m.Digest.String())
			continue
		}
		a := attachment{Digest: m.Digest.String(), MediaType: string(desc.MediaType), ArtifactType: mf.ArtifactType, Size: desc.Size,
			PredicateType: mf.Annotations["dev.sigstore.bundle.predicateType"]}
		if a.ArtifactType == "" {
			a.ArtifactType = string(mf.Config.MediaType)
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
		dg, err := img.Digest()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", tag, err)
		}
		c := &legacyTagContent{Tag: tag.String(), Digest: dg.String()}
		for _, layer := range m.Layers {
			c.Layers = append(c.Layers, attachment{Kind: l.kind, Digest: layer.Digest.String(), MediaType: string(layer.MediaType),
				PredicateType: layer.Annotations["predicateType"], Size: layer.Size})
		}
		out.Legacy[l.suffix] = c
	}
	return out, nil
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

func notFound(err error) bool { return registryStatus(err) == http.StatusNotFound }

// registryStatus is the HTTP status of a registry's refusal, 0 for other
// errors.
func registryStatus(err error) int {
	var terr *transport.Error
	if errors.As(err, &terr) {
		return terr.StatusCode
	}
	return 0
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
			a, err := reg.attachedTo(cmd, d, maxReferrers)
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
	if n := len(a.Foreign) + len(a.Stale); n > 0 {
		branches = append(branches, branch{title: fmt.Sprintf("ignored: %d listed referrer(s) not about this image, %d gone", len(a.Foreign), len(a.Stale))})
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
			suffix, ok := "", typ == "digest"
			for _, l := range legacySuffixes {
				if l.kind == typ {
					suffix, ok = l.suffix, true
				}
			}
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
	cmd := cligroup.Make(&cobra.Command{
		Use:   "download signature|attestation IMAGE",
		Short: "Print the signatures or attestations attached to an image, as Sigstore bundles",
		Example: `  signet download signature registry.example.com/app:v1
  signet download attestation registry.example.com/app:v1 --predicate-type slsaprovenance1`,
	})
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
				if n == 0 && want != "" {
					return fmt.Errorf("no %s of predicate type %s is attached to %s", kind, want, d)
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

DST is registry/repository[:tag]; without a tag, SRC's tag if SRC was given
by tag, else latest. --only sig,att,sbom copies only those attachments, not
the image. Every tag copy would write at DST is checked first: one naming
something else stops the copy before anything is written, unless --force.
The image is pushed by digest, then its attachments, and the tag is moved
last, so the tag never names an image whose signatures are not there yet.`,
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
			copyImage := kinds == nil // no --only, or --only all
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
			// Read everything, and check every tag to be written, before
			// writing anything.
			var all []*attachments
			for _, s := range subjects {
				a, err := reg.attachedTo(cmd, s, maxReferrers)
				if err != nil {
					return err
				}
				for _, l := range legacySuffixes {
					if lt := a.Legacy[l.suffix]; lt != nil && wanted(kinds, l.kind) {
						if err := c.mayTag(c.dst.Tag(legacyTag(s, l.suffix).TagStr()), lt.Digest); err != nil {
							return err
						}
					}
				}
				all = append(all, a)
			}
			if copyImage {
				if err := c.mayTag(c.dst.Tag(dstTag), desc.Digest.String()); err != nil {
					return err
				}
				fmt.Fprintf(c.progress, "Copying %s to %s\n", d, dstRepo.Digest(d.DigestStr()))
				if err := c.put(d, dstRepo.Digest(d.DigestStr())); err != nil {
					return err
				}
			}
			for i, a := range all {
				if err := c.attachments(subjects[i], a); err != nil {
					return err
				}
			}
			target := dstRepo.Digest(d.DigestStr()).String()
			if copyImage {
				t := c.dst.Tag(dstTag)
				copied, err := remote.Get(dstRepo.Digest(d.DigestStr()), reg.options(cmd)...)
				if err != nil {
					return fmt.Errorf("reading back %s: %w", dstRepo.Digest(d.DigestStr()), err)
				}
				if err := remote.Tag(t, copied, reg.options(cmd)...); err != nil {
					return fmt.Errorf("tagging %s: %w", t, err)
				}
				target = t.String() + "@" + d.DigestStr()
			}
			return report(cmd, map[string]any{"image": target, "attachments": c.copied},
				fmt.Sprintf("Copied %s to %s with %d attachment(s)", d, target, c.copied))
		},
	}
	cmd.Flags().StringSliceVar(&only, "only", nil, "copy only these attachments, not the image: sig, att, sbom (comma-separated; all = everything)")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "move tags at the destination that name something else")
	reg.add(cmd)
	return cmd
}

// destination parses copy's DST: a repository, maybe with a tag (a
// digest would be SRC's, so it is refused). Without one, SRC's tag if it
// has one, else latest.
func (f *registryFlags) destination(dst string, src name.Reference) (name.Repository, string, error) {
	if strings.Contains(dst, "@") {
		return name.Repository{}, "", fmt.Errorf("DST %q names a digest: give a repository (and a tag); the digest is SRC's", dst)
	}
	// A tag is a ':' after the last '/' (a ':' before it is a port).
	if i := strings.LastIndex(dst, ":"); i > strings.LastIndex(dst, "/") {
		t, err := name.NewTag(dst, f.nameOptions()...)
		if err != nil {
			return name.Repository{}, "", fmt.Errorf("DST %q: %w", dst, err)
		}
		return t.Context(), t.TagStr(), nil
	}
	repo, err := name.NewRepository(dst, f.nameOptions()...)
	if err != nil {
		return name.Repository{}, "", fmt.Errorf("DST %q is not a repository: %w", dst, err)
	}
	if t, ok := src.(name.Tag); ok {
		return repo, t.TagStr(), nil
	}
	return repo, "latest", nil
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

// mayTag refuses to move t from another manifest to digest, unless forced.
func (c *copier) mayTag(t name.Tag, digest string) error {
	existing, err := remote.Head(t, c.reg.options(c.cmd)...)
	switch {
	case notFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("looking up %s: %w", t, err)
	case existing.Digest.String() != digest && !c.force:
		return fmt.Errorf("%s names %s, not %s: nothing was copied; pass --force to move it", t, existing.Digest, digest)
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
			return fmt.Errorf("reading %s: %w", src, err)
		}
		if err := remote.WriteIndex(target, idx, opts...); err != nil {
			return fmt.Errorf("writing %s: %w", target, err)
		}
		return nil
	}
	img, err := desc.Image()
	if err != nil {
		return fmt.Errorf("reading %s: %w", src, err)
	}
	if err := remote.Write(target, img, opts...); err != nil {
		return fmt.Errorf("writing %s: %w", target, err)
	}
	return nil
}

// attachments copies what a lists for s that c.kinds asks for.
func (c *copier) attachments(s name.Digest, a *attachments) error {
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
		fmt.Fprintf(c.progress, "Copying %s\n", lt.Tag)
		if err := c.put(legacyTag(s, l.suffix), c.dst.Tag(legacyTag(s, l.suffix).TagStr())); err != nil {
			return err
		}
		c.copied += len(lt.Layers)
	}
	return nil
}

// maxCleanReferrers bounds the referrers clean lists: more than verify
// reads, since a flood of referrers is what one cleans.
const maxCleanReferrers = 4096

func newCleanCommand() *cobra.Command {
	var reg registryFlags
	var typ string
	var yes bool
	cmd := &cobra.Command{
		Use:   "clean IMAGE [--type all|signature|attestation|sbom]",
		Short: "Delete the signatures, attestations or SBOMs attached to an image",
		Long: `clean deletes what is attached to an image (never the image): the OCI
referrers of the kinds --type names (all: signatures, attestations and SBOMs;
other tools' referrers are left alone) and cosign's legacy .sig, .att and
.sbom tags. Only referrers whose manifest names this image as its subject
are deleted. A registry without the referrers API keeps a referrers tag
(sha256-<digest>) listing them: it is rewritten first without the deleted
ones (and without entries whose manifest is gone), and deleted once empty.
A legacy tag is deleted as a tag; where the registry only deletes by
digest (distribution), the tag is first moved to a placeholder of its own,
so a manifest other tags share is not deleted with it.

clean lists what it will delete and asks first (--yes or --force skip the
question; off a terminal one is required). The registry must allow deletes
(docker-registry: storage.delete.enabled).`,
		Example: `  signet clean registry.example.com/app:v1
  signet clean registry.example.com/app@sha256:3f1c... --type attestation --yes`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kinds, err := parseKinds([]string{typ})
			if err != nil {
				return err
			}
			if kinds == nil {
				kinds = []string{kindSignature, kindAttestation, kindSBOM}
			}
			d, _, err := reg.lookup(cmd, args[0])
			if err != nil {
				return err
			}
			a, err := reg.attachedTo(cmd, d, maxCleanReferrers)
			if err != nil {
				return err
			}
			var items []string
			for _, r := range a.Referrers {
				if wanted(kinds, r.Kind) {
					items = append(items, fmt.Sprintf("%s %s (referrer)", r.Kind, r.Digest))
				}
			}
			for _, l := range legacySuffixes {
				if lt := a.Legacy[l.suffix]; lt != nil && wanted(kinds, l.kind) {
					items = append(items, fmt.Sprintf("%s (%d %s(s))", lt.Tag, len(lt.Layers), l.kind))
				}
			}
			if len(items) == 0 {
				return report(cmd, map[string]any{"image": d.String(), "deleted": []string{}}, fmt.Sprintf("Nothing of that kind is attached to %s", d))
			}
			if err := confirm(cmd, yes, fmt.Sprintf("This deletes, for good, from %s:\n  %s", d, strings.Join(items, "\n  "))); err != nil {
				return err
			}
			if err := reg.clean(cmd, d, a, kinds); err != nil {
				return err
			}
			return report(cmd, map[string]any{"image": d.String(), "deleted": items},
				fmt.Sprintf("Deleted from %s:\n  %s", d, strings.Join(items, "\n  ")))
		},
	}
	cmd.Flags().StringVar(&typ, "type", "all", "what to delete: all, signature, attestation or sbom")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask before deleting")
	cmd.Flags().BoolVarP(&yes, "force", "f", false, "do not ask before deleting (cosign's name for --yes)")
	reg.add(cmd)
	return cmd
}

// clean deletes the attachments a lists of the kinds asked for: the
// referrers tag first (so it never lists what is gone), then the
// referrers, then the legacy tags.
func (f *registryFlags) clean(cmd *cobra.Command, d name.Digest, a *attachments, kinds []string) error {
	opts := f.options(cmd)
	repo := d.Context()
	drop := map[string]bool{}
	for _, s := range a.Stale {
		drop[s] = true
	}
	var deleting []string
	for _, r := range a.Referrers {
		if wanted(kinds, r.Kind) {
			drop[r.Digest] = true
			deleting = append(deleting, r.Digest)
		}
	}
	if len(drop) > 0 {
		if err := f.rewriteReferrersTag(cmd, d, drop); err != nil {
			return err
		}
	}
	for _, dg := range deleting {
		if err := remote.Delete(repo.Digest(dg), opts...); err != nil && !notFound(err) {
			return fmt.Errorf("deleting the referrer %s: %w", dg, err)
		}
	}
	for _, l := range legacySuffixes {
		if lt := a.Legacy[l.suffix]; lt != nil && wanted(kinds, l.kind) {
			if err := f.deleteTag(cmd, legacyTag(d, l.suffix)); err != nil {
				return err
			}
		}
	}
	return nil
}

// rewriteReferrersTag removes the entries drop names from d's referrers
// tag (kept by registries without the referrers API), deleting the tag
// once empty. The index is rewritten as bytes: its other entries are not
// fetched again, so one whose manifest is gone does not stop it.
func (f *registryFlags) rewriteReferrersTag(cmd *cobra.Command, d name.Digest, drop map[string]bool) error {
	opts := f.options(cmd)
	tag := legacyTag(d, "")
	desc, err := remote.Get(tag, opts...)
	if notFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the referrers tag %s: %w", tag, err)
	}
	var idx map[string]json.RawMessage
	var im v1.IndexManifest
	if err := json.Unmarshal(desc.Manifest, &idx); err != nil || json.Unmarshal(desc.Manifest, &im) != nil {
		return fmt.Errorf("the referrers tag %s is not an index: leaving it", tag)
	}
	var keep []v1.Descriptor
	for _, m := range im.Manifests {
		if !drop[m.Digest.String()] {
			keep = append(keep, m)
		}
	}
	if len(keep) == len(im.Manifests) {
		return nil
	}
	if len(keep) == 0 {
		return f.deleteTag(cmd, tag)
	}
	manifests, err := json.Marshal(keep)
	if err != nil {
		return err
	}
	idx["manifests"] = manifests // every other field as it was
	raw, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	if err := remote.Put(tag, rawManifest{raw: raw, mediaType: desc.MediaType}, opts...); err != nil {
		return fmt.Errorf("rewriting the referrers tag %s: %w", tag, err)
	}
	return nil
}

// deleteTag deletes tag, never the manifest it names when other tags
// share it. Registries differ: some delete tags; distribution refuses
// (400, 405) and deletes manifests by digest, with every tag naming them.
// There the tag is first moved to a placeholder manifest of its own, and
// the placeholder is deleted.
func (f *registryFlags) deleteTag(cmd *cobra.Command, tag name.Tag) error {
	opts := f.options(cmd)
	err := remote.Delete(tag, opts...)
	switch status := registryStatus(err); {
	case err == nil || status == http.StatusNotFound:
		return nil
	case status != http.StatusBadRequest && status != http.StatusMethodNotAllowed:
		return fmt.Errorf("deleting %s: %w", tag, err)
	}
	placeholder := mutate.Annotations(emptyOCIImage(), map[string]string{
		"dev.signet.deleted-tag": tag.String(), "dev.signet.deleted-at": time.Now().UTC().Format(time.RFC3339Nano),
	}).(v1.Image)
	if err := remote.Write(tag, placeholder, opts...); err != nil {
		return fmt.Errorf("deleting %s (moving it to a placeholder first): %w", tag, err)
	}
	h, err := placeholder.Digest()
	if err != nil {
		return err
	}
	if err := remote.Delete(tag.Context().Digest(h.String()), opts...); err != nil {
		return fmt.Errorf("deleting %s (its placeholder %s): %w", tag, h, err)
	}
	return nil
}
