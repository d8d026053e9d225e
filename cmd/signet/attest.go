package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/signet-dev/signet/client/policy"
)

// predicateTypes are cosign's short names for predicate types
// (cosign:cmd/cosign/cli/options/predicate.go), so --type carries over.
var predicateTypes = map[string]string{
	"custom":           "https://cosign.sigstore.dev/attestation/v1",
	"slsaprovenance":   "https://slsa.dev/provenance/v0.2",
	"slsaprovenance02": "https://slsa.dev/provenance/v0.2",
	"slsaprovenance1":  "https://slsa.dev/provenance/v1",
	"link":             "https://in-toto.io/Link/v1",
	"spdx":             "https://spdx.dev/Document",
	"spdxjson":         "https://spdx.dev/Document",
	"cyclonedx":        "https://cyclonedx.org/bom",
	"vuln":             "https://cosign.sigstore.dev/attestation/vuln/v1",
	"openvex":          "https://openvex.dev/ns",
}

// inTotoPayloadType is the DSSE payload type of an in-toto statement.
const inTotoPayloadType = "application/vnd.in-toto+json"

// maxPredicateBytes bounds a predicate file: an SBOM of a large image is a
// few MiB; the whole statement goes into the log's DSSE entry.
const maxPredicateBytes = 32 << 20

// predicateTypeURI turns --type into a predicate type URI: a short name,
// or an absolute URI as given.
func predicateTypeURI(t string) (string, error) {
	if uri, ok := predicateTypes[t]; ok {
		return uri, nil
	}
	if u, err := url.ParseRequestURI(t); err == nil && u.Scheme != "" {
		return t, nil
	}
	names := make([]string, 0, len(predicateTypes))
	for n := range predicateTypes {
		names = append(names, n)
	}
	sort.Strings(names)
	return "", fmt.Errorf("--type %q is neither one of %s nor a URI", t, strings.Join(names, ", "))
}

// statement is an in-toto v0.1 statement about one subject, as cosign
// attest-blob and attest make it: the subject's name (a file's base name,
// an image's repository) with its SHA-256; a custom predicate wraps the
// predicate file's text with the time, any other is the predicate file's
// JSON object.
func statement(subjectName string, digest []byte, typeURI string, predicate []byte, now time.Time) ([]byte, error) {
	var pred any
	if typeURI == predicateTypes["custom"] {
		pred = map[string]any{"Data": string(predicate), "Timestamp": now.UTC().Format(time.RFC3339)}
	} else {
		var obj map[string]any
		if err := json.Unmarshal(predicate, &obj); err != nil {
			return nil, fmt.Errorf("the predicate of type %s must be a JSON object: %w", typeURI, err)
		}
		pred = obj
	}
	return json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v0.1",
		"predicateType": typeURI,
		"subject":       []any{map[string]any{"name": subjectName, "digest": map[string]string{"sha256": hex.EncodeToString(digest)}}},
		"predicate":     pred,
	})
}

// readPredicate is --type as a URI and the --predicate file's bytes.
func readPredicate(typ, path string) (string, []byte, error) {
	typeURI, err := predicateTypeURI(typ)
	if err != nil {
		return "", nil, err
	}
	predicate, err := readLimited(path, maxPredicateBytes)
	return typeURI, predicate, err
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return data, nil
}

func newAttestBlobCommand() *cobra.Command {
	var f signFlags
	var predicatePath, typ string
	cmd := &cobra.Command{
		Use:   "attest-blob FILE --predicate PREDICATE --type TYPE --bundle OUT [--key KEY]",
		Short: "Sign an in-toto attestation about a file into a Sigstore bundle",
		Long: `attest-blob makes an in-toto statement about FILE (its name and SHA-256 as the
subject, PREDICATE as the predicate), signs it as a DSSE envelope, keyless or
with --key, logs it and timestamps it, and writes the Sigstore bundle, as
cosign attest-blob does. --type takes cosign's short names (custom,
slsaprovenance, slsaprovenance02, slsaprovenance1, link, spdx, spdxjson,
cyclonedx, vuln, openvex) or a predicate type URI; a custom predicate is
wrapped with the time, any other must be a JSON object.`,
		Example: `  signet attest-blob app.tar.gz --predicate provenance.json --type slsaprovenance1 \
    --bundle app.intoto.sigstore.json --identity-token "$TOKEN"
  signet verify-blob-attestation app.tar.gz --bundle app.intoto.sigstore.json --type slsaprovenance1 \
    --certificate-identity alice@example.com --certificate-oidc-issuer https://issuer.example.com`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			typeURI, predicate, err := readPredicate(typ, predicatePath)
			if err != nil {
				return err
			}
			in, err := os.Open(args[0])
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(h, in)
			in.Close()
			if err != nil {
				return err
			}
			st, err := statement(filepath.Base(args[0]), h.Sum(nil), typeURI, predicate, time.Now())
			if err != nil {
				return err
			}
			b, err := f.sign(cmd, args[0], &sign.DSSEData{Data: st, PayloadType: inTotoPayloadType})
			if err != nil {
				return err
			}
			return reportSigned(cmd, b, args[0]+" (attestation "+typeURI+")", f.bundlePath)
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&predicatePath, "predicate", "", "file holding the predicate (required)")
	cmd.Flags().StringVar(&typ, "type", "custom", "predicate type: a short name as cosign's, or a URI")
	cmd.MarkFlagRequired("predicate") //nolint:errcheck
	return cmd
}

