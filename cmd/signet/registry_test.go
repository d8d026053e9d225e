package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log"
	"maps"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gname "github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
)

// startRegistry is a registry of one of three kinds: go-containerregistry's
// with the OCI referrers API or without it (the referrers tag fallback),
// or Debian's docker-registry (distribution 2.8, no referrers API). It
// returns host:port.
func startRegistry(t *testing.T, kind string) string {
	t.Helper()
	if kind == "Debian docker-registry" {
		return startDockerRegistry(t)
	}
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithReferrersSupport(kind == "referrers API")))
	t.Cleanup(reg.Close)
	return strings.TrimPrefix(reg.URL, "http://")
}

// treeOf is signet tree's JSON for image.
func treeOf(t *testing.T, image string) attachments {
	t.Helper()
	out, err := runCLI(t, "tree", image, "--allow-http-registry", "-o", "json")
	if err != nil {
		t.Fatalf("tree %s: %v", image, err)
	}
	var a attachments
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		t.Fatalf("tree %s: %v\n%s", image, err, out)
	}
	return a
}

// kinds counts an image's referrers by kind and its legacy tags' layers
// by suffix, with the referrers' digests, to compare two trees.
func kinds(a attachments) map[string]int {
	n := map[string]int{}
	for _, r := range a.Referrers {
		n[r.Kind]++
		n[r.Digest]++
	}
	for suffix, l := range a.Legacy {
		n[suffix] += len(l.Layers)
	}
	return n
}

