package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"gopkg.in/yaml.v3"
)

// ClusterImagePolicy is policy-controller's document
// (policy.sigstore.dev/v1beta1 or v1alpha1, the same fields), as far as
// it applies outside Kubernetes. Fields that need a cluster (kms,
// secretRef, configMapRef, remote policies) are refused by Validate with
// a reason, never silently ignored; unknown fields are refused when
// parsing, as the CRD does.
type ClusterImagePolicy struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name        string            `yaml:"name"`
		Namespace   string            `yaml:"namespace"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Spec struct {
		Images      []struct{ Glob string } `yaml:"images"`
		Authorities []Authority             `yaml:"authorities"`
		Mode        string                  `yaml:"mode"`
		Policy      *Body                   `yaml:"policy"`
		Match       []map[string]any        `yaml:"match"` // Kubernetes resources: no meaning here
	} `yaml:"spec"`

	condition *Condition // Spec.Policy compiled
}

// Authority is one way an image may satisfy a policy.
type Authority struct {
	Name string `yaml:"name"`
	Key  *struct {
		Data          string         `yaml:"data"`
		KMS           string         `yaml:"kms"`
		SecretRef     map[string]any `yaml:"secretRef"`
		HashAlgorithm string         `yaml:"hashAlgorithm"`
	} `yaml:"key"`
	Keyless *struct {
		URL               string         `yaml:"url"`
		CACert            map[string]any `yaml:"ca-cert"`
		TrustRootRef      string         `yaml:"trustRootRef"`
		InsecureIgnoreSCT bool           `yaml:"insecureIgnoreSCT"`
		Identities        []Identity     `yaml:"identities"`
	} `yaml:"keyless"`
	Static *struct {
		Action  string `yaml:"action"`
		Message string `yaml:"message"`
	} `yaml:"static"`
	Source []struct {
		OCI                  string           `yaml:"oci"`
		SignaturePullSecrets []map[string]any `yaml:"signaturePullSecrets"`
		TagPrefix            string           `yaml:"tagPrefix"`
	} `yaml:"source"`
	CTLog *struct {
		URL          string `yaml:"url"`
		TrustRootRef string `yaml:"trustRootRef"`
	} `yaml:"ctlog"`
	RFC3161Timestamp *struct {
		TrustRootRef string `yaml:"trustRootRef"`
	} `yaml:"rfc3161timestamp"`
	Attestations    []Attestation `yaml:"attestations"`
	SignatureFormat string        `yaml:"signatureFormat"`
}

// Identity is a keyless signer: issuer and subject, each exact or a
// regular expression (unanchored, as cosign matches them).
type Identity struct {
	Issuer        string `yaml:"issuer"`
	Subject       string `yaml:"subject"`
	IssuerRegExp  string `yaml:"issuerRegExp"`
	SubjectRegExp string `yaml:"subjectRegExp"`
}

// Attestation is an attestation an authority requires: one of this
// predicate type, verified, that passes the policy if there is one.
type Attestation struct {
	Name          string `yaml:"name"`
	PredicateType string `yaml:"predicateType"`
	Policy        *Body  `yaml:"policy"`

	condition *Condition // Policy compiled
}

// Condition is the attestation's compiled policy (nil: none).
func (a *Attestation) Condition() *Condition { return a.condition }

// Body is an inline Rego or CUE policy.
type Body struct {
	Type              string         `yaml:"type"`
	Data              string         `yaml:"data"`
	ConfigMapRef      map[string]any `yaml:"configMapRef"`
	Remote            map[string]any `yaml:"remote"`
	FetchConfigFile   bool           `yaml:"fetchConfigFile"`
	IncludeSpec       bool           `yaml:"includeSpec"`
	IncludeObjectMeta bool           `yaml:"includeObjectMeta"`
	IncludeTypeMeta   bool           `yaml:"includeTypeMeta"`
}

// Limits on a policy file.
const (
	MaxPolicies    = 64
	MaxAuthorities = 32
)

// Parse reads a file of ClusterImagePolicy documents (YAML, separated by
// ---), checking each as policy-controller would and refusing what
// cannot apply outside a cluster. Errors name the document and field.
func Parse(ctx context.Context, data []byte) ([]*ClusterImagePolicy, error) {
	if len(data) > MaxPolicyBytes {
		return nil, fmt.Errorf("the policy file is larger than %d bytes", MaxPolicyBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var out []*ClusterImagePolicy
	for i := 1; ; i++ {
		var p ClusterImagePolicy
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if p.Kind == "" && p.APIVersion == "" && p.Metadata.Name == "" {
			continue // an empty document
		}
		if len(out) == MaxPolicies {
			return nil, fmt.Errorf("more than %d policies in one file", MaxPolicies)
		}
		if err := p.validate(ctx); err != nil {
			where := p.Metadata.Name
			if where == "" {
				where = fmt.Sprintf("document %d", i)
			}
			return nil, fmt.Errorf("policy %s: %w", where, err)
		}
		out = append(out, &p)
	}
	if len(out) == 0 {
		return nil, errors.New("the file holds no ClusterImagePolicy")
	}
	return out, nil
}

func (p *ClusterImagePolicy) validate(ctx context.Context) error {
	switch p.APIVersion {
	case "policy.sigstore.dev/v1beta1", "policy.sigstore.dev/v1alpha1":
	default:
		return fmt.Errorf("apiVersion %q: want policy.sigstore.dev/v1beta1 (or v1alpha1)", p.APIVersion)
	}
	if p.Kind != "ClusterImagePolicy" {
		return fmt.Errorf("kind %q: want ClusterImagePolicy", p.Kind)
	}
	if p.Metadata.Name == "" {
		return errors.New("metadata.name is required")
	}
	if len(p.Spec.Images) == 0 {
		return errors.New("spec.images: at least one glob is required")
	}
	for i, im := range p.Spec.Images {
		if _, err := compileGlob(im.Glob); err != nil {
			return fmt.Errorf("spec.images[%d].glob: %w", i, err)
		}
	}
	switch p.Spec.Mode {
	case "":
		p.Spec.Mode = "enforce"
	case "enforce", "warn":
	default:
		return fmt.Errorf("spec.mode %q: use enforce or warn", p.Spec.Mode)
	}
	if len(p.Spec.Authorities) == 0 {
		return errors.New("spec.authorities: at least one is required")
	}
	if len(p.Spec.Authorities) > MaxAuthorities {
		return fmt.Errorf("spec.authorities: more than %d", MaxAuthorities)
	}
	for i := range p.Spec.Authorities {
		a := &p.Spec.Authorities[i]
		if a.Name == "" {
			a.Name = fmt.Sprintf("authority-%d", i)
		}
		if err := a.validate(ctx); err != nil {
			return fmt.Errorf("spec.authorities[%d] (%s): %w", i, a.Name, err)
		}
	}
	if b := p.Spec.Policy; b != nil {
		if b.FetchConfigFile || b.IncludeSpec || b.IncludeObjectMeta || b.IncludeTypeMeta {
			return errors.New("spec.policy: fetchConfigFile and the include flags read a Kubernetes resource or the image config, which signet does not give a policy")
		}
		if err := b.validate(); err != nil {
			return fmt.Errorf("spec.policy: %w", err)
		}
		c, err := b.compile(ctx, p.Metadata.Name+" spec.policy")
		if err != nil {
			return err
		}
		p.condition = c
	}
	return nil
}

func (a *Authority) validate(ctx context.Context) error {
	n := 0
	for _, set := range []bool{a.Key != nil, a.Keyless != nil, a.Static != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return errors.New("exactly one of key, keyless or static is required")
	}
	if a.Static != nil {
		if a.Static.Action != "pass" && a.Static.Action != "fail" {
			return fmt.Errorf("static.action %q: use pass or fail", a.Static.Action)
		}
		if len(a.Attestations) > 0 || len(a.Source) > 0 || a.CTLog != nil || a.RFC3161Timestamp != nil {
			return errors.New("static cannot be combined with attestations, source, ctlog or rfc3161timestamp")
		}
		return nil
	}
	if k := a.Key; k != nil {
		switch {
		case k.KMS != "" || k.SecretRef != nil:
			return errors.New("key: kms and secretRef are resolved by the cluster's controller; give the PEM public key in key.data")
		case k.Data == "":
			return errors.New("key.data (a PEM public key) is required")
		case k.HashAlgorithm != "" && k.HashAlgorithm != "sha256":
			return fmt.Errorf("key.hashAlgorithm %q: signet verifies sha256 signatures", k.HashAlgorithm)
		}
	}
	if k := a.Keyless; k != nil {
		if k.CACert != nil {
			return errors.New("keyless.ca-cert: signet verifies against the pinned trusted root (signet init, or --trusted-root); remove ca-cert")
		}
		if len(k.Identities) == 0 {
			return errors.New("keyless.identities: at least one is required")
		}
		for i, id := range k.Identities {
			if (id.Issuer == "") == (id.IssuerRegExp == "") || (id.Subject == "") == (id.SubjectRegExp == "") {
				return fmt.Errorf("keyless.identities[%d]: give issuer or issuerRegExp, and subject or subjectRegExp (one of each)", i)
			}
			for _, re := range []string{id.IssuerRegExp, id.SubjectRegExp} {
				if _, err := regexp.Compile(re); err != nil {
					return fmt.Errorf("keyless.identities[%d]: %w", i, err)
				}
			}
		}
	}
	if len(a.Source) > 1 {
		return errors.New("source: at most one")
	}
	if len(a.Source) == 1 {
		s := a.Source[0]
		if s.TagPrefix != "" {
			return errors.New("source.tagPrefix: not supported by signet")
		}
		if _, err := name.NewRepository(s.OCI); err != nil {
			return fmt.Errorf("source.oci %q: %w", s.OCI, err)
		}
	}
	switch a.SignatureFormat {
	case "", "legacy", "bundle":
	default:
		return fmt.Errorf("signatureFormat %q: use legacy or bundle", a.SignatureFormat)
	}
	for i := range a.Attestations {
		at := &a.Attestations[i]
		if at.Name == "" || at.PredicateType == "" {
			return fmt.Errorf("attestations[%d]: name and predicateType are required", i)
		}
		if at.Policy != nil {
			if at.Policy.FetchConfigFile || at.Policy.IncludeSpec || at.Policy.IncludeObjectMeta || at.Policy.IncludeTypeMeta {
				return fmt.Errorf("attestations[%d].policy: the include flags are for spec.policy only", i)
			}
			if err := at.Policy.validate(); err != nil {
				return fmt.Errorf("attestations[%d].policy: %w", i, err)
			}
			c, err := at.Policy.compile(ctx, a.Name+" attestation "+at.Name)
			if err != nil {
				return err
			}
			at.condition = c
		}
	}
	return nil
}

func (b *Body) validate() error {
	if b.Type != "cue" && b.Type != "rego" {
		return fmt.Errorf("type %q: use cue or rego", b.Type)
	}
	if b.ConfigMapRef != nil || b.Remote != nil {
		return errors.New("configMapRef and remote policies are resolved by the cluster's controller; give the policy inline in data")
	}
	if b.Data == "" {
		return errors.New("data (the policy itself) is required")
	}
	return nil
}

// compile compiles a body's policy: Rego as policy-controller evaluates it
// (package sigstore, isCompliant), or CUE.
func (b *Body) compile(ctx context.Context, name string) (*Condition, error) {
	return Compile(ctx, name, b.Type, b.Data, PolicyControllerQuery)
}

// globChars are those policy-controller allows in a glob.
var globChars = regexp.MustCompile(`^[a-zA-Z0-9\-_:/*.@]+$`)

// compileGlob turns an images[].glob into the regular expression
// policy-controller matches (its pkg/apis/glob): '**' any characters,
// '*' any but '/', anchored; a bare '*' or '*/*' means Docker Hub.
func compileGlob(glob string) (*regexp.Regexp, error) {
	switch glob {
	case "*":
		glob = "index.docker.io/library/*"
	case "*/*":
		glob = "index.docker.io/*/*"
	}
	if !globChars.MatchString(glob) {
		return nil, fmt.Errorf("%q: a glob has letters, digits and - _ : / * . @ only", glob)
	}
	var re strings.Builder
	re.WriteString("^")
	for i := 0; i < len(glob); i++ {
		switch {
		case strings.HasPrefix(glob[i:], "**"):
			re.WriteString(".*")
			i++
		case glob[i] == '*':
			re.WriteString("[^/]*")
		default:
			re.WriteString(regexp.QuoteMeta(glob[i : i+1]))
		}
	}
	re.WriteString("$")
	return regexp.Compile(re.String())
}

// Matches reports whether the policy applies to an image, given as any of
// its references (the one the user gave, and the digest it resolved to):
// policy-controller's webhook matches the digest reference, its tester
// the reference given, each normalized (index.docker.io/library/...,
// :latest).
func (p *ClusterImagePolicy) Matches(refs ...name.Reference) bool {
	for _, im := range p.Spec.Images {
		re, err := compileGlob(im.Glob)
		if err != nil {
			continue // refused by Parse
		}
		for _, r := range refs {
			if re.MatchString(r.Name()) {
				return true
			}
		}
	}
	return false
}

// Match is what verified for one authority, in the shape policy-controller
// gives spec.policy as input.authorityMatches.<authority name>.
type Match struct {
	Signatures   []Signature                   `json:"signatures,omitempty"`
	Attestations map[string][]AttestationMatch `json:"attestations,omitempty"`
	Static       bool                          `json:"static,omitempty"`
}

// Signature is one verified signature: its signer, and for GitHub Actions
// the workflow claims of its certificate.
type Signature struct {
	ID                    string `json:"id,omitempty"`
	Subject               string `json:"subject,omitempty"`
	Issuer                string `json:"issuer,omitempty"`
	GithubWorkflowTrigger string `json:"githubWorkflowTrigger,omitempty"`
	GithubWorkflowSHA     string `json:"githubWorkflowSha,omitempty"`
	GithubWorkflowName    string `json:"githubWorkflowName,omitempty"`
	GithubWorkflowRepo    string `json:"githubWorkflowRepo,omitempty"`
	GithubWorkflowRef     string `json:"githubWorkflowRef,omitempty"`
}

// AttestationMatch is one verified attestation that passed its policy.
type AttestationMatch struct {
	Signature
	PredicateType string `json:"predicateType"`
	Digest        string `json:"digest,omitempty"`
}

// Decision is the outcome of one policy for one image.
type Decision struct {
	Policy  string            // metadata.name
	Warn    bool              // spec.mode warn: a failure is reported, not enforced
	Matches map[string]*Match // the authorities that passed, by name
	Err     error             // nil: the policy is satisfied
}

// Evaluate applies the policy: check verifies one authority against the
// image (nil error: it passed, with what verified); the policy is
// satisfied when at least one authority passes and spec.policy, if any,
// allows the matches.
func (p *ClusterImagePolicy) Evaluate(ctx context.Context, check func(*Authority) (*Match, error)) Decision {
	d := Decision{Policy: p.Metadata.Name, Warn: p.Spec.Mode == "warn", Matches: map[string]*Match{}}
	var reasons []string
	for i := range p.Spec.Authorities {
		a := &p.Spec.Authorities[i]
		if a.Static != nil {
			if a.Static.Action == "pass" {
				d.Matches[a.Name] = &Match{Static: true}
				continue
			}
			msg := a.Static.Message
			if msg == "" {
				msg = "disallowed by static policy"
			}
			reasons = append(reasons, fmt.Sprintf("authority %s: %s", a.Name, msg))
			continue
		}
		m, err := check(a)
		if err != nil {
			reasons = append(reasons, fmt.Sprintf("authority %s: %v", a.Name, err))
			continue
		}
		d.Matches[a.Name] = m
	}
	if len(d.Matches) == 0 {
		d.Err = fmt.Errorf("no authority of policy %s is satisfied:\n    %s", p.Metadata.Name, strings.Join(reasons, "\n    "))
		return d
	}
	if p.condition != nil {
		input, err := json.Marshal(map[string]any{"authorityMatches": d.Matches})
		if err != nil {
			d.Err = err
			return d
		}
		if err := p.condition.Check(ctx, input); err != nil {
			d.Err = fmt.Errorf("policy %s: %w", p.Metadata.Name, err)
		}
	}
	return d
}
