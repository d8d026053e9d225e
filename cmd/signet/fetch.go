package main

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/spf13/cobra"

	"github.com/signet-dev/signet/internal/cligroup"
)

// Files as OCI artifacts: upload blob pushes files as the layers of an
// image (each named by its org.opencontainers.image.title annotation, as
// oras names them), and fetch gives a file back only
// once a signature of that image verifies, as sget did: the signature
// covers the manifest digest, the manifest the layer digest, and the layer
// is checked against its digest as it is read.

const titleAnnotation = "org.opencontainers.image.title"

// defaultMaxFetchBytes bounds the file fetch writes, unless --max-bytes.
const defaultMaxFetchBytes = 1 << 30

func newUploadCommand() *cobra.Command {
	cmd := cligroup.Make(&cobra.Command{
		Use:     "upload blob IMAGE -f FILE",
		Short:   "Push files to a registry as an OCI artifact",
		Example: `  signet upload blob registry.example.com/tools/installer:v1 -f install.sh`,
	})
	var reg registryFlags
	var files, commaFiles []string
	var mediaType string
	var force bool
	blob := &cobra.Command{
		Use:   "blob IMAGE -f FILE [-f FILE...]",
		Short: "Push files to a registry as the layers of an image, for signet fetch",
		Long: `upload blob pushes each file as one layer of an image at IMAGE (a tag, or a
repository), named by its base name in the layer's
org.opencontainers.image.title annotation, with media type --ct. It prints
the image's digest reference: sign that, and signet fetch gives the files
back only to whoever can verify the signature.`,
		Example: `  signet upload blob registry.example.com/tools/installer:v1 -f install.sh
  signet sign registry.example.com/tools/installer@sha256:3f1c... --yes
  signet fetch registry.example.com/tools/installer:v1 --certificate-identity alice@example.com \
    --certificate-oidc-issuer https://issuer.example.com | sh`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			files := append(files, commaFiles...)
			if len(files) == 0 {
				return errors.New("name the files to push with -f FILE (or --files A,B)")
			}
			ref, err := reg.parse(args[0])
			if err != nil {
				return err
			}
			img := emptyOCIImage()
			titles := map[string]bool{}
			for _, f := range files {
				layer, err := newFileLayer(f, types.MediaType(mediaType))
				if err != nil {
					if strings.Contains(f, ":") && errors.Is(err, os.ErrNotExist) {
						return fmt.Errorf("%s: no such file (platform suffixes such as file:linux/amd64 are not supported)", f)
					}
					return err
				}
				title := filepath.Base(f)
				if titles[title] {
					return fmt.Errorf("two files are named %s: fetch could not tell them apart", title)
				}
				titles[title] = true
				if img, err = mutate.Append(img, mutate.Addendum{Layer: layer, Annotations: map[string]string{titleAnnotation: title}}); err != nil {
					return err
				}
			}
			dg, err := img.Digest()
			if err != nil {
				return err
			}
			if t, ok := ref.(name.Tag); ok && !force {
				if existing, err := remote.Head(t, reg.options(cmd)...); err == nil && existing.Digest != dg {
					return fmt.Errorf("%s names %s already: nothing was pushed; pass --force to move it", t, existing.Digest)
				}
			}
			if err := remote.Write(ref, img, reg.options(cmd)...); err != nil {
				return fmt.Errorf("pushing %s: %w", ref, err)
			}
			d := ref.Context().Digest(dg.String())
			return report(cmd, map[string]any{"image": d.String(), "files": len(files)}, d.String())
		},
	}
	blob.Flags().StringArrayVarP(&files, "file", "f", nil, "a file to push (repeatable)")
	blob.Flags().StringSliceVar(&commaFiles, "files", nil, "files to push, comma-separated (cosign's flag; no :os/arch suffixes)")
	blob.Flags().BoolVar(&force, "force", false, "move the tag if it names something else")
	blob.Flags().StringVar(&mediaType, "ct", "application/octet-stream", "media type of the layers")
	reg.add(blob)
	cmd.AddCommand(blob)
	return cmd
}

// fileLayer is a file as an uncompressed layer, read from disk when
// pushed rather than held in memory.
type fileLayer struct {
	path      string
	digest    v1.Hash
	size      int64
	mediaType types.MediaType
}

func newFileLayer(path string, mediaType types.MediaType) (*fileLayer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return &fileLayer{path: path, size: n, mediaType: mediaType,
		digest: v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}}, nil
}

func (l *fileLayer) Digest() (v1.Hash, error)             { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)             { return l.digest, nil }
func (l *fileLayer) Size() (int64, error)                 { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error)  { return l.mediaType, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)   { return os.Open(l.path) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) { return os.Open(l.path) }