// The registry tools on an image with everything cosign and signet attach:
// signatures and an attestation as referrers (by signet and by unmodified
// cosign), legacy .sig, .att and .sbom tags. tree lists them, triangulate
// and download find them, copy moves them to another registry (where
// cosign and signet still verify the image), and clean deletes them, in
// each kind of registry.
func TestRegistryTools(t *testing.T) {
	x := newInterop(t)
	predicate := x.write("predicate.json", `{"buildDefinition":{"buildType":"https://example.com/build/v1"},"runDetails":{"builder":{"id":"https://ci.example.com"}}}`)
	keyless := func(args ...string) []string {
		return append(args, "--allow-http-registry", "--certificate-identity", "alice@example.com", "--certificate-oidc-issuer", x.issuer)
	}
	mustRun := func(args ...string) string {
		t.Helper()
		out, err := runCLI(t, args...)
		if err != nil {
			t.Fatalf("signet %v: %v\n%s", args, err, out)
		}
		return out
	}
	for _, mode := range []string{"referrers API", "referrers tag fallback", "Debian docker-registry"} {
		t.Run(mode, func(t *testing.T) {
			host := startRegistry(t, mode)
			image := pushRandomImage(t, host, "app:v1")
			d, _ := gname.NewDigest(image, gname.Insecure)
			token := devToken(t, x.base, "alice@example.com")
			mustRun("sign", image, "--allow-http-registry", "--yes", "--identity-token", token)
			mustRun("attest", image, "--allow-http-registry", "--yes", "--predicate", predicate, "--type", "slsaprovenance1", "--identity-token", token)
			x.mustCosign("sign", "--yes", "--allow-http-registry", "--signing-config", x.signingConfig, "--trusted-root", x.trustedRoot, "--identity-token", token, image)
			mustRun("sign", image, "--legacy-tags", "--allow-http-registry", "--yes", "--identity-token", token)
			mustRun("attest", image, "--legacy-tags", "--allow-http-registry", "--yes", "--predicate", predicate, "--type", "slsaprovenance1", "--identity-token", token)
			// An SBOM where cosign attach sbom put it.
			sbom, err := mutate.Append(empty.Image, mutate.Addendum{Layer: static.NewLayer([]byte(`{"spdxVersion":"SPDX-2.3"}`), "text/spdx+json")})
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Write(legacyTag(d, ".sbom"), sbom); err != nil {
				t.Fatal(err)
			}

			// tree
			a := treeOf(t, host+"/app:v1")
			if got := kinds(a); got[kindSignature] != 2 || got[kindAttestation] != 1 || got[".sig"] != 1 || got[".att"] != 1 || got[".sbom"] != 1 || a.Image != image {
				t.Fatalf("tree: %v\n%+v", got, a)
			}
			text := mustRun("tree", image, "--allow-http-registry")
			if !strings.Contains(text, "OCI referrers: 3") ||
				!strings.Contains(text, "https://slsa.dev/provenance/v1") || !strings.Contains(text, "legacy tag "+legacyTag(d, ".sig").String()+": 1 signature(s)") {
				t.Fatalf("tree:\n%s", text)
			}

			// triangulate
			if got := strings.TrimSpace(mustRun("triangulate", host+"/app:v1", "--allow-http-registry")); got != legacyTag(d, ".sig").String() {
				t.Fatalf("triangulate: %q", got)
			}
			if got := strings.TrimSpace(mustRun("triangulate", host+"/app:v1", "--allow-http-registry", "--type", "digest")); got != image {
				t.Fatalf("triangulate --type digest: %q", got)
			}

			// download: bundles, one per line, each of its kind.
			for what, want := range map[string]struct {
				args  []string
				lines int
			}{
				"signatures":              {[]string{"download", "signature", image}, 3},
				"attestations":            {[]string{"download", "attestation", image}, 2},
				"provenance attestations": {[]string{"download", "attestation", image, "--predicate-type", "slsaprovenance1"}, 2},
			} {
				out := mustRun(append(want.args, "--allow-http-registry")...)
				lines := strings.Split(strings.TrimSpace(out), "\n")
				if len(lines) != want.lines {
					t.Fatalf("download %s: %d lines, want %d\n%s", what, len(lines), want.lines, out)
				}
				for _, l := range lines {
					b, err := parseBundle([]byte(l))
					if err != nil {
						t.Fatalf("download %s: %v\n%s", what, err, l)
					}
					if pt := statementType(b); what != "signatures" && pt != "https://slsa.dev/provenance/v1" {
						t.Fatalf("download %s: a bundle of %q", what, pt)
					}
				}
			}
			if _, err := runCLI(t, "download", "attestation", image, "--allow-http-registry", "--predicate-type", "spdxjson"); err == nil || !strings.Contains(err.Error(), "no attestation of predicate type https://spdx.dev/Document is attached") {
				t.Fatalf("download of a type that is not there: %v", err)
			}

			// copy to another kind of registry: the same attachments, and
			// the signatures verify there, with cosign and signet.
			otherKind := "referrers API"
			if mode == "referrers API" {
				otherKind = "referrers tag fallback"
			}
			other := startRegistry(t, otherKind)
			out := mustRun("copy", host+"/app:v1", other+"/mirror/app", "--allow-http-registry")
			copied := other + "/mirror/app@" + d.DigestStr()
			if !strings.Contains(out, "Copied "+image+" to "+other+"/mirror/app:v1@"+d.DigestStr()+" with 6 attachment(s)") {
				t.Fatalf("copy: %s", out)
			}
			if got, want := kinds(treeOf(t, other+"/mirror/app:v1")), kinds(a); !maps.Equal(got, want) {
				t.Fatalf("after copy: %v, want %v", got, want)
			}
			x.mustCosign(keyless("verify", "--trusted-root", x.trustedRoot, copied)...)
			if out := mustRun(keyless("verify", copied)...); strings.Count(out, "signed by alice@example.com") != 3 {
				t.Fatalf("verify of the copy: %s", out)
			}
			mustRun(keyless("verify-attestation", copied, "--type", "slsaprovenance1")...)

			// A tag at the destination naming another image is not moved
			// without --force.
			pushRandomImage(t, other, "mirror/app:v2")
			if _, err := runCLI(t, "copy", image, other+"/mirror/app:v2", "--allow-http-registry"); err == nil || !strings.Contains(err.Error(), "pass --force to move it") {
				t.Fatalf("copy over another image's tag: %v", err)
			}
			mustRun("copy", image, other+"/mirror/app:v2", "--allow-http-registry", "--force")
			v2, _ := gname.ParseReference(other+"/mirror/app:v2", gname.Insecure)
			if desc, err := remote.Head(v2); err != nil || desc.Digest.String() != d.DigestStr() {
				t.Fatalf("after --force: %v %v", desc, err)
			}

			// --only sig: the signatures, not the image, nor the rest.
			mustRun("copy", image, other+"/sigs-only/app", "--allow-http-registry", "--only", "sig")
			sigsOnly, _ := gname.ParseReference(other+"/sigs-only/app@"+d.DigestStr(), gname.Insecure)
			if _, err := remote.Head(sigsOnly); !notFound(err) {
				t.Fatalf("--only sig copied the image: %v", err)
			}
			// The image arrives by other means (crane copy, say); the
			// signatures were there before it.
			img, err := remote.Image(d)
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Write(sigsOnly, img); err != nil {
				t.Fatal(err)
			}
			if out := mustRun("download", "signature", sigsOnly.String(), "--allow-http-registry"); strings.Count(out, "\n") != 3 {
				t.Fatalf("--only sig: signatures at the destination:\n%s", out)
			}
			if _, err := runCLI(t, "download", "attestation", sigsOnly.String(), "--allow-http-registry"); err == nil || !strings.Contains(err.Error(), "no attestation is attached") {
				t.Fatalf("--only sig copied an attestation: %v", err)
			}

			// clean: asks first; --type attestation keeps the signatures.
			if _, err := runCLI(t, "clean", image, "--allow-http-registry"); err == nil || !strings.Contains(err.Error(), "pass --yes") {
				t.Fatalf("clean off a terminal without --yes: %v", err)
			}
			if got := kinds(treeOf(t, image)); !maps.Equal(got, kinds(a)) {
				t.Fatalf("a refused clean deleted something: %v", got)
			}
			if out := mustRun("clean", image, "--allow-http-registry", "--type", "attestation", "--yes"); strings.Count(out, "\n  ") != 2 || !strings.Contains(out, "attestation sha256:") {
				t.Fatalf("clean --type attestation: %s", out)
			}
			if got := kinds(treeOf(t, image)); got[kindAttestation] != 0 || got[".att"] != 0 || got[kindSignature] != 2 || got[".sig"] != 1 || got[".sbom"] != 1 {
				t.Fatalf("after clean --type attestation: %v", got)
			}
			var ve *verifyError
			if _, err := runCLI(t, keyless("verify-attestation", image, "--type", "slsaprovenance1")...); !errors.As(err, &ve) {
				t.Fatalf("an attestation verified after clean: %v", err)
			}
			if out := mustRun(keyless("verify", image)...); strings.Count(out, "signed by") != 3 {
				t.Fatalf("verify after clean --type attestation: %s", out)
			}
			mustRun("clean", image, "--allow-http-registry", "--yes")
			if a := treeOf(t, image); len(a.Referrers) != 0 || len(a.Legacy) != 0 {
				t.Fatalf("after clean: %+v", a)
			}
			if _, err := runCLI(t, keyless("verify", image)...); !errors.As(err, &ve) {
				t.Fatalf("verify after clean: %v", err)
			}
		})
	}

	// Usage errors name the problem.
	for args, want := range map[string]string{
		"copy a b@sha256:" + strings.Repeat("0", 64): "names a digest",
		"copy a b --only everything":                 `"everything" is not a kind of attachment`,
		"triangulate localhost/a --type sboms":       `--type "sboms"`,
		"download sbom localhost/a":                  `unknown command "sbom" for "signet download"`,
		"upload bogus":                               `unknown command "bogus" for "signet upload"`,
	} {
		if _, err := runCLI(t, strings.Fields(args)...); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("signet %s: %v, want %q", args, err, want)
		}
	}
}

