package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/spf13/cobra"
	"golang.org/x/term"
	"google.golang.org/protobuf/encoding/protojson"
)

// maxBundleBytes bounds a bundle read: a bundle holds a certificate chain,
// a log entry with its proof and a timestamp, a few KiB (an attestation's
// DSSE payload more); 16 MiB is far past any real one.
const maxBundleBytes = 16 << 20

// signerKeypair is a key the user holds (a key file) as the Keypair
// sigstore-go signs with: the key's default algorithm, and as hint the
// base64 SHA-256 of its public key, as sigstore-go's own keypairs.
type signerKeypair struct {
	key  crypto.Signer
	alg  signature.AlgorithmDetails
	hint []byte
}

func newSignerKeypair(key crypto.Signer) (*signerKeypair, error) {
	alg, err := signature.GetDefaultAlgorithmDetails(key.Public())
	if err != nil {
		return nil, fmt.Errorf("the key cannot sign here: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	return &signerKeypair{key: key, alg: alg, hint: []byte(base64.StdEncoding.EncodeToString(sum[:]))}, nil
}

func (k *signerKeypair) GetHashAlgorithm() protocommon.HashAlgorithm { return k.alg.GetProtoHashType() }
func (k *signerKeypair) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	return k.alg.GetSignatureAlgorithm()
}
func (k *signerKeypair) GetHint() []byte                { return k.hint }
func (k *signerKeypair) GetPublicKey() crypto.PublicKey { return k.key.Public() }

func (k *signerKeypair) GetKeyAlgorithm() string {
	switch k.alg.GetKeyType() {
	case signature.ECDSA:
		return "ECDSA"
	case signature.RSA:
		return "RSA"
	case signature.ED25519:
		return "ED25519"
	}
	return ""
}

func (k *signerKeypair) GetPublicKeyPem() (string, error) {
	der, err := x509.MarshalPKIXPublicKey(k.key.Public())
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// SignData signs data's digest (all of data for pure Ed25519) and returns
// the signature with what was signed, as sign.Keypair requires.
func (k *signerKeypair) SignData(_ context.Context, data []byte) ([]byte, []byte, error) {
	h := k.alg.GetHashType()
	signed := data
	if h != crypto.Hash(0) {
		d := h.New()
		d.Write(data)
		signed = d.Sum(nil)
	}
	sig, err := k.key.Sign(rand.Reader, signed, h)
	return sig, signed, err
}

// progressOn reports whether progress lines are wanted: stderr is a
// terminal (scripts and logs get only the result).
func progressOn(cmd *cobra.Command) bool {
	f, ok := cmd.ErrOrStderr().(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// confirm asks before something is written where it stays (the
// transparency log, a registry): yes skips the question; without a
// terminal the answer is no, and the error says how to say yes.
func confirm(cmd *cobra.Command, yes bool, what string) error {
	if yes {
		return nil
	}
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return fmt.Errorf("not on a terminal to ask, so nothing was done: pass --yes to go ahead. %s", what)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s.\nContinue? [y/N] ", what)
	var answer string
	fmt.Fscanln(cmd.InOrStdin(), &answer) //nolint:errcheck // no answer is no
	if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
		return errors.New("not confirmed: nothing was done")
	}
	return nil
}

// trustFor is the trusted root to verify with: --trusted-root, else the
// one signet init pinned for --server.
func trustFor(cmd *cobra.Command, path string) (*root.TrustedRoot, error) {
	if path != "" {
		return root.NewTrustedRootFromPath(path)
	}
	tr, err := pinnedForCommand(cmd)
	if errors.Is(err, errNothingPinned) {
		server, _ := cmd.Flags().GetString("server")
		return nil, fmt.Errorf("no trusted root for %s: pin the instance with signet init, or give --trusted-root", server)
	}
	return tr, err
}

// trustWithKey is tr plus pub as a trusted key, whatever hint a bundle
// gives it: key-signed bundles are checked against the key the user names.
func trustWithKey(tr *root.TrustedRoot, pub crypto.PublicKey) (root.TrustedMaterial, error) {
	verifier, err := signature.LoadDefaultVerifier(pub)
	if err != nil {
		return nil, err
	}
	return root.TrustedMaterialCollection{tr, root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
		return root.NewExpiringKey(verifier, time.Time{}, time.Time{}), nil
	})}, nil
}

// signingConfigFor is --signing-config, else the one signet init pinned.
func signingConfigFor(cmd *cobra.Command, path string) (*root.SigningConfig, error) {
	if path != "" {
		return root.NewSigningConfigFromPath(path)
	}
	server, _ := cmd.Flags().GetString("server")
	dir, _ := cmd.Flags().GetString("config-dir")
	in, err := loadInstance(dir)
	if err != nil {
		return nil, err
	}
	if in == nil || strings.TrimSuffix(server, "/") != in.Server {
		return nil, fmt.Errorf("no signing config for %s: pin the instance with signet init, or give --signing-config", server)
	}
	return root.NewSigningConfigFromPath(filepath.Join(dir, signingConfigFile))
}

// bundleOptions picks the services of the signing config valid now: a CA
// for keyless signing, every log and TSA its configuration asks for.
//
// With progress set, each step says what it does on it as it starts:
// sigstore-go gets the certificate, signs, timestamps, then logs.
func bundleOptions(ctx context.Context, sc *root.SigningConfig, tr root.TrustedMaterial, token string, progress io.Writer) (sign.BundleOptions, []string, error) {
	now := time.Now()
	// sigstore-go verifies the bundle against tr before returning it.
	opts := sign.BundleOptions{Context: ctx, TrustedRoot: tr}
	var used []string
	if token != "" {
		ca, err := root.SelectService(sc.FulcioCertificateAuthorityURLs(), sign.FulcioAPIVersions, now)
		if err != nil {
			return opts, nil, fmt.Errorf("the signing config names no CA usable now: %w", err)
		}
		opts.CertificateProvider = sign.NewFulcio(&sign.FulcioOptions{BaseURL: ca.URL})
		if progress != nil {
			opts.CertificateProvider = progressCA{opts.CertificateProvider, progress, ca.URL}
		}
		opts.CertificateProviderOptions = &sign.CertificateProviderOptions{IDToken: token}
		used = append(used, "certificate from "+ca.URL)
	}
	logs, err := root.SelectServices(sc.RekorLogURLs(), sc.RekorLogURLsConfig(), sign.RekorAPIVersions, now)
	if err != nil {
		return opts, nil, fmt.Errorf("the signing config names no transparency log usable now: %w", err)
	}
	var tsaURLs []string
	if tsas, err := root.SelectServices(sc.TimestampAuthorityURLs(), sc.TimestampAuthorityURLsConfig(), sign.TimestampAuthorityAPIVersions, now); err == nil {
		for _, t := range tsas {
			opts.TimestampAuthorities = append(opts.TimestampAuthorities, sign.NewTimestampAuthority(&sign.TimestampAuthorityOptions{URL: t.URL}))
			used = append(used, "timestamp from "+t.URL)
			tsaURLs = append(tsaURLs, t.URL)
		}
	}
	for _, l := range logs {
		var tl sign.Transparency = sign.NewRekor(&sign.RekorOptions{BaseURL: l.URL, Version: l.MajorAPIVersion})
		if progress != nil {
			tl = progressLog{tl, progress, l.URL, tsaURLs}
		}
		opts.TransparencyLogs = append(opts.TransparencyLogs, tl)
		used = append(used, "log "+l.URL)
	}
	return opts, used, nil
}

// progressCA and progressLog say on a terminal which step of a signature
// is under way (sigstore-go's Bundle makes them all in one call).
type progressCA struct {
	sign.CertificateProvider
	out io.Writer
	url string
}

func (p progressCA) GetCertificate(ctx context.Context, k sign.Keypair, o *sign.CertificateProviderOptions) ([]byte, error) {
	fmt.Fprintf(p.out, "Getting a certificate from %s\n", p.url)
	return p.CertificateProvider.GetCertificate(ctx, k, o)
}

type progressLog struct {
	sign.Transparency
	out  io.Writer
	url  string
	tsas []string // timestamped by these just before logging
}

func (p progressLog) GetTransparencyLogEntry(ctx context.Context, keyOrCert []byte, b *protobundle.Bundle) error {
	if len(p.tsas) > 0 {
		fmt.Fprintf(p.out, "Timestamped by %s\n", strings.Join(p.tsas, ", "))
	}
	fmt.Fprintf(p.out, "Recording the signature in the transparency log %s\n", p.url)
	return p.Transparency.GetTransparencyLogEntry(ctx, keyOrCert, b)
}

// signFlags are the flags of every command that signs.
type signFlags struct {
	bundlePath, keyPath, trustedRoot, signingConfig string
	yes                                             bool
	identity                                        identityFlags

	// loaded is what every signature of one command shares (trust, the
	// signing config, the key and its password prompt, the token), read
	// at the first.
	loaded *signSetup
}

type signSetup struct {
	tr       *root.TrustedRoot
	sc       *root.SigningConfig
	material root.TrustedMaterial
	keypair  sign.Keypair // the user's key; nil for keyless
	token    string
}

func (f *signFlags) setup(cmd *cobra.Command) (*signSetup, error) {
	if f.loaded != nil {
		return f.loaded, nil
	}
	tr, err := trustFor(cmd, f.trustedRoot)
	if err != nil {
		return nil, err
	}
	sc, err := signingConfigFor(cmd, f.signingConfig)
	if err != nil {
		return nil, err
	}
	st := &signSetup{tr: tr, sc: sc, material: tr}
	if f.keyPath != "" {
		key, err := loadSigner(cmd, f.keyPath)
		if err != nil {
			return nil, err
		}
		if st.keypair, err = newSignerKeypair(key); err != nil {
			return nil, err
		}
		if st.material, err = trustWithKey(tr, key.Public()); err != nil {
			return nil, err
		}
	} else if st.token, err = f.identity.get(cmd, sc); err != nil {
		return nil, err
	}
	f.loaded = st
	return st, nil
}

func (f *signFlags) add(cmd *cobra.Command) {
	f.addOptionalBundle(cmd)
	cmd.MarkFlagRequired("bundle") //nolint:errcheck
}

// addOptionalBundle adds the flags with --bundle optional (images keep the
// bundle in the registry; a copy on disk is extra).
func (f *signFlags) addOptionalBundle(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.bundlePath, "bundle", "", "where to write the Sigstore bundle")
	cmd.Flags().StringVar(&f.keyPath, "key", "", "sign with this private key instead of keyless: a key file or a pkcs11: URI")
	f.identity.add(cmd)
	cmd.Flags().StringVar(&f.trustedRoot, "trusted-root", "", "trusted_root.json to check the result with (default: the pinned instance's)")
	cmd.Flags().StringVar(&f.signingConfig, "signing-config", "", "signing_config.json naming the CA, log and TSA (default: the pinned instance's)")
	cmd.Flags().BoolVarP(&f.yes, "yes", "y", false, "do not ask before logging the signature")
}

