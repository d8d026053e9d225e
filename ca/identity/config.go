// Package identity turns OIDC identity tokens into principals: which issuer
// is trusted for a token, whether the token verifies, and what identity
// (SAN, Sigstore extensions, proof-of-possession challenge) it carries.
package identity

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"text/template"
	"text/template/parse"
)

// Type is how an issuer's tokens map to certificate identities.
type Type string

// The issuer types.
const (
	TypeEmail      Type = "email"
	TypeURI        Type = "uri"
	TypeUsername   Type = "username"
	TypeKubernetes Type = "kubernetes"
	TypeSPIFFE     Type = "spiffe"
	TypeCIProvider Type = "ci-provider"
	// TypeEmailOrURI puts a verified email in an email SAN and otherwise
	// the URI <iss>/<sub> (what Fulcio's chainguard-identity type does); the
	// dev issuer uses it so both ?email= and ?sub= tokens work.
	TypeEmailOrURI Type = "email-or-uri"
)

// DefaultClientID is the audience tokens must carry unless configured otherwise.
const DefaultClientID = "sigstore"

// IssuerConfig is one trusted OIDC issuer (ca.issuers in signet.yaml).
type IssuerConfig struct {
	// URL is the exact issuer URL (the token's iss). Either URL or WildcardURL.
	URL string `yaml:"url" json:"url,omitempty"`
	// WildcardURL matches a family of issuers; each * stands for one
	// [-_a-zA-Z0-9]+ segment and the pattern is anchored at both ends.
	WildcardURL string `yaml:"wildcard_url" json:"wildcard_url,omitempty"`
	Type        Type   `yaml:"type" json:"type"`
	// ClientID is the audience tokens must contain (default sigstore).
	ClientID string `yaml:"client_id" json:"client_id,omitempty"`
	// CIProvider names the claim templates of a ci-provider issuer: a preset
	// (github-actions, gitlab-ci) or an entry of ca.ci_providers.
	CIProvider string `yaml:"ci_provider" json:"ci_provider,omitempty"`
	// SubjectDomain is required for uri (scheme://host) and username (a domain).
	SubjectDomain string `yaml:"subject_domain" json:"subject_domain,omitempty"`
	// SPIFFETrustDomain is required for spiffe.
	SPIFFETrustDomain string `yaml:"spiffe_trust_domain" json:"spiffe_trust_domain,omitempty"`
	// SkipEmailVerification accepts an email claim without email_verified
	// (Entra ID, ADFS).
	SkipEmailVerification bool `yaml:"skip_email_verification" json:"skip_email_verification,omitempty"`
	// IssuerClaim is a JSONPath-like $.a.b path to the claim put in the issuer
	// extension instead of iss (email issuers, e.g. Dex federated logins).
	IssuerClaim string `yaml:"issuer_claim" json:"issuer_claim,omitempty"`
	// CACert is a PEM file of CAs trusted for this issuer's discovery and JWKS.
	CACert string `yaml:"ca_cert" json:"ca_cert,omitempty"`
}

// CIProvider maps a CI system's token claims to the SAN and Sigstore
// extensions. Each template is Go text/template ({{ .claim }}, missing keys
// are errors) or a bare claim name; claims override DefaultTemplateValues.
type CIProvider struct {
	DefaultTemplateValues          map[string]string `yaml:"default_template_values"`
	ExtensionTemplates             map[string]string `yaml:"extension_templates"`
	SubjectAlternativeNameTemplate string            `yaml:"subject_alternative_name_template"`
}

// Presets are the CI providers Signet knows without configuration; they
// produce the same certificates as the public Fulcio's configuration.
func Presets() map[string]CIProvider {
	github := CIProvider{
		DefaultTemplateValues: map[string]string{"url": "https://github.com", "environment": ""},
		ExtensionTemplates: map[string]string{
			"github-workflow-trigger":                 "event_name",
			"github-workflow-sha":                     "sha",
			"github-workflow-name":                    "workflow",
			"github-workflow-repository":              "repository",
			"github-workflow-ref":                     "ref",
			"build-signer-uri":                        "{{ .url }}/{{ .job_workflow_ref }}",
			"build-signer-digest":                     "job_workflow_sha",
			"runner-environment":                      "runner_environment",
			"source-repository-uri":                   "{{ .url }}/{{ .repository }}",
			"source-repository-digest":                "sha",
			"source-repository-ref":                   "ref",
			"source-repository-identifier":            "repository_id",
			"source-repository-owner-uri":             "{{ .url }}/{{ .repository_owner }}",
			"source-repository-owner-identifier":      "repository_owner_id",
			"build-config-uri":                        "{{ .url }}/{{ .workflow_ref }}",
			"build-config-digest":                     "workflow_sha",
			"build-trigger":                           "event_name",
			"run-invocation-uri":                      "{{ .url }}/{{ .repository }}/actions/runs/{{ .run_id }}/attempts/{{ .run_attempt }}",
			"source-repository-visibility-at-signing": "repository_visibility",
			"deployment-environment":                  "environment",
		},
		SubjectAlternativeNameTemplate: "{{ .url }}/{{ .job_workflow_ref }}",
	}
	gitlab := CIProvider{
		DefaultTemplateValues: map[string]string{"url": "https://gitlab.com", "environment": ""},
		ExtensionTemplates: map[string]string{
			"build-signer-uri":                        "https://{{ .ci_config_ref_uri }}",
			"build-signer-digest":                     "ci_config_sha",
			"runner-environment":                      "runner_environment",
			"source-repository-uri":                   "{{ .url }}/{{ .project_path }}",
			"source-repository-digest":                "sha",
			"source-repository-ref":                   `refs/{{if eq .ref_type "branch"}}heads/{{ else }}tags/{{end}}{{ .ref }}`,
			"source-repository-identifier":            "project_id",
			"source-repository-owner-uri":             "{{ .url }}/{{ .namespace_path }}",
			"source-repository-owner-identifier":      "namespace_id",
			"build-config-uri":                        "https://{{ .ci_config_ref_uri }}",
			"build-config-digest":                     "ci_config_sha",
			"build-trigger":                           "pipeline_source",
			"run-invocation-uri":                      "{{ .url }}/{{ .project_path }}/-/jobs/{{ .job_id }}",
			"source-repository-visibility-at-signing": "project_visibility",
			"deployment-environment":                  "environment",
		},
		SubjectAlternativeNameTemplate: "https://{{ .ci_config_ref_uri }}",
	}
	return map[string]CIProvider{
		"github-actions": github, "github-workflow": github,
		"gitlab-ci": gitlab, "gitlab-pipeline": gitlab,
	}
}

