package monitor

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	pgpecdsa "github.com/ProtonMail/go-crypto/openpgp/ecdsa"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"golang.org/x/crypto/ssh"

	"github.com/signet-dev/signet/types/pki"
)

// Signer is who signed a log entry, as far as the entry says: a key, and
// for a certificate the identity Fulcio (or Signet's CA) put in it.
type Signer struct {
	KeySHA256 string   `json:"key_sha256"` // of the PKIX public key
	Emails    []string `json:"emails,omitempty"`
	URIs      []string `json:"uris,omitempty"`
	// OtherSANs are the certificate's other SANs (DNS, IP, otherName
	// usernames), matched by san_regexps.
	OtherSANs []string `json:"other_sans,omitempty"`
	Issuer    string   `json:"oidc_issuer,omitempty"`
	// Repository is the source repository (GitHub/GitLab workflows).
	Repository string `json:"source_repository,omitempty"`
	Subject    string `json:"certificate_subject,omitempty"`
	// Workflow are a CI workflow's claims the CA put in the certificate
	// (event, ref, commit, workflow): what was built, from what.
	Workflow *Workflow `json:"workflow,omitempty"`
}

// Workflow is a CI run as the certificate's Fulcio extensions describe it.
type Workflow struct {
	Trigger   string `json:"trigger,omitempty"`
	Ref       string `json:"ref,omitempty"`
	SHA       string `json:"sha,omitempty"`
	Name      string `json:"name,omitempty"`
	BuildURI  string `json:"build_config_uri,omitempty"`
	RunnerEnv string `json:"runner_environment,omitempty"`
}

// Entry is what the monitor reads from one log entry.
type Entry struct {
	Kind    string   `json:"kind"`
	Signers []Signer `json:"signers"`
}