// sign signs content (a file's bytes, or a DSSE statement about it) and
// writes its bundle: keyless or with --key, logged and timestamped by the
// services of the signing config, checked against the trusted root.
func (f *signFlags) sign(cmd *cobra.Command, file string, content sign.Content) (*bundle.Bundle, error) {
	st, err := f.setup(cmd)
	if err != nil {
		return nil, err
	}
	keypair, material, token, sc := st.keypair, st.material, st.token, st.sc
	if keypair == nil {
		// Keyless: a fresh key, and certificate, for each signature.
		if keypair, err = sign.NewEphemeralKeypair(nil); err != nil {
			return nil, err
		}
	}
	ctx, cancel := timeout(cmd)
	defer cancel()
	var progress io.Writer
	if progressOn(cmd) {
		progress = cmd.ErrOrStderr()
	}
	opts, used, err := bundleOptions(ctx, sc, material, token, progress)
	if err != nil {
		return nil, err
	}
	if err := confirm(cmd, f.yes, "This signature will be recorded in the transparency log ("+strings.Join(used, ", ")+"), where it stays, visible to everyone who reads the log"); err != nil {
		return nil, err
	}
	f.yes = true // asked once per command, however many things it signs
	if progress != nil {
		fmt.Fprintf(progress, "Signing %s\n", file)
	}
	pb, err := sign.Bundle(content, keypair, opts)
	if err != nil {
		return nil, fmt.Errorf("signing %s: %w", file, err)
	}
	if f.bundlePath != "" {
		out, err := protojson.Marshal(pb)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(f.bundlePath, out, 0o644); err != nil {
			return nil, err
		}
	}
	return bundle.NewBundle(pb)
}