func newVerifyBlobAttestationCommand() *cobra.Command {
	var f verifyFlags
	var typ string
	cmd := &cobra.Command{
		Use:   "verify-blob-attestation FILE --bundle IN --type TYPE (--certificate-identity ID --certificate-oidc-issuer URL | --key PUB)",
		Short: "Verify an in-toto attestation bundle about a file",
		Long: `verify-blob-attestation checks a Sigstore bundle holding a DSSE in-toto
attestation as verify-blob checks a signature, then that the statement's
subject is FILE's SHA-256 and its predicate type is --type (default custom,
as cosign). Exit status 0: verified; 3: does not verify; 1: could not run.`,
		Example: `  signet verify-blob-attestation app.tar.gz --bundle app.intoto.sigstore.json --type slsaprovenance1 \
    --certificate-identity alice@example.com --certificate-oidc-issuer https://issuer.example.com
  signet verify-blob-attestation app.tar.gz --bundle sbom.sigstore.json --type spdxjson --key release.pub`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			typeURI, err := predicateTypeURI(typ)
			if err != nil {
				return err
			}
			// sigstore-go checks the statement's subject digests against the file.
			res, b, err := f.verify(cmd, args[0])
			if err != nil {
				return err
			}
			if err := checkAttestation(res, typeURI); err != nil {
				return &verifyError{fmt.Errorf("%s: %w", f.bundlePath, err)}
			}
			return reportVerified(cmd, res, b, args[0]+" (attestation "+typeURI+")")
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&typ, "type", "custom", "expected predicate type: a short name as cosign's, or a URI")
	return cmd
}

// checkAttestation checks that a verified bundle is an attestation of the
// wanted predicate type.
func checkAttestation(res *verify.VerificationResult, typeURI string) error {
	if res.Statement == nil {
		return errors.New("it holds a signature, not an attestation")
	}
	if got := res.Statement.GetPredicateType(); got != typeURI {
		return fmt.Errorf("its predicate type is %s, not %s", got, typeURI)
	}
	return nil
}

func newAttestImageCommand() *cobra.Command {
	var f signFlags
	var reg registryFlags
	var predicatePath, typ string
	var legacyTags bool
	cmd := &cobra.Command{
		Use:   "attest IMAGE --predicate PREDICATE --type TYPE",
		Short: "Attach a signed in-toto attestation to a container image",
		Long: `attest makes an in-toto statement about the image's digest (its repository as
the subject name; a tag is resolved), signs it as DSSE keyless or with --key,
logs and timestamps it, and pushes the Sigstore bundle as an OCI 1.1 referrer
of the image, as cosign v3 attest does. --type takes cosign's short names or
a predicate type URI.`,
		Example: `  signet attest registry.example.com/app:v1 --predicate sbom.spdx.json --type spdxjson --identity-token "$TOKEN"
  signet verify-attestation registry.example.com/app:v1 --type spdxjson \
    --certificate-identity alice@example.com --certificate-oidc-issuer https://issuer.example.com`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			typeURI, predicate, err := readPredicate(typ, predicatePath)
			if err != nil {
				return err
			}
			d, desc, err := reg.lookup(cmd, args[0])
			if err != nil {
				return err
			}
			digest, err := hex.DecodeString(desc.Digest.Hex)
			if err != nil {
				return err
			}
			st, err := statement(d.Context().String(), digest, typeURI, predicate, time.Now())
			if err != nil {
				return err
			}
			b, err := f.sign(cmd, d.String(), &sign.DSSEData{Data: st, PayloadType: inTotoPayloadType})
			if err != nil {
				return err
			}
			if legacyTags {
				if err := pushLegacyAttestation(cmd, &f, &reg, d, b, typeURI); err != nil {
					return err
				}
				return reportSigned(cmd, b, d.String()+" (attestation "+typeURI+", legacy "+legacyTag(d, ".att").TagStr()+")", f.bundlePath)
			}
			bundleJSON, err := b.MarshalJSON()
			if err != nil {
				return err
			}
			if _, err := reg.pushReferrer(cmd, d, desc, bundleJSON, typeURI); err != nil {
				return err
			}
			return reportSigned(cmd, b, d.String()+" (attestation "+typeURI+")", f.bundlePath)
		},
	}
	f.addOptionalBundle(cmd)
	reg.add(cmd)
	cmd.Flags().StringVar(&predicatePath, "predicate", "", "file holding the predicate (required)")
	cmd.Flags().StringVar(&typ, "type", "custom", "predicate type: a short name as cosign's, or a URI")
	cmd.Flags().BoolVar(&legacyTags, "legacy-tags", false, "write cosign's legacy attestation (the DSSE envelope in the sha256-<hex>.att tag) instead of a bundle referrer")
	cmd.MarkFlagRequired("predicate") //nolint:errcheck
	return cmd
}