func newFetchCommand() *cobra.Command {
	var f verifyFlags
	var reg registryFlags
	var output, file string
	var maxBytes int64
	cmd := &cobra.Command{
		Use:   "fetch IMAGE (--certificate-identity ID --certificate-oidc-issuer URL | --key PUB) [-O FILE]",
		Short: "Write a file from a registry only if its signature verifies",
		Long: `fetch verifies the signatures of IMAGE as signet verify does (the report goes
to stderr), then writes the file it holds to stdout, or to -O FILE: its one
layer, or with --file NAME the layer titled NAME (as upload blob and oras
name them). Nothing is written when no signature verifies (exit 3), and
nothing partial when the download fails: the file is read into a temporary
file first, checked against its digest, and only then written. The layer
read is the one of the digest verified, even when IMAGE is a tag that moves
meanwhile. At most --max-bytes are read; -O never overwrites a file.`,
		Example: `  signet fetch registry.example.com/tools/installer:v1 --certificate-identity alice@example.com \
    --certificate-oidc-issuer https://issuer.example.com | sh
  signet fetch registry.example.com/tools/bundle:v1 --key release.pub --file config.yaml -O config.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "" {
				if _, err := os.Lstat(output); err == nil {
					return fmt.Errorf("%s exists: fetch does not overwrite files", output)
				}
			}
			d, _, err := reg.lookup(cmd, args[0])
			if err != nil {
				return err
			}
			// What verify would print goes to stderr: stdout carries the file.
			stdout := cmd.OutOrStdout()
			cmd.SetOut(cmd.ErrOrStderr())
			err = verifyImageBundles(cmd, &f, &reg, d.String(), func(res *verify.VerificationResult) error {
				return checkImageStatement(res, nil)
			}, &legacyScheme{suffix: ".sig", read: reg.legacySignaturesOf, signsPayload: true,
				check: func(l legacySignature, _ *verify.VerificationResult, d name.Digest) error {
					return checkSimpleSigning(l.payload, d, nil)
				}})
			cmd.SetOut(stdout)
			if err != nil {
				return err
			}
			return reg.fetchLayer(cmd, d, file, output, maxBytes, stdout)
		},
	}
	f.addPolicy(cmd)
	reg.add(cmd)
	cmd.Flags().StringVarP(&output, "output-file", "O", "", "write the file here instead of stdout (never over an existing file)")
	cmd.Flags().StringVar(&file, "file", "", "the layer titled NAME, when the image holds several")
	cmd.Flags().Int64Var(&maxBytes, "max-bytes", defaultMaxFetchBytes, "the largest file fetch reads")
	return cmd
}

// fetchLayer writes the layer of d titled file (or its only layer) to
// output, or to stdout when output is "".
func (f *registryFlags) fetchLayer(cmd *cobra.Command, d name.Digest, file, output string, maxBytes int64, stdout io.Writer) error {
	desc, err := remote.Get(d, f.options(cmd)...)
	if err != nil {
		return fmt.Errorf("reading %s: %w", d, err)
	}
	if desc.MediaType.IsIndex() {
		return fmt.Errorf("%s is an index of several platforms: fetch one platform's manifest by its digest (signet tree and crane manifest list them)", d)
	}
	img, err := desc.Image()
	if err != nil {
		return fmt.Errorf("reading %s: %w", d, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return fmt.Errorf("reading %s: %w", d, err)
	}
	var chosen *v1.Descriptor
	var titles []string
	for i, l := range m.Layers {
		titles = append(titles, l.Annotations[titleAnnotation])
		if (file == "" && len(m.Layers) == 1) || (file != "" && l.Annotations[titleAnnotation] == file) {
			chosen = &m.Layers[i]
		}
	}
	switch {
	case chosen == nil && file == "":
		return fmt.Errorf("%s holds %d files (%s): name one with --file", d, len(m.Layers), strings.Join(titles, ", "))
	case chosen == nil:
		return fmt.Errorf("%s holds no file titled %q (it holds: %s)", d, file, strings.Join(titles, ", "))
	case chosen.Size < 0:
		return fmt.Errorf("%s gives the file a size of %d", d, chosen.Size)
	case chosen.Size > maxBytes:
		return fmt.Errorf("the file is %d bytes, more than --max-bytes %d", chosen.Size, maxBytes)
	}
	layer, err := img.LayerByDigest(chosen.Digest)
	if err != nil {
		return fmt.Errorf("fetching %s: %w", chosen.Digest, err)
	}
	// go-containerregistry checks the size and digest as the blob is read:
	// a short or altered blob fails the copy.
	rc, err := layer.Compressed()
	if err != nil {
		return fmt.Errorf("fetching %s: %w", chosen.Digest, err)
	}
	defer rc.Close()
	dir := os.TempDir()
	if output != "" {
		dir = filepath.Dir(output)
	}
	tmp, err := os.CreateTemp(dir, ".signet-fetch-*")
	if err != nil {
		return fmt.Errorf("a temporary file for the download: %w", err)
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // gone after the rename; else nothing partial is left
	// One byte past the size: the reader sees the end, where the digest is checked.
	if _, err := io.Copy(tmp, io.LimitReader(rc, chosen.Size+1)); err != nil {
		tmp.Close()
		return fmt.Errorf("fetching %s: %w", chosen.Digest, err)
	}
	if err := rc.Close(); err != nil {
		tmp.Close()
		return fmt.Errorf("fetching %s: %w", chosen.Digest, err)
	}
	if output != "" {
		// A file as others are written (not CreateTemp's 0600), on disk
		// before it gets its name.
		if err := tmp.Chmod(0o644); err != nil {
			tmp.Close()
			return err
		}
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			return fmt.Errorf("writing %s: %w", output, err)
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		// A hard link fails if output appeared meanwhile: never overwritten.
		if err := os.Link(tmp.Name(), output); err != nil {
			if errors.Is(err, os.ErrExist) {
				return fmt.Errorf("%s exists: fetch does not overwrite files", output)
			}
			// No hard links here (some file systems): rename, after the
			// check at the start.
			if err := os.Rename(tmp.Name(), output); err != nil {
				return fmt.Errorf("writing %s: %w", output, err)
			}
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "Wrote %s (%d bytes, %s)\n", output, chosen.Size, chosen.Digest)
		return nil
	}
	defer tmp.Close()
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	_, err = io.Copy(stdout, tmp)
	return err
}