// upload blob, then fetch: the file comes back only when a signature by
// the expected signer verifies (signet's, or unmodified cosign's), nothing
// is written otherwise, and -O never overwrites.
func TestFetchVerifiedFile(t *testing.T) {
	x := newInterop(t)
	var ve *verifyError
	for _, mode := range []string{"referrers tag fallback", "Debian docker-registry"} {
		t.Run(mode, func(t *testing.T) {
			host := startRegistry(t, mode)
			script := x.write("install.sh", "#!/bin/sh\necho installed\n")
			conf := x.write("config.yaml", "answer: 42\n")
			out, err := runCLI(t, "upload", "blob", host+"/tools/installer:v1", "-f", script, "--allow-http-registry")
			if err != nil || !strings.HasPrefix(out, host+"/tools/installer@sha256:") {
				t.Fatalf("upload blob: %v\n%s", err, out)
			}
			image := strings.TrimSpace(out)
			keyless := []string{"--allow-http-registry", "--certificate-identity", "alice@example.com", "--certificate-oidc-issuer", x.issuer}
			fetchTo := filepath.Join(x.dir, strings.ReplaceAll(mode, " ", "-")+".sh")
			if _, err := runCLI(t, append([]string{"fetch", host + "/tools/installer:v1", "-O", fetchTo}, keyless...)...); !errors.As(err, &ve) {
				t.Fatalf("fetch of an unsigned file: %v, want exit 3", err)
			}
			if _, err := os.Stat(fetchTo); !os.IsNotExist(err) {
				t.Fatalf("an unverified fetch wrote %s: %v", fetchTo, err)
			}
			x.mustCosign("sign", "--yes", "--allow-http-registry", "--signing-config", x.signingConfig, "--trusted-root", x.trustedRoot,
				"--identity-token", devToken(t, x.base, "alice@example.com"), image)
			out, err = runCLI(t, append([]string{"fetch", host + "/tools/installer:v1"}, keyless...)...)
			if err != nil || out != "#!/bin/sh\necho installed\n" {
				t.Fatalf("fetch to stdout: %v\n%q", err, out)
			}
			if _, err := runCLI(t, "fetch", image, "--allow-http-registry", "--certificate-identity", "mallory@example.com", "--certificate-oidc-issuer", x.issuer, "-O", fetchTo); !errors.As(err, &ve) {
				t.Fatalf("fetch expecting another signer: %v, want exit 3", err)
			}
			if _, err := runCLI(t, append([]string{"fetch", image, "-O", fetchTo}, keyless...)...); err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(fetchTo); string(got) != "#!/bin/sh\necho installed\n" {
				t.Fatalf("fetched %q", got)
			}
			if _, err := runCLI(t, append([]string{"fetch", image, "-O", fetchTo}, keyless...)...); err == nil || !strings.Contains(err.Error(), "does not overwrite") {
				t.Fatalf("fetch over an existing file: %v", err)
			}

			// Two files, signed by signet: --file picks one.
			out, err = runCLI(t, "upload", "blob", host+"/tools/bundle:v1", "-f", script, "-f", conf, "--ct", "text/plain", "--allow-http-registry")
			if err != nil {
				t.Fatal(err)
			}
			bundle := strings.TrimSpace(out)
			if out, err := runCLI(t, "sign", bundle, "--allow-http-registry", "--yes", "--identity-token", devToken(t, x.base, "alice@example.com")); err != nil {
				t.Fatalf("sign: %v\n%s", err, out)
			}
			if _, err := runCLI(t, append([]string{"fetch", bundle}, keyless...)...); err == nil || !strings.Contains(err.Error(), "holds 2 files (install.sh, config.yaml): name one with --file") {
				t.Fatalf("fetch of two files without --file: %v", err)
			}
			if out, err := runCLI(t, append([]string{"fetch", bundle, "--file", "config.yaml"}, keyless...)...); err != nil || out != "answer: 42\n" {
				t.Fatalf("fetch --file: %v %q", err, out)
			}
			if _, err := runCLI(t, append([]string{"fetch", bundle, "--file", "config.yaml", "--max-bytes", "5"}, keyless...)...); err == nil || !strings.Contains(err.Error(), "more than --max-bytes 5") {
				t.Fatalf("fetch over --max-bytes: %v", err)
			}

			// An index (several platforms) is refused, not silently narrowed
			// to one platform.
			idx, err := random.Index(64, 1, 2)
			if err != nil {
				t.Fatal(err)
			}
			idxRef, _ := gname.ParseReference(host+"/tools/multi:v1", gname.Insecure)
			if err := remote.WriteIndex(idxRef, idx); err != nil {
				t.Fatal(err)
			}
			if out, err := runCLI(t, "sign", idxRef.String(), "--allow-http-registry", "--yes", "--identity-token", devToken(t, x.base, "alice@example.com")); err != nil {
				t.Fatalf("sign: %v\n%s", err, out)
			}
			if _, err := runCLI(t, append([]string{"fetch", idxRef.String()}, keyless...)...); err == nil || !strings.Contains(err.Error(), "is an index of several platforms") {
				t.Fatalf("fetch of an index: %v", err)
			}
		})
	}
}

