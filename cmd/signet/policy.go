package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/signet-dev/signet/client"
	"github.com/signet-dev/signet/client/policy"
)

// verify --policy: policy-controller's ClusterImagePolicy documents applied
// to images from the command line. The policy package decides; here the
// signatures and attestations each authority asks for are read from the
// registry and verified with sigstore-go against the pinned trust.

// verifyWithPolicies applies the policies in path to each image: every
// policy whose globs match the image must be satisfied (enforce), or is
// reported (warn); an image no policy matches is refused, as
// policy-controller's tester refuses it.
func verifyWithPolicies(cmd *cobra.Command, f *verifyFlags, reg *registryFlags, path string, images []string) error {
	data, err := readPolicyFile(path)
	if err != nil {
		return err
	}
	policies, err := policy.Parse(cmd.Context(), data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	tr, err := trustFor(cmd, f.trustedRoot)
	if err != nil {
		return err
	}
	var results []map[string]any
	var lines, failures []string
	for _, image := range images {
		ref, err := reg.parse(image)
		if err != nil {
			return err
		}
		d, _, err := reg.lookup(cmd, image)
		if err != nil {
			return err
		}
		var decisions []map[string]any
		applied := 0
		for _, p := range policies {
			if !p.Matches(ref, d) {
				continue
			}
			applied++
			dec := p.Evaluate(cmd.Context(), func(a *policy.Authority) (*policy.Match, error) {
				return checkAuthority(cmd, reg, tr, d, a)
			})
			v := map[string]any{"policy": dec.Policy, "satisfied": dec.Err == nil, "authorities": dec.Matches}
			switch {
			case dec.Err == nil:
				lines = append(lines, fmt.Sprintf("Policy OK: %s: %s, by %s", d, dec.Policy, describeMatches(dec.Matches)))
			case dec.Warn:
				v["error"], v["mode"] = dec.Err.Error(), "warn"
				fmt.Fprintf(cmd.ErrOrStderr(), "WARNING (policy %s is in warn mode): %s: %v\n", dec.Policy, d, dec.Err)
				lines = append(lines, fmt.Sprintf("Policy warned: %s: %s (see stderr)", d, dec.Policy))
			default:
				v["error"] = dec.Err.Error()
				failures = append(failures, fmt.Sprintf("%s: %v", d, dec.Err))
			}
			decisions = append(decisions, v)
		}
		if applied == 0 {
			failures = append(failures, fmt.Sprintf("%s: no policy in %s applies to it (no images glob matches %s or %s)", d, path, ref.Name(), d.Name()))
		}
		results = append(results, map[string]any{"image": d.String(), "policies": decisions})
	}
	if len(failures) > 0 {
		// What passed is still said, so one failing image of several does
		// not hide the others' results.
		if format, _ := cmd.Flags().GetString("output"); format == "text" && len(lines) > 0 {
			fmt.Fprintln(cmd.OutOrStdout(), strings.Join(lines, "\n"))
		}
		return &verifyError{fmt.Errorf("the policy is not met:\n  %s", strings.Join(failures, "\n  "))}
	}
	return report(cmd, map[string]any{"images": results}, strings.Join(lines, "\n"))
}

func readPolicyFile(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, policy.MaxPolicyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(data) > policy.MaxPolicyBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, policy.MaxPolicyBytes)
	}
	return data, nil
}

// describeMatches names the authorities that passed and their signers.
func describeMatches(m map[string]*policy.Match) string {
	var parts []string
	for name, match := range m {
		var who []string
		for _, s := range match.Signatures {
			w := s.Subject
			if w == "" {
				w = "the key"
			}
			if !slices.Contains(who, w) {
				who = append(who, w)
			}
		}
		for att, as := range match.Attestations {
			who = append(who, fmt.Sprintf("attestation %s (%d)", att, len(as)))
		}
		if match.Static {
			who = append(who, "static pass")
		}
		parts = append(parts, fmt.Sprintf("authority %s (%s)", name, strings.Join(who, ", ")))
	}
	return strings.Join(parts, "; ")
}