func newSignBlobCommand() *cobra.Command {
	var f signFlags
	cmd := &cobra.Command{
		Use:   "sign-blob FILE --bundle OUT [--key KEY | --identity-token TOKEN]",
		Short: "Sign a file into a Sigstore bundle, keyless or with a key",
		Long: `sign-blob signs FILE and writes a Sigstore bundle (v0.3, as cosign v3 writes
it): keyless by default (a 10-minute certificate from the instance's CA for the
identity in --identity-token, SIGSTORE_ID_TOKEN or the CI job's own token, else
for the one you log in as: --oidc-flow), or with --key. The signature
is logged in the instance's transparency log and timestamped by its TSA, both
taken from the signing config signet init pinned (or --signing-config).

Logging makes the signature and the signer's identity visible to everyone who
reads the log: on a terminal signet asks first, --yes skips the question.`,
		Example: `  signet sign-blob app.tar.gz --bundle app.sigstore.json                  # log in in the browser
  signet sign-blob app.tar.gz --bundle app.sigstore.json --oidc-flow device # or with a code, over SSH
  signet sign-blob app.tar.gz --bundle app.sigstore.json --identity-token "$TOKEN"
  SIGNET_PASSWORD=... signet sign-blob app.tar.gz --bundle app.sigstore.json --key release.key --yes
  cosign verify-blob app.tar.gz --bundle app.sigstore.json --trusted-root ~/.config/signet/trusted_root.json \
    --certificate-identity alice@example.com --certificate-oidc-issuer https://issuer.example.com`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			b, err := f.sign(cmd, args[0], &sign.PlainData{Data: data})
			if err != nil {
				return err
			}
			return reportSigned(cmd, b, args[0], f.bundlePath)
		},
	}
	f.add(cmd)
	return cmd
}