// pushLegacyAttestation appends the attestation's DSSE envelope to d's .att
// tag, with the annotations cosign writes (predicateType among them).
func pushLegacyAttestation(cmd *cobra.Command, f *signFlags, reg *registryFlags, d name.Digest, b *bundle.Bundle, typeURI string) error {
	ann, err := legacyAnnotations(b.Bundle, f.loaded.tr)
	if err != nil {
		return err
	}
	ann["predicateType"] = typeURI
	env, err := envelopeOf(b.Bundle)
	if err != nil {
		return err
	}
	return reg.pushLegacy(cmd, legacyTag(d, ".att"), env, dsseMediaType, ann)
}

func newVerifyAttestationCommand() *cobra.Command {
	var f verifyFlags
	var reg registryFlags
	var typ string
	var policies []string
	cmd := &cobra.Command{
		Use:   "verify-attestation IMAGE --type TYPE (--certificate-identity ID --certificate-oidc-issuer URL | --key PUB)",
		Short: "Verify the in-toto attestations attached to a container image",
		Long: `verify-attestation reads the Sigstore bundles among the image's referrers and
the attestations in cosign's legacy sha256-<digest>.att tag, and checks each
as verify does, then that it is an attestation about this digest
of predicate type --type (default custom, as cosign). It succeeds when one
does, printing its statement with --output json.

--policy FILE.rego or FILE.cue (repeatable) adds conditions on the statement
(its subject, predicateType and predicate), as cosign verify-attestation
--policy evaluates them: Rego must make data.signature.allow true (v0
syntax, as cosign; v1 accepted too), CUE must unify with the statement. An
attestation that fails a condition does not count, and the reason is listed.`,
		Example: `  signet verify-attestation registry.example.com/app:v1 --type slsaprovenance1 \
    --certificate-identity-regexp '^https://github.com/acme/' --certificate-oidc-issuer https://token.actions.githubusercontent.com
  signet verify-attestation registry.example.com/app:v1 --type slsaprovenance1 --policy builder.rego \
    --certificate-identity alice@example.com --certificate-oidc-issuer https://issuer.example.com`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			typeURI, err := predicateTypeURI(typ)
			if err != nil {
				return err
			}
			var conditions []*policy.Condition
			for _, p := range policies {
				c, err := policy.LoadFile(cmd.Context(), p)
				if err != nil {
					return err
				}
				conditions = append(conditions, c)
			}
			check := func(res *verify.VerificationResult) error {
				if err := checkAttestation(res, typeURI); err != nil {
					return err
				}
				if len(conditions) == 0 {
					return nil
				}
				st, err := protojson.Marshal(res.Statement)
				if err != nil {
					return err
				}
				for _, c := range conditions {
					if err := c.Check(cmd.Context(), st); err != nil {
						return fmt.Errorf("policy %w", err)
					}
				}
				return nil
			}
			return verifyImageBundles(cmd, &f, &reg, args[0], check, &legacyScheme{suffix: ".att", read: reg.legacyAttestationsOf,
				check: func(_ legacySignature, res *verify.VerificationResult, _ name.Digest) error { return check(res) }})
		},
	}
	f.addPolicy(cmd)
	reg.add(cmd)
	cmd.Flags().StringVar(&typ, "type", "custom", "expected predicate type: a short name as cosign's, or a URI")
	cmd.Flags().StringArrayVar(&policies, "policy", nil, "a .rego or .cue policy the statement must meet, as cosign's (repeatable)")
	return cmd
}
