package identity

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// Principal is a verified identity, ready to be put in a certificate.
type Principal struct {
	// Issuer is the token's iss; Subject its sub.
	Issuer  string
	Subject string
	Type    Type
	// Challenges are the strings a proof of possession may sign, in the
	// order clients choose them: a verified email first, else sub.
	Challenges []string
	// Exactly one SAN is set.
	Email     string
	URI       *url.URL
	OtherName string // username: "<sub>!<subject_domain>"
	Extensions
}

// Identity is the SAN value, for logs and the audit record.
func (p *Principal) Identity() string {
	switch {
	case p.Email != "":
		return p.Email
	case p.URI != nil:
		return p.URI.String()
	default:
		return p.OtherName
	}
}

// AuthError is a token that is not accepted; Msg says why, without secrets.
type AuthError struct{ Msg string }

func (e *AuthError) Error() string { return e.Msg }

func authErr(format string, args ...any) error { return &AuthError{Msg: fmt.Sprintf(format, args...)} }

// BusyError is a token that could not be checked now for lack of capacity
// (too many of its wildcard's issuers being discovered at once): not a
// verdict on the token. The CA answers 503 with Retry-After.
type BusyError struct{ Msg string }

func (e *BusyError) Error() string { return e.Msg }

type claims map[string]any

func decodeClaims(payload []byte) (claims, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var c claims
	if err := dec.Decode(&c); err != nil {
		return nil, authErr("token claims are not a JSON object")
	}
	return c, nil
}

// str returns a claim as a string; numbers keep their JSON spelling.
func (c claims) str(key string) (string, bool) {
	switch v := c[key].(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case bool:
		if v {
			return "true", true
		}
		return "false", true
	}
	return "", false
}

// path follows a $.a.b path through nested objects.
func (c claims) path(p string) (string, bool) {
	var cur any = map[string]any(c)
	for _, part := range strings.Split(strings.TrimPrefix(p, "$."), ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return "", false
		}
		cur = m[part]
	}
	s, ok := cur.(string)
	return s, ok && s != ""
}