// Parse reads a log entry's canonical body (hashedrekord or dsse v0.0.1,
// rekord with an x509, ssh, pgp or minisign key, cose, intoto 0.0.1
// and 0.0.2, hashedrekord 0.0.2 of the Rekor v2 log)
// for its signers. Other kinds
// have none the monitor can read.
func Parse(body []byte) (Entry, error) {
	var head struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
		Spec       struct {
			HashedRekordV002 *struct {
				Signature struct {
					Verifier struct {
						PublicKey *struct {
							RawBytes []byte `json:"rawBytes"`
						} `json:"publicKey"`
						X509Certificate *struct {
							RawBytes []byte `json:"rawBytes"`
						} `json:"x509Certificate"`
					} `json:"verifier"`
				} `json:"signature"`
			} `json:"hashedRekordV002"`
			Signature struct {
				Format    string `json:"format"` // rekord's PKI format
				PublicKey struct {
					Content string `json:"content"`
				} `json:"publicKey"`
			} `json:"signature"`
			Signatures []struct {
				Verifier string `json:"verifier"`
			} `json:"signatures"`
			// cose and intoto 0.0.1: one key.
			PublicKey string `json:"publicKey"`
			// intoto 0.0.2: a key per signature.
			Content struct {
				Envelope struct {
					Signatures []struct {
						PublicKey string `json:"publicKey"`
					} `json:"signatures"`
				} `json:"envelope"`
			} `json:"content"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		return Entry{}, fmt.Errorf("entry body: %w", err)
	}
	e := Entry{Kind: head.Kind}
	var verifiers []string
	switch {
	case head.Kind == "hashedrekord" && head.APIVersion == "0.0.2":
		// The verifier is DER (a PKIX key or a certificate): as PEM, it is
		// read as the other versions' verifiers are.
		v := head.Spec.HashedRekordV002
		if v == nil {
			return e, errors.New("hashedrekord 0.0.2 entry without hashedRekordV002")
		}
		block := &pem.Block{Type: "PUBLIC KEY"}
		switch {
		case v.Signature.Verifier.X509Certificate != nil:
			block.Type, block.Bytes = "CERTIFICATE", v.Signature.Verifier.X509Certificate.RawBytes
		case v.Signature.Verifier.PublicKey != nil:
			block.Bytes = v.Signature.Verifier.PublicKey.RawBytes
		default:
			return e, errors.New("hashedrekord 0.0.2 entry without a verifier")
		}
		verifiers = []string{base64.StdEncoding.EncodeToString(pem.EncodeToMemory(block))}
	case head.Kind == "hashedrekord", head.Kind == "rekord" && head.Spec.Signature.Format == "x509":
		verifiers = []string{head.Spec.Signature.PublicKey.Content}
	case head.Kind == "rekord" && head.Spec.Signature.Format == "ssh":
		s, err := sshSigner(head.Spec.Signature.PublicKey.Content)
		if err != nil {
			return e, fmt.Errorf("rekord entry: %w", err)
		}
		e.Signers = []Signer{s}
		return e, nil
	case head.Kind == "rekord" && head.Spec.Signature.Format == "minisign":
		s, err := minisignSigner(head.Spec.Signature.PublicKey.Content)
		if err != nil {
			return e, fmt.Errorf("rekord entry: %w", err)
		}
		e.Signers = []Signer{s}
		return e, nil
	case head.Kind == "rekord" && head.Spec.Signature.Format == "pgp":
		signers, err := pgpSigners(head.Spec.Signature.PublicKey.Content)
		if err != nil {
			return e, fmt.Errorf("rekord entry: %w", err)
		}
		e.Signers = signers
		return e, nil
	case head.Kind == "dsse":
		for _, s := range head.Spec.Signatures {
			verifiers = append(verifiers, s.Verifier)
		}
	case head.Kind == "cose", head.Kind == "intoto" && head.APIVersion == "0.0.1":
		verifiers = []string{head.Spec.PublicKey}
	case head.Kind == "intoto":
		for _, s := range head.Spec.Content.Envelope.Signatures {
			verifiers = append(verifiers, s.PublicKey)
		}
	default:
		return e, nil
	}
	for _, v := range verifiers {
		s, err := signer(v)
		if err != nil {
			return e, fmt.Errorf("%s entry: %w", head.Kind, err)
		}
		e.Signers = append(e.Signers, s)
	}
	return e, nil
}

// signer reads a verifier (base64 of a PEM key, certificate or chain) as
// the log's entry types read it (types/pki).
func signer(b64 string) (Signer, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return Signer{}, fmt.Errorf("verifier is not base64: %w", err)
	}
	v, err := pki.ParseVerifier(raw)
	if err != nil {
		return Signer{}, err
	}
	spki, err := x509.MarshalPKIXPublicKey(v.Key)
	if err != nil {
		return Signer{}, fmt.Errorf("verifier key: %w", err)
	}
	sum := sha256.Sum256(spki)
	s := Signer{KeySHA256: hex.EncodeToString(sum[:])}
	if len(v.Certs) == 0 {
		return s, nil
	}
	cert := v.Certs[0]
	s.Emails = cert.EmailAddresses
	for _, u := range cert.URIs {
		s.URIs = append(s.URIs, u.String())
	}
	s.OtherSANs = slices.DeleteFunc(v.Subjects(), func(san string) bool {
		return slices.Contains(s.Emails, san) || slices.Contains(s.URIs, san)
	})
	s.Subject = cert.Subject.String()
	// An extension that does not parse is the entry's problem, reported
	// with it rather than passed over: a watched issuer could hide there.
	summary, err := certificate.SummarizeCertificate(cert)
	if err != nil {
		return Signer{}, fmt.Errorf("verifier certificate extensions: %w", err)
	}
	s.Issuer = summary.Issuer
	s.Repository = summary.SourceRepositoryURI
	w := Workflow{Trigger: summary.BuildTrigger, Ref: summary.SourceRepositoryRef, SHA: summary.SourceRepositoryDigest,
		BuildURI: summary.BuildConfigURI, RunnerEnv: summary.RunnerEnvironment}
	if w.Trigger == "" {
		w.Trigger = summary.GithubWorkflowTrigger
	}
	if w.Ref == "" {
		w.Ref = summary.GithubWorkflowRef
	}
	if w.SHA == "" {
		w.SHA = summary.GithubWorkflowSHA
	}
	w.Name = summary.GithubWorkflowName
	if w != (Workflow{}) {
		s.Workflow = &w
	}
	return s, nil
}

// sshSigner reads an authorized_keys line (base64, as rekord logs it): its
// fingerprint is its PKIX form's, so one key_sha256 watches a key however
// it signs.
func sshSigner(b64 string) (Signer, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return Signer{}, fmt.Errorf("public key is not base64: %w", err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(raw)
	if err != nil {
		return Signer{}, fmt.Errorf("ssh public key: %w", err)
	}
	ck, ok := pub.(ssh.CryptoPublicKey)
	if !ok {
		return Signer{}, fmt.Errorf("ssh public key of type %s has no PKIX form", pub.Type())
	}
	spki, err := x509.MarshalPKIXPublicKey(ck.CryptoPublicKey())
	if err != nil {
		return Signer{}, fmt.Errorf("ssh public key: %w", err)
	}
	sum := sha256.Sum256(spki)
	return Signer{KeySHA256: hex.EncodeToString(sum[:])}, nil
}

// minisignSigner reads a minisign key as rekord logs it (the base64 of
// algorithm, key ID and Ed25519 key): its fingerprint is the Ed25519 key's
// PKIX form's, as Rekor fingerprints it.
func minisignSigner(b64 string) (Signer, error) {
	line, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return Signer{}, fmt.Errorf("public key is not base64: %w", err)
	}
	raw, err := base64.StdEncoding.DecodeString(string(line))
	if err != nil || len(raw) != 2+8+ed25519.PublicKeySize {
		return Signer{}, errors.New("not a minisign public key")
	}
	spki, err := x509.MarshalPKIXPublicKey(ed25519.PublicKey(raw[10:]))
	if err != nil {
		return Signer{}, err
	}
	sum := sha256.Sum256(spki)
	return Signer{KeySHA256: hex.EncodeToString(sum[:])}, nil
}

// pgpSigners reads an armored OpenPGP key (as rekord logs it): a signer
// per primary key, with its user IDs' emails, and the PKIX fingerprint
// when the key has a PKIX form (RSA, ECDSA; not PGP's EdDSA).
func pgpSigners(b64 string) ([]Signer, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("public key is not base64: %w", err)
	}
	keyring, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("PGP public key: %w", err)
	}
	var out []Signer
	for _, ent := range keyring {
		var s Signer
		if pub := pgpPKIX(ent.PrimaryKey.PublicKey); pub != nil {
			if spki, err := x509.MarshalPKIXPublicKey(pub); err == nil {
				sum := sha256.Sum256(spki)
				s.KeySHA256 = hex.EncodeToString(sum[:])
			}
		}
		for _, id := range ent.Identities {
			if id.UserId.Email != "" {
				s.Emails = append(s.Emails, id.UserId.Email)
			}
		}
		slices.Sort(s.Emails)
		out = append(out, s)
	}
	return out, nil
}

// pgpPKIX is an OpenPGP key's public key as Go's crypto has it: RSA
// already is; ProtonMail's NIST ECDSA keys are rebuilt from their point.
func pgpPKIX(pub any) any {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return k
	case *pgpecdsa.PublicKey:
		curves := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}
		if c, ok := curves[k.GetCurve().GetCurveName()]; ok {
			if e, err := ecdsa.ParseUncompressedPublicKey(c, k.MarshalPoint()); err == nil {
				return e
			}
		}
	}
	return nil
}

// Watch lists the identities and keys to report; an entry matches when any
// of its signers matches any item.
type Watch struct {
	// Emails are certificate email SANs, compared without case.
	Emails []string `yaml:"emails"`
	// SANRegexps match any email or URI SAN (Go syntax, unanchored).
	SANRegexps []string `yaml:"san_regexps"`
	// Issuers are OIDC issuer URLs, exactly.
	Issuers []string `yaml:"oidc_issuers"`
	// Repositories are source repository URLs
	// (https://github.com/owner/repo), exactly.
	Repositories []string `yaml:"source_repositories"`
	// KeySHA256 are SHA-256 fingerprints (hex) of PKIX public keys.
	KeySHA256 []string `yaml:"key_sha256"`
}

// Match is one watched item an entry's signer matched.
type Match struct {
	Rule  string `json:"rule"` // email, san_regexp, oidc_issuer, source_repository, key_sha256
	Value string `json:"value"`
}

// Matcher is a compiled Watch.
type Matcher struct {
	w   Watch
	res []*regexp.Regexp
}

// Compile checks w and prepares it for matching.
func (w Watch) Compile() (Matcher, error) {
	m := Matcher{w: w}
	m.w.Emails = make([]string, len(w.Emails))
	for i, e := range w.Emails {
		m.w.Emails[i] = strings.ToLower(e)
	}
	m.w.KeySHA256 = make([]string, len(w.KeySHA256))
	for i, k := range w.KeySHA256 {
		if b, err := hex.DecodeString(k); err != nil || len(b) != sha256.Size {
			return Matcher{}, fmt.Errorf("key_sha256 %q is not 64 hex digits", k)
		}
		m.w.KeySHA256[i] = strings.ToLower(k)
	}
	for _, r := range w.SANRegexps {
		re, err := regexp.Compile(r)
		if err != nil {
			return Matcher{}, fmt.Errorf("san_regexps: %w", err)
		}
		m.res = append(m.res, re)
	}
	if len(w.Emails)+len(w.SANRegexps)+len(w.Issuers)+len(w.Repositories)+len(w.KeySHA256) == 0 {
		return Matcher{}, errors.New("the watch list is empty: name emails, san_regexps, oidc_issuers, source_repositories or key_sha256")
	}
	return m, nil
}

// Match returns what of the watch list e's signers match.
func (m Matcher) Match(e Entry) []Match {
	var out []Match
	add := func(rule, value string) {
		if !slices.Contains(out, Match{rule, value}) {
			out = append(out, Match{rule, value})
		}
	}
	for _, s := range e.Signers {
		for _, email := range s.Emails {
			if slices.Contains(m.w.Emails, strings.ToLower(email)) {
				add("email", email)
			}
		}
		for _, re := range m.res {
			for _, san := range slices.Concat(s.Emails, s.URIs, s.OtherSANs) {
				if re.MatchString(san) {
					add("san_regexp", san)
				}
			}
		}
		if s.Issuer != "" && slices.Contains(m.w.Issuers, s.Issuer) {
			add("oidc_issuer", s.Issuer)
		}
		if s.Repository != "" && slices.Contains(m.w.Repositories, s.Repository) {
			add("source_repository", s.Repository)
		}
		if slices.Contains(m.w.KeySHA256, s.KeySHA256) {
			add("key_sha256", s.KeySHA256)
		}
	}
	return out
}