// reportSigned says who signed and where it was logged.
func reportSigned(cmd *cobra.Command, b *bundle.Bundle, file, bundlePath string) error {
	who := "key"
	v := map[string]any{"file": file, "bundle": bundlePath}
	if vc, err := b.VerificationContent(); err == nil {
		if c := vc.Certificate(); c != nil {
			who = "certificate for " + strings.Join(append(c.EmailAddresses, uriStrings(c)...), ", ")
			v["certificate"] = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
		}
	}
	where := ""
	if entries, err := b.TlogEntries(); err == nil && len(entries) > 0 {
		where = fmt.Sprintf(", logged at index %d", entries[0].LogIndex())
		v["logIndex"] = entries[0].LogIndex()
	}
	stored := "bundle written to " + bundlePath
	if bundlePath == "" {
		stored = "stored in the registry"
	}
	return report(cmd, v, fmt.Sprintf("Signed %s with a %s%s; %s", file, who, where, stored))
}

func uriStrings(c *x509.Certificate) []string {
	var out []string
	for _, u := range c.URIs {
		out = append(out, u.String())
	}
	return out
}

// verifyFlags are the flags of every command that verifies a bundle.
type verifyFlags struct {
	bundlePath, keyPath, trustedRoot               string
	identity, identityRegexp, issuer, issuerRegexp string
	// github are the GitHub Actions claims Fulcio (and this CA's
	// github-actions preset) puts in certificates, as cosign's flags.
	github  certificate.Extensions
	offline bool
}

func (f *verifyFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.bundlePath, "bundle", "", "the Sigstore bundle (required)")
	cmd.MarkFlagRequired("bundle") //nolint:errcheck
	f.addPolicy(cmd)
	cmd.Flags().BoolVar(&f.offline, "offline", false, "verify with no network access (verification never uses the network)")
}

// addPolicy adds the flags saying whose signature to expect and what to
// trust, without --bundle (images carry their bundles).
func (f *verifyFlags) addPolicy(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.keyPath, "key", "", "PEM public key the bundle must be signed with (key-signed bundles)")
	cmd.Flags().StringVar(&f.trustedRoot, "trusted-root", "", "trusted_root.json (default: the pinned instance's)")
	cmd.Flags().StringVar(&f.identity, "certificate-identity", "", "expected signer: the certificate's email or URI")
	cmd.Flags().StringVar(&f.identityRegexp, "certificate-identity-regexp", "", "expected signer, as a regular expression")
	cmd.Flags().StringVar(&f.issuer, "certificate-oidc-issuer", "", "expected OIDC issuer of the signer's token")
	cmd.Flags().StringVar(&f.issuerRegexp, "certificate-oidc-issuer-regexp", "", "expected OIDC issuer, as a regular expression")
	cmd.Flags().StringVar(&f.github.GithubWorkflowTrigger, "certificate-github-workflow-trigger", "", "expected event that triggered the GitHub Actions workflow (e.g. push)")
	cmd.Flags().StringVar(&f.github.GithubWorkflowSHA, "certificate-github-workflow-sha", "", "expected commit the GitHub Actions workflow ran on")
	cmd.Flags().StringVar(&f.github.GithubWorkflowName, "certificate-github-workflow-name", "", "expected GitHub Actions workflow name")
	cmd.Flags().StringVar(&f.github.GithubWorkflowRepository, "certificate-github-workflow-repository", "", "expected GitHub repository (owner/name) of the workflow")
	cmd.Flags().StringVar(&f.github.GithubWorkflowRef, "certificate-github-workflow-ref", "", "expected git ref of the GitHub Actions run (e.g. refs/tags/v1)")
}