// wildcardPattern compiles a wildcard issuer URL to an anchored regexp.
func wildcardPattern(w string) (*regexp.Regexp, error) {
	parts := strings.Split(w, "*")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.Compile("^" + strings.Join(parts, "[-_a-zA-Z0-9]+") + "$")
}

// validate checks one issuer and fills defaults.
func (c *IssuerConfig) validate(providers map[string]CIProvider) error {
	name := c.URL
	if name == "" {
		name = c.WildcardURL
	}
	if (c.URL == "") == (c.WildcardURL == "") {
		return fmt.Errorf("issuer %q: set exactly one of url and wildcard_url", name)
	}
	u, err := url.Parse(strings.ReplaceAll(name, "*", "x"))
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("issuer %q: not an http(s) URL", name)
	}
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	switch c.Type {
	case TypeEmail, TypeKubernetes, TypeEmailOrURI:
	case TypeURI:
		d, err := url.Parse(c.SubjectDomain)
		if c.SubjectDomain == "" || err != nil || d.Scheme == "" || d.Host == "" {
			return fmt.Errorf("issuer %q: type uri needs subject_domain as scheme://host", name)
		}
	case TypeUsername:
		if c.SubjectDomain == "" || strings.Contains(c.SubjectDomain, "://") {
			return fmt.Errorf("issuer %q: type username needs subject_domain as a bare domain", name)
		}
	case TypeSPIFFE:
		if c.SPIFFETrustDomain == "" {
			return fmt.Errorf("issuer %q: type spiffe needs spiffe_trust_domain", name)
		}
		if c.WildcardURL != "" {
			return fmt.Errorf("issuer %q: spiffe issuers cannot be wildcards", name)
		}
	case TypeCIProvider:
		p, ok := providers[c.CIProvider]
		if !ok {
			return fmt.Errorf("issuer %q: ci_provider %q is neither a preset (github-actions, gitlab-ci) nor in ca.ci_providers", name, c.CIProvider)
		}
		if err := p.validate(); err != nil {
			return fmt.Errorf("issuer %q: ci_provider %q: %w", name, c.CIProvider, err)
		}
	case "":
		return fmt.Errorf("issuer %q: type is required (email, uri, username, kubernetes, spiffe, ci-provider, email-or-uri)", name)
	default:
		return fmt.Errorf("issuer %q: unknown type %q (email, uri, username, kubernetes, spiffe, ci-provider, email-or-uri)", name, c.Type)
	}
	if c.IssuerClaim != "" && (c.Type != TypeEmail || !strings.HasPrefix(c.IssuerClaim, "$.")) {
		return fmt.Errorf("issuer %q: issuer_claim must be a $.path and only applies to email issuers", name)
	}
	return nil
}

func (p CIProvider) validate() error {
	if strings.TrimSpace(p.SubjectAlternativeNameTemplate) == "" {
		return errors.New("subject_alternative_name_template is required")
	}
	if _, err := parseTemplate(p.SubjectAlternativeNameTemplate); err != nil {
		return fmt.Errorf("subject_alternative_name_template: %w", err)
	}
	for k, v := range p.DefaultTemplateValues {
		// Defaults go into certificates like claims do.
		if err := checkText(v, MaxValueBytes); err != nil {
			return fmt.Errorf("default_template_values.%s %w", k, err)
		}
	}
	for k, v := range p.ExtensionTemplates {
		if _, ok := extensionFields[k]; !ok {
			return fmt.Errorf("extension_templates: unknown extension %q", k)
		}
		if _, err := parseTemplate(v); err != nil {
			return fmt.Errorf("extension_templates.%s: %w", k, err)
		}
	}
	return nil
}

func parseTemplate(s string) (*template.Template, error) {
	if !strings.Contains(s, "{{") {
		return nil, nil
	}
	return template.New("").Option("missingkey=error").Parse(s)
}

// templateKeys lists the data keys a template (or a bare claim name,
// where t is nil) reads, sorted, once each.
func templateKeys(t *template.Template, bare string) []string {
	if t == nil {
		return []string{bare}
	}
	seen := map[string]bool{}
	var walk func(parse.Node)
	walk = func(n parse.Node) {
		switch n := n.(type) {
		case *parse.ListNode:
			if n != nil {
				for _, c := range n.Nodes {
					walk(c)
				}
			}
		case *parse.ActionNode:
			walk(n.Pipe)
		case *parse.PipeNode:
			if n != nil {
				for _, c := range n.Cmds {
					walk(c)
				}
			}
		case *parse.CommandNode:
			for _, a := range n.Args {
				walk(a)
			}
		case *parse.FieldNode:
			seen[n.Ident[0]] = true
		case *parse.IfNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.RangeNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.WithNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		}
	}
	if t.Tree != nil {
		walk(t.Tree.Root)
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