// pushArtifact puts a manifest referring to subject (an OCI 1.1 referrer
// of another tool, when artifactType is not Sigstore's) and returns its
// digest.
func pushArtifact(t *testing.T, subject gname.Digest, artifactType string) string {
	t.Helper()
	repo := subject.Context()
	config := static.NewLayer([]byte("{}"), emptyMediaType)
	if err := remote.WriteLayer(repo, config); err != nil {
		t.Fatal(err)
	}
	head, err := remote.Head(subject)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "artifactType": artifactType,
		"config":  map[string]any{"mediaType": emptyMediaType, "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": 2},
		"layers":  []any{},
		"subject": map[string]any{"mediaType": head.MediaType, "digest": head.Digest.String(), "size": head.Size},
	})
	h, _, _ := v1.SHA256(bytes.NewReader(raw))
	if err := remote.Put(repo.Digest(h.String()), rawManifest{raw: raw, mediaType: "application/vnd.oci.image.manifest.v1+json"}); err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// clean deletes only the image's own Sigstore attachments: not another
// tool's referrer, not an image a rewritten referrers tag points at, not
// the .sbom another image shares byte for byte; and a referrers tag
// listing a manifest that is gone is cleaned up rather than stuck.
func TestCleanTouchesOnlyItsOwn(t *testing.T) {
	x := newPinned(t)
	for _, mode := range []string{"referrers API", "referrers tag fallback", "Debian docker-registry"} {
		t.Run(mode, func(t *testing.T) {
			host := startRegistry(t, mode)
			image := pushRandomImage(t, host, "app:v1")
			d, _ := gname.NewDigest(image, gname.Insecure)
			victim := pushRandomImage(t, host, "app:release")
			vd, _ := gname.NewDigest(victim, gname.Insecure)
			if out, err := runCLI(t, "sign", image, "--allow-http-registry", "--yes", "--identity-token", devToken(t, x.base, "alice@example.com")); err != nil {
				t.Fatalf("sign: %v\n%s", err, out)
			}
			notation := pushArtifact(t, d, "application/vnd.cncf.notary.signature")
			// The same SBOM attached to both images: byte-identical .sbom manifests.
			sbom, _ := mutate.Append(empty.Image, mutate.Addendum{Layer: static.NewLayer([]byte(`{"spdxVersion":"SPDX-2.3"}`), "text/spdx+json")})
			for _, dg := range []gname.Digest{d, vd} {
				if err := remote.Write(legacyTag(dg, ".sbom"), sbom); err != nil {
					t.Fatal(err)
				}
			}
			if mode != "referrers API" {
				// Someone who can push rewrites the referrers tag to list the
				// victim image ...
				tag := legacyTag(d, "")
				desc, err := remote.Get(tag)
				if err != nil {
					t.Fatal(err)
				}
				var idx map[string]any
				json.Unmarshal(desc.Manifest, &idx) //nolint:errcheck
				vh, _ := remote.Head(vd)
				idx["manifests"] = append(idx["manifests"].([]any),
					map[string]any{"mediaType": vh.MediaType, "digest": vh.Digest.String(), "size": vh.Size})
				raw, _ := json.Marshal(idx)
				if err := remote.Put(tag, rawManifest{raw: raw, mediaType: desc.MediaType}); err != nil {
					t.Fatal(err)
				}
				// ... and a referrer is deleted without the tag being updated
				// (as a plain manifest delete leaves it).
				gone := pushArtifact(t, d, "application/example.gone")
				if err := remote.Delete(d.Context().Digest(gone)); err != nil {
					t.Fatal(err)
				}
				a := treeOf(t, image)
				if len(a.Foreign) != 1 || len(a.Stale) != 1 || a.Foreign[0] != vd.DigestStr() {
					t.Fatalf("tree of a tampered referrers tag: %+v", a)
				}
			}
			if out, err := runCLI(t, "clean", image, "--allow-http-registry", "--yes"); err != nil {
				t.Fatalf("clean: %v\n%s", err, out)
			}
			a := treeOf(t, image)
			if len(a.Referrers) != 1 || a.Referrers[0].Digest != notation || a.Referrers[0].Kind != kindOther || len(a.Legacy) != 0 || len(a.Stale) != 0 {
				t.Fatalf("after clean: %+v (want only the other tool's referrer %s)", a, notation)
			}
			for _, ref := range []gname.Reference{vd, vd.Context().Tag("release"), legacyTag(vd, ".sbom")} {
				if _, err := remote.Head(ref); err != nil {
					t.Errorf("clean of %s took %s with it: %v", image, ref, err)
				}
			}
		})
	}
}