// verify checks the bundle for file with sigstore-go: the log entry and a
// time of signing always, then the signer (identity and issuer, with the
// SCT) or the key. A failure to verify is a *verifyError (exit 3).
func (f *verifyFlags) verify(cmd *cobra.Command, file string) (*verify.VerificationResult, *bundle.Bundle, error) {
	vr, err := f.prepare(cmd)
	if err != nil {
		return nil, nil, err
	}
	b, err := readBundle(f.bundlePath)
	if err != nil {
		return nil, nil, err
	}
	in, err := os.Open(file)
	if err != nil {
		return nil, nil, err
	}
	defer in.Close()
	res, err := vr.check(b, verify.WithArtifact(in))
	if err != nil {
		var ve *verifyError
		if errors.As(err, &ve) {
			err = &verifyError{fmt.Errorf("%s does not verify with %s: %w", file, f.bundlePath, ve.err)}
		}
		return nil, nil, err
	}
	return res, b, nil
}

// verifier is the flags' policy made ready: trust loaded, key read,
// identity compiled. Making it is where usage and trust problems show
// (exit 1); checking a bundle with it is where "does not verify" does.
type verifier struct {
	v        *verify.Verifier
	policies []verify.PolicyOption
}

func (f *verifyFlags) prepare(cmd *cobra.Command) (*verifier, error) {
	tr, err := trustFor(cmd, f.trustedRoot)
	if err != nil {
		return nil, err
	}
	if f.keyPath != "" {
		pub, err := readPublicKey(f.keyPath)
		if err != nil {
			return nil, err
		}
		vr, err := keyVerifier(tr, pub)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.keyPath, err)
		}
		return vr, nil
	}
	if (f.identity == "" && f.identityRegexp == "") || (f.issuer == "" && f.issuerRegexp == "") {
		return nil, errors.New("say whose signature to expect: --certificate-identity (or --certificate-identity-regexp) and --certificate-oidc-issuer (or --certificate-oidc-issuer-regexp), or --key for a key-signed bundle (for an image, or --policy FILE)")
	}
	san, err := verify.NewSANMatcher(f.identity, f.identityRegexp)
	if err != nil {
		return nil, err
	}
	iss, err := verify.NewIssuerMatcher(f.issuer, f.issuerRegexp)
	if err != nil {
		return nil, err
	}
	// Every extension given must match exactly; empty ones are not checked.
	id, err := verify.NewCertificateIdentity(san, iss, f.github)
	if err != nil {
		return nil, err
	}
	return identityVerifier(tr, []verify.CertificateIdentity{id}, true)
}

// keyVerifier verifies signatures by pub, logged and with a trusted time.
func keyVerifier(tr *root.TrustedRoot, pub crypto.PublicKey) (*verifier, error) {
	material, err := trustWithKey(tr, pub)
	if err != nil {
		return nil, err
	}
	v, err := verify.NewVerifier(material, verify.WithTransparencyLog(1), verify.WithObserverTimestamps(1))
	if err != nil {
		return nil, err
	}
	return &verifier{v: v, policies: []verify.PolicyOption{verify.WithKey()}}, nil
}

// identityVerifier verifies keyless signatures by any of ids, logged, with
// a trusted time, and (unless sct is false) the certificate's SCT.
func identityVerifier(tr *root.TrustedRoot, ids []verify.CertificateIdentity, sct bool) (*verifier, error) {
	opts := []verify.VerifierOption{verify.WithTransparencyLog(1), verify.WithObserverTimestamps(1)}
	if sct {
		opts = append(opts, verify.WithSignedCertificateTimestamps(1))
	}
	v, err := verify.NewVerifier(tr, opts...)
	if err != nil {
		return nil, err
	}
	vr := &verifier{v: v}
	for _, id := range ids {
		vr.policies = append(vr.policies, verify.WithCertificateIdentity(id))
	}
	return vr, nil
}