func (c claims) emailVerified() bool {
	switch v := c["email_verified"].(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}

// principalFor builds the principal for a verified token of an issuer.
// Policy refusals (a missing or unverified claim, an identity outside the
// issuer's domain) are *AuthError; claims that cannot be put in a
// certificate as they are (see validate.go) are *ClaimError naming them.
func principalFor(cfg *IssuerConfig, provider *CIProvider, c claims) (*Principal, error) {
	iss, _ := c.str("iss")
	sub, _ := c.str("sub")
	p := &Principal{Issuer: iss, Subject: sub, Type: cfg.Type, Extensions: Extensions{Issuer: iss, Subject: sub}}
	email, hasEmail := c.str("email")
	verified := hasEmail && email != "" && (c.emailVerified() || cfg.SkipEmailVerification)
	if verified {
		p.Challenges = append(p.Challenges, email)
	}
	if sub != "" {
		p.Challenges = append(p.Challenges, sub)
	}
	switch cfg.Type {
	case TypeEmail:
		if !hasEmail || email == "" {
			return nil, authErr("token from %s has no email claim", iss)
		}
		if !verified {
			return nil, authErr("email %s is not verified by %s (email_verified is not true)", email, iss)
		}
		if err := checkEmail(email); err != nil {
			return nil, claimErr("email", wantEmail, err)
		}
		p.Email = email
		p.Challenges = []string{email}
		if cfg.IssuerClaim != "" {
			v, ok := c.path(cfg.IssuerClaim)
			if !ok {
				return nil, authErr("token from %s lacks the issuer claim %s", iss, cfg.IssuerClaim)
			}
			if err := checkText(v, MaxValueBytes); err != nil {
				return nil, claimErr(strings.TrimPrefix(cfg.IssuerClaim, "$."), wantValue, err)
			}
			p.Extensions.Issuer = v
		}
	case TypeURI:
		u, err := checkURI(sub)
		if err != nil {
			return nil, claimErr("sub", wantURI, err)
		}
		if u.Scheme == "mailto" {
			return nil, authErr("sub %q is a mailto URI; an email issuer certifies emails", sub)
		}
		d, _ := url.Parse(cfg.SubjectDomain)
		if u.Scheme != d.Scheme || u.Host != d.Host {
			return nil, authErr("sub %q is outside the subject domain %s", sub, cfg.SubjectDomain)
		}
		p.URI = u
	case TypeUsername:
		if sub == "" || strings.Contains(sub, "!") || strings.Contains(sub, "@") {
			return nil, authErr("sub %q is not a username (no '!' or '@' allowed)", sub)
		}
		if err := checkText(sub, MaxValueBytes-len(cfg.SubjectDomain)-1); err != nil {
			return nil, claimErr("sub", "a valid username", err)
		}
		p.OtherName = sub + "!" + cfg.SubjectDomain
	case TypeKubernetes:
		k8s, _ := c["kubernetes.io"].(map[string]any)
		ns, _ := k8s["namespace"].(string)
		sa, _ := k8s["serviceaccount"].(map[string]any)
		name, _ := sa["name"].(string)
		if ns == "" || name == "" {
			return nil, authErr("kubernetes token lacks kubernetes.io namespace and serviceaccount name")
		}
		// Both become path segments of the SAN: a '/' or ".." in them
		// would name another service account.
		if err := checkHostname(ns, false); err != nil || len(ns) > MaxLabelBytes || strings.Contains(ns, ".") {
			return nil, claimErr("kubernetes.io.namespace", "a Kubernetes namespace (an RFC 1123 label)", orReason(err, "is not a single label"))
		}
		if err := checkHostname(name, false); err != nil {
			return nil, claimErr("kubernetes.io.serviceaccount.name", "a Kubernetes service account name (an RFC 1123 subdomain)", err)
		}
		p.URI = &url.URL{Scheme: "https", Host: "kubernetes.io", Path: "/namespaces/" + ns + "/serviceaccounts/" + name}
	case TypeSPIFFE:
		u, err := checkURI(sub)
		if err != nil {
			return nil, claimErr("sub", "a valid SPIFFE ID", err)
		}
		if u.Scheme != "spiffe" || u.Host == "" {
			return nil, authErr("sub %q is not a SPIFFE ID", sub)
		}
		if u.Port() != "" || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(u.Path, "/") {
			return nil, claimErr("sub", "a valid SPIFFE ID", errors.New("has a port, query, fragment or trailing '/'"))
		}
		if u.Host != cfg.SPIFFETrustDomain {
			return nil, authErr("SPIFFE ID %q is not in trust domain %s", sub, cfg.SPIFFETrustDomain)
		}
		p.URI = u
	case TypeEmailOrURI:
		if verified {
			if err := checkEmail(email); err != nil {
				return nil, claimErr("email", wantEmail, err)
			}
			p.Email = email
			p.Challenges = []string{email}
			break
		}
		if sub == "" {
			return nil, authErr("token from %s has neither a verified email nor a usable sub", iss)
		}
		// sub is path-escaped, so any sub makes a URI; only its length and
		// the issuer's URL can spoil it.
		u, err := checkURI(strings.TrimSuffix(iss, "/") + "/" + url.PathEscape(sub))
		if err != nil {
			return nil, &ClaimError{Claims: []string{"iss", "sub"}, Field: "URI <iss>/<sub>", Want: wantURI, Reason: err.Error()}
		}
		p.URI = u
	case TypeCIProvider:
		if err := applyCIProvider(p, provider, c); err != nil {
			return nil, err
		}
	}
	if sub == "" && cfg.Type != TypeEmail {
		return nil, authErr("token from %s has no sub claim", iss)
	}
	// iss and sub go into the issuer and token subject extensions whatever
	// the type (iss matched a configured issuer; it is checked all the same).
	if err := checkText(sub, MaxValueBytes); err != nil {
		return nil, claimErr("sub", wantValue, err)
	}
	if err := checkText(iss, MaxValueBytes); err != nil {
		return nil, claimErr("iss", wantValue, err)
	}
	return p, nil
}

func orReason(err error, reason string) error {
	if err != nil {
		return err
	}
	return errors.New(reason)
}

// applyCIProvider renders the SAN and extension templates. Each token
// claim a template uses is checked on its own first (so the error names
// it), then the rendered value as a whole.
func applyCIProvider(p *Principal, prov *CIProvider, c claims) error {
	data := map[string]string{}
	for k, v := range prov.DefaultTemplateValues {
		data[k] = v
	}
	fromToken := map[string]bool{}
	for k := range c {
		if v, ok := c.str(k); ok {
			data[k] = v
			fromToken[k] = true
		}
	}
	render := func(field, tmpl string) (string, []string, error) {
		t, err := parseTemplate(tmpl)
		if err != nil {
			return "", nil, err
		}
		var used []string
		for _, k := range templateKeys(t, tmpl) {
			if !fromToken[k] {
				continue // a configured default, checked at start-up
			}
			used = append(used, k)
			if err := checkText(data[k], MaxValueBytes); err != nil {
				return "", nil, claimErr(k, wantValue, err)
			}
		}
		if t == nil {
			v, ok := data[tmpl]
			if !ok {
				return "", nil, authErr("token from %s lacks claim %q needed for %s", p.Issuer, tmpl, field)
			}
			return v, used, nil
		}
		var b strings.Builder
		if err := t.Execute(&b, data); err != nil {
			return "", nil, authErr("token from %s does not fill the %s template: %v", p.Issuer, field, err)
		}
		return b.String(), used, nil
	}
	san, used, err := render("subject alternative name", prov.SubjectAlternativeNameTemplate)
	if err != nil {
		return err
	}
	u, err := checkURI(san)
	if err != nil {
		return &ClaimError{Claims: used, Field: "subject alternative name", Want: wantURI, Reason: err.Error()}
	}
	p.URI = u
	keys := make([]string, 0, len(prov.ExtensionTemplates))
	for k := range prov.ExtensionTemplates {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	p.Extensions.CI = map[string]string{}
	for _, k := range keys {
		v, used, err := render(k, prov.ExtensionTemplates[k])
		if err != nil {
			return err
		}
		if err := checkText(v, MaxValueBytes); err != nil {
			return &ClaimError{Claims: used, Field: "extension " + k, Want: wantValue, Reason: err.Error()}
		}
		p.Extensions.CI[k] = v
	}
	return nil
}