// copy checks every tag it would write before writing anything: a legacy
// tag at the destination naming something else stops it with nothing
// pushed, and --force goes ahead.
func TestCopyChecksTagsFirst(t *testing.T) {
	x := newPinned(t)
	src, dst := startRegistry(t, "referrers API"), startRegistry(t, "referrers tag fallback")
	image := pushRandomImage(t, src, "app:v1")
	d, _ := gname.NewDigest(image, gname.Insecure)
	if out, err := runCLI(t, "sign", image, "--legacy-tags", "--allow-http-registry", "--yes", "--identity-token", devToken(t, x.base, "alice@example.com")); err != nil {
		t.Fatalf("sign: %v\n%s", err, out)
	}
	// Someone else's signature image already sits at the destination's .sig tag.
	theirs := pushRandomImage(t, dst, "app:"+legacyTag(d, ".sig").TagStr())
	if _, err := runCLI(t, "copy", image, dst+"/app:v1", "--allow-http-registry"); err == nil || !strings.Contains(err.Error(), "nothing was copied; pass --force") {
		t.Fatalf("copy over a conflicting .sig tag: %v", err)
	}
	for _, ref := range []string{dst + "/app@" + d.DigestStr(), dst + "/app:v1"} {
		r, _ := gname.ParseReference(ref, gname.Insecure)
		if _, err := remote.Head(r); !notFound(err) {
			t.Fatalf("a refused copy wrote %s: %v", ref, err)
		}
	}
	if out, err := runCLI(t, "copy", image, dst+"/app:v1", "--allow-http-registry", "--force"); err != nil {
		t.Fatalf("copy --force: %v\n%s", err, out)
	}
	sig, _ := gname.ParseReference(dst+"/app:"+legacyTag(d, ".sig").TagStr(), gname.Insecure)
	if h, err := remote.Head(sig); err != nil || strings.HasSuffix(theirs, h.Digest.String()) {
		t.Fatalf("after --force the .sig tag names %v (%v), not the copied signatures", h, err)
	}
	if out, err := runCLI(t, "verify", dst+"/app:v1", "--allow-http-registry", "--certificate-identity", "alice@example.com", "--certificate-oidc-issuer", x.issuer); err != nil || !strings.Contains(out, "legacy .sig tag") {
		t.Fatalf("verify of the copy: %v\n%s", err, out)
	}
}