// checkAuthority verifies what authority a asks of image d: a signature
// by its key or identities, or, when it lists attestations, each of those.
func checkAuthority(cmd *cobra.Command, reg *registryFlags, tr *root.TrustedRoot, d name.Digest, a *policy.Authority) (*policy.Match, error) {
	vr, err := authorityVerifier(tr, a)
	if err != nil {
		return nil, err
	}
	at := d
	if len(a.Source) == 1 {
		repo, err := name.NewRepository(a.Source[0].OCI, reg.nameOptions()...)
		if err != nil {
			return nil, fmt.Errorf("source.oci: %w", err)
		}
		at = repo.Digest(d.DigestStr())
	}
	if len(a.Attestations) == 0 {
		signed, err := reg.readSigned(cmd, d, at, &legacyScheme{suffix: ".sig", read: reg.legacySignaturesOf, signsPayload: true,
			check: func(l legacySignature, _ *verify.VerificationResult, d name.Digest) error {
				return checkSimpleSigning(l.payload, d, nil)
			}})
		if err != nil {
			return nil, err
		}
		if err := signed.none(); err != nil {
			return nil, err
		}
		ok, reasons := signed.verifyWith(vr, func(res *verify.VerificationResult) error { return checkImageStatement(res, nil) })
		if len(ok) == 0 {
			return nil, fmt.Errorf("no signature verifies: %s", strings.Join(reasons, "; "))
		}
		m := &policy.Match{}
		for _, s := range ok {
			m.Signatures = append(m.Signatures, signatureOf(s))
		}
		return m, nil
	}

	isAttestation := func(res *verify.VerificationResult) error {
		if res.Statement == nil || res.Statement.GetPredicateType() == cosignSignPredicateType {
			return errors.New("a signature, not an attestation")
		}
		return nil
	}
	signed, err := reg.readSigned(cmd, d, at, &legacyScheme{suffix: ".att", read: reg.legacyAttestationsOf,
		check: func(_ legacySignature, res *verify.VerificationResult, _ name.Digest) error {
			return isAttestation(res)
		}})
	if err != nil {
		return nil, err
	}
	ok, _ := signed.verifyWith(vr, isAttestation)
	m := &policy.Match{Attestations: map[string][]policy.AttestationMatch{}}
	for _, want := range a.Attestations {
		typeURI, err := predicateTypeURI(want.PredicateType)
		if err != nil {
			return nil, fmt.Errorf("attestation %s: %w", want.Name, err)
		}
		var found []string
		var refusals []string
		for _, s := range ok {
			got := s.res.Statement.GetPredicateType()
			found = append(found, got)
			if got != typeURI {
				continue
			}
			if c := want.Condition(); c != nil {
				st, err := protojson.Marshal(s.res.Statement)
				if err != nil {
					return nil, err
				}
				if err := c.Check(cmd.Context(), st); err != nil {
					refusals = append(refusals, err.Error())
					continue
				}
			}
			m.Attestations[want.Name] = append(m.Attestations[want.Name], policy.AttestationMatch{
				Signature: signatureOf(s), PredicateType: want.PredicateType, Digest: d.DigestStr()})
		}
		if len(m.Attestations[want.Name]) == 0 {
			if len(refusals) > 0 {
				return nil, fmt.Errorf("attestation %s: no %s attestation passes its policy: %s", want.Name, typeURI, strings.Join(refusals, "; "))
			}
			return nil, fmt.Errorf("attestation %s: no verified attestation of type %s (verified: %s)", want.Name, typeURI, strings.Join(found, ", "))
		}
	}
	return m, nil
}

// authorityVerifier is the verifier of a key or keyless authority.
func authorityVerifier(tr *root.TrustedRoot, a *policy.Authority) (*verifier, error) {
	if a.Key != nil {
		pub, err := client.ParsePublicKeyPEM([]byte(a.Key.Data))
		if err != nil {
			return nil, fmt.Errorf("key.data: %w", err)
		}
		return keyVerifier(tr, pub)
	}
	var ids []verify.CertificateIdentity
	for i, id := range a.Keyless.Identities {
		ci, err := verify.NewShortCertificateIdentity(id.Issuer, id.IssuerRegExp, id.Subject, id.SubjectRegExp)
		if err != nil {
			return nil, fmt.Errorf("keyless.identities[%d]: %w", i, err)
		}
		ids = append(ids, ci)
	}
	return identityVerifier(tr, ids, !a.Keyless.InsecureIgnoreSCT)
}

// signatureOf is what spec.policy sees of a verified signature, as
// policy-controller gives it: the signer and its GitHub claims, and an ID
// that is the SHA-256 of the bundle.
func signatureOf(s verifiedSig) policy.Signature {
	var sig policy.Signature
	if raw, err := s.b.MarshalJSON(); err == nil {
		sum := sha256.Sum256(raw)
		sig.ID = hex.EncodeToString(sum[:])
	}
	if c := s.res.Signature; c != nil && c.Certificate != nil {
		sig.Subject, sig.Issuer = c.Certificate.SubjectAlternativeName, c.Certificate.Issuer
		e := c.Certificate.Extensions
		sig.GithubWorkflowTrigger, sig.GithubWorkflowSHA, sig.GithubWorkflowName = e.GithubWorkflowTrigger, e.GithubWorkflowSHA, e.GithubWorkflowName
		sig.GithubWorkflowRepo, sig.GithubWorkflowRef = e.GithubWorkflowRepository, e.GithubWorkflowRef
	}
	return sig
}
