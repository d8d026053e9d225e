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

	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/spf13/cobra"
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

// statement is an in-toto v0.1 statement about one file, as cosign
// attest-blob makes it: the subject named by the file's base name with its
// SHA-256; a custom predicate wraps the predicate file's text with the
// time, any other is the predicate file's JSON object.
func statement(file string, fileDigest []byte, typeURI string, predicate []byte, now time.Time) ([]byte, error) {
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
		"subject":       []any{map[string]any{"name": filepath.Base(file), "digest": map[string]string{"sha256": hex.EncodeToString(fileDigest)}}},
		"predicate":     pred,
	})
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
			typeURI, err := predicateTypeURI(typ)
			if err != nil {
				return err
			}
			predicate, err := readLimited(predicatePath, maxPredicateBytes)
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
			st, err := statement(args[0], h.Sum(nil), typeURI, predicate, time.Now())
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
			if res.Statement == nil {
				return &verifyError{errors.New(f.bundlePath + " holds a signature, not an attestation: use verify-blob")}
			}
			if got := res.Statement.GetPredicateType(); got != typeURI {
				return &verifyError{fmt.Errorf("the attestation's predicate type is %s, not %s", got, typeURI)}
			}
			return reportVerified(cmd, res, b, args[0]+" (attestation "+typeURI+")")
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&typ, "type", "custom", "expected predicate type: a short name as cosign's, or a URI")
	return cmd
}