// check verifies b for the artifact; a failure is a *verifyError.
func (vr *verifier) check(b *bundle.Bundle, artifact verify.ArtifactPolicyOption) (*verify.VerificationResult, error) {
	res, err := vr.v.Verify(b, verify.NewPolicy(artifact, vr.policies...))
	if err != nil {
		return nil, &verifyError{err}
	}
	return res, nil
}

func newVerifyBlobCommand() *cobra.Command {
	var f verifyFlags
	cmd := &cobra.Command{
		Use:   "verify-blob FILE --bundle IN (--certificate-identity ID --certificate-oidc-issuer URL | --key PUB)",
		Short: "Verify a file's Sigstore bundle against the pinned trust",
		Long: `verify-blob checks a Sigstore bundle for FILE with sigstore-go: the signature,
the certificate's chain to the instance's CA and its SCT, the transparency log
entry and its inclusion proof, and the time of signing (from the log or a
timestamp authority) within the certificate's 10 minutes. A keyless bundle must
name the expected signer (--certificate-identity or its -regexp, and
--certificate-oidc-issuer or its -regexp); a key-signed one is checked with
--key. Trust comes from signet init (or --trusted-root); verification uses no
network (--offline states it).

Exit status 0: verified; 3: does not verify, with the reason; 1: could not run.`,
		Example: `  signet verify-blob app.tar.gz --bundle app.sigstore.json \
    --certificate-identity alice@example.com --certificate-oidc-issuer https://issuer.example.com
  signet verify-blob app.tar.gz --bundle app.sigstore.json --key release.pub
  signet verify-blob app.tar.gz --bundle app.sigstore.json --trusted-root trusted_root.json --offline \
    --certificate-identity-regexp '^https://github.com/acme/' --certificate-oidc-issuer https://token.actions.githubusercontent.com`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, b, err := f.verify(cmd, args[0])
			if err != nil {
				return err
			}
			return reportVerified(cmd, res, b, args[0])
		},
	}
	f.add(cmd)
	return cmd
}

func readBundle(path string) (*bundle.Bundle, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxBundleBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxBundleBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes: not a Sigstore bundle", path, maxBundleBytes)
	}
	b, err := parseBundle(data)
	if err != nil {
		return nil, &verifyError{fmt.Errorf("%s is not a Sigstore bundle: %w", path, err)}
	}
	return b, nil
}

// parseBundle reads untrusted bytes (a file, a registry layer) as a
// Sigstore bundle; sigstore-go checks its structure and version.
func parseBundle(data []byte) (*bundle.Bundle, error) {
	if len(data) > maxBundleBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxBundleBytes)
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	return &b, nil
}

// reportVerified says who signed, when, and where it is logged.
func reportVerified(cmd *cobra.Command, res *verify.VerificationResult, b *bundle.Bundle, file string) error {
	v, line := describeVerified(res, b)
	v["verified"], v["file"] = true, file
	return report(cmd, v, fmt.Sprintf("Verified OK: %s %s", file, line))
}

// describeVerified is a verified signature's signer, time and log index,
// for JSON and as the phrase "signed by ... at ..., log index N".
func describeVerified(res *verify.VerificationResult, b *bundle.Bundle) (map[string]any, string) {
	v := map[string]any{}
	who := "the given key"
	if res.Signature != nil && res.Signature.Certificate != nil {
		c := res.Signature.Certificate
		who = fmt.Sprintf("%s (issuer %s)", c.SubjectAlternativeName, c.Issuer)
		v["identity"], v["issuer"] = c.SubjectAlternativeName, c.Issuer
	}
	when := ""
	if len(res.VerifiedTimestamps) > 0 {
		t := res.VerifiedTimestamps[0].Timestamp.UTC()
		when = " at " + t.Format(time.RFC3339)
		v["signedAt"] = t
	}
	where := ""
	if entries, err := b.TlogEntries(); err == nil && len(entries) > 0 {
		where = fmt.Sprintf(", log index %d", entries[0].LogIndex())
		v["logIndex"] = entries[0].LogIndex()
	}
	return v, "signed by " + who + when + where
}
