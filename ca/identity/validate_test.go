package identity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"math/big"
	"net/mail"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestCheckEmail(t *testing.T) {
	for _, tt := range []struct {
		email, want string // want "" accepts
	}{
		{"alice@example.com", ""},
		{"Alice.Smith+tag@mail.example.co.uk", ""},
		{"o'brien!#$%&*/=?^_`{|}~-@example.com", ""},
		{"x@localhost", ""},
		{strings.Repeat("l", 64) + "@example.com", ""},
		{"a@" + strings.Repeat("d", 63) + ".com", ""},
		{"alice@example.com\nbob@evil.com", "contains a newline (U+000A) at byte 17"},
		{"alice@example.com, bob@evil.com", "contains a space at byte 18"},
		{"alice@example.com,bob@evil.com", "has more than one '@'"},
		{"alice,bob@example.com", `contains ',' at byte 5, which a local part cannot hold`},
		{"alice@example.com\x00bob", "contains a NUL (U+0000) at byte 17"},
		{"alice\r@example.com", "contains a carriage return (U+000D) at byte 5"},
		{"not-an-email", "has no '@'"},
		{"jöhn@example.com", "contains the non-ASCII character 'ö' (U+00F6) at byte 1; certificates hold these names in ASCII (IA5String)"},
		{"a\xffb@example.com", "is not valid UTF-8 (byte 1)"},
		{"alice@exa\u202emple.com", "contains the bidirectional control U+202E at byte 9"},
		{"", "is empty"},
		{"@example.com", "has nothing before the '@'"},
		{"alice@", "has a domain that is empty"},
		{".alice@example.com", "starts or ends with '.'"},
		{"alice.@example.com", "starts or ends with '.'"},
		{"al..ice@example.com", "holds '..'"},
		{`"alice"@example.com`, "quoted local part"},
		{strings.Repeat("l", 65) + "@example.com", "local part (before the '@') of 65 bytes, more than the 64 allowed"},
		{"a@" + strings.Repeat("d", 64) + ".com", "has a label of 64 bytes"},
		{strings.Repeat("l", 60) + "@" + strings.Repeat(strings.Repeat("d", 60)+".", 3) + "com", ""},
		{strings.Repeat("l", 64) + "@" + strings.Repeat(strings.Repeat("d", 62)+".", 3) + "c", "is 255 bytes, more than the 254 allowed"},
		{"alice@example.com.", "has a domain that has an empty label"},
		{"alice@example..com", "has a domain that has an empty label"},
		{"alice@-example.com", `has a label "-example" that starts or ends with '-'`},
		{"alice@ex_ample.com", `has a domain that contains '_'`},
		{"alice@[192.0.2.1]", "address literal"},
	} {
		t.Run(tt.email, func(t *testing.T) {
			err := checkEmail(tt.email)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if a, err := mail.ParseAddress(tt.email); err != nil || a.Address != tt.email {
					t.Fatalf("net/mail disagrees: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestCheckURI(t *testing.T) {
	for _, tt := range []struct {
		uri, want string
	}{
		{"https://github.com/octo/app/.github/workflows/release.yml@refs/tags/v1", ""},
		{"https://ci.example.com:8443/job/7?x=1#frag", ""},
		{"spiffe://example.org/ns/prod/sa/builder", ""},
		{"spiffe://my_trust.domain/x", ""},
		{"https://[2001:db8::1]/x", ""},
		{"https://192.0.2.1/x", ""},
		{"https://dev.example/dev/oidc/bot%201", ""},
		{"urn:example:animal", ""},
		{"https://example.com/" + strings.Repeat("a", MaxURIBytes-20), ""},
		{"https://example.com/" + strings.Repeat("a", MaxURIBytes-19), "is 2049 bytes, more than the 2048 allowed"},
		{"https://example.com/a b", "contains a space at byte 21"},
		{"https://example.com/a\nb", "contains a newline"},
		{"https://example.com/\x00", "contains a NUL"},
		{"https://exämple.com/", "non-ASCII character 'ä'"},
		{"https://example.com/<script>", `contains '<' at byte 20, which a URI cannot hold unescaped`},
		{"https://example.com/%zz", "does not start an escape"},
		{"https://example.com/%4", "does not start an escape"},
		{"example.com/path", "has no scheme"},
		{"/relative", "has no scheme"},
		{"1https://x/", "has no scheme"},
		{"", "is empty"},
		{"https://github.com@evil.example/x", "has userinfo"},
		{"https://user:pw@example.com/", "has userinfo"},
		{"https:///path", "has an empty host"},
		{"https://a..b/", "has a host that has an empty label"},
		{"https://example.com./", "has a host that has an empty label"},
		{"https://ex%41mple.com/", "does not parse"},
		{"https://example.com:port/", "does not parse"},
		{"HTTPS://example.com/", `is not in normal form: it would be written as "https://example.com/"`},
		{"https://[192.0.2.1]/", "does not parse: invalid IP-literal"},
		{"https://[fe80::1%25eth0]/", "is not an IPv6 address"},
	} {
		t.Run(tt.uri, func(t *testing.T) {
			u, err := checkURI(tt.uri)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if u.String() != tt.uri {
					t.Fatalf("parsed as %q", u)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestCheckText(t *testing.T) {
	for _, tt := range []struct {
		s, want string
	}{
		{"repo:octo/app:ref:refs/heads/main", ""},
		{"Release 🚀 — déploiement", ""},
		{"", ""},
		{strings.Repeat("x", MaxValueBytes), ""},
		{strings.Repeat("x", MaxValueBytes+1), "is 2049 bytes, more than the 2048 allowed"},
		{"main\x00evil", "contains a NUL (U+0000) at byte 4"},
		{"main\nevil", "contains a newline"},
		{"x\x7f", "the control character U+007F at byte 1"},
		{"x\u0085", "the control character U+0085 at byte 1"},
		{"safe\u202eexe.txt", "the bidirectional control U+202E at byte 4"},
		{"a\xc3", "is not valid UTF-8 (byte 1)"},
		{"a\uFFFDb", ""}, // what encoding/json makes of invalid UTF-8
	} {
		err := checkText(tt.s, MaxValueBytes)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("checkText(%q) = %v, want %q", tt.s, err, tt.want)
		}
	}
}

// Each malformed claim is a *ClaimError (400) whose message names the
// claim and says what is wrong; nothing of it reaches a principal.
func TestPrincipalRefusesMalformedClaims(t *testing.T) {
	const iss = "https://idp.example.com"
	base := func(extra map[string]any) claims {
		c := claims{"iss": iss, "sub": "subject-1"}
		for k, v := range extra {
			c[k] = v
		}
		return c
	}
	gh := func(k, v string) claims {
		c := base(githubClaims())
		c[k] = v
		return c
	}
	github := Presets()["github-actions"]
	emailCfg := IssuerConfig{Type: TypeEmail}
	emailOrURI := IssuerConfig{Type: TypeEmailOrURI}
	verified := func(e string) claims { return base(map[string]any{"email": e, "email_verified": true}) }
	k8s := func(ns, name string) claims {
		return base(map[string]any{"kubernetes.io": map[string]any{"namespace": ns, "serviceaccount": map[string]any{"name": name}}})
	}
	for _, tt := range []struct {
		name string
		cfg  IssuerConfig
		c    claims
		want string
	}{
		{"email newline", emailCfg, verified("alice@example.com\nbob@evil.com"), `token claim "email" is not a valid email address: contains a newline (U+000A) at byte 17`},
		{"email list", emailCfg, verified("alice@example.com, bob@evil.com"), `token claim "email" is not a valid email address: contains a space at byte 18`},
		{"email NUL", emailCfg, verified("alice@example.com\x00bob"), `token claim "email" is not a valid email address: contains a NUL (U+0000)`},
		{"email UTF-8", emailCfg, verified("jöhn@example.com"), `token claim "email" is not a valid email address: contains the non-ASCII character 'ö'`},
		{"email-or-uri newline", emailOrURI, verified("alice@example.com\nbob@evil.com"), `token claim "email" is not a valid email address: contains a newline`},
		{"email-or-uri list", emailOrURI, verified("alice@example.com, bob@evil.com"), `token claim "email" is not a valid email address: contains a space`},
		{"email-or-uri NUL", emailOrURI, verified("alice@example.com\x00bob"), `token claim "email" is not a valid email address: contains a NUL`},
		{"email-or-uri not an email", emailOrURI, verified("not-an-email"), `token claim "email" is not a valid email address: has no '@'`},
		{"email-or-uri UTF-8", emailOrURI, verified("jöhn@example.com"), `token claim "email" is not a valid email address: contains the non-ASCII character 'ö' (U+00F6)`},
		{"email-or-uri sub control", emailOrURI, base(map[string]any{"sub": "bot\x1b[31m"}), `token claim "sub" is not usable in a certificate: contains the control character U+001B at byte 3`},
		{"email-or-uri sub too long", emailOrURI, base(map[string]any{"sub": strings.Repeat("s", 2040)}), `the URI <iss>/<sub> made from token claims "iss", "sub" is not a valid URI: is 2064 bytes`},
		{"email sub newline", emailCfg, base(map[string]any{"email": "a@example.com", "email_verified": true, "sub": "a\nb"}), `token claim "sub" is not usable in a certificate: contains a newline`},
		{"issuer claim", IssuerConfig{Type: TypeEmail, IssuerClaim: "$.fed.connector"}, base(map[string]any{"email": "a@example.com", "email_verified": true, "fed": map[string]any{"connector": "git\u202ehub"}}),
			`token claim "fed.connector" is not usable in a certificate: contains the bidirectional control U+202E`},
		{"uri space", IssuerConfig{Type: TypeURI, SubjectDomain: "https://build.example.com"}, base(map[string]any{"sub": "https://build.example.com/jobs/7 8"}), `token claim "sub" is not a valid URI: contains a space at byte 32`},
		{"uri userinfo", IssuerConfig{Type: TypeURI, SubjectDomain: "https://build.example.com"}, base(map[string]any{"sub": "https://build.example.com@evil.example/x"}), `token claim "sub" is not a valid URI: has userinfo`},
		{"uri relative", IssuerConfig{Type: TypeURI, SubjectDomain: "https://build.example.com"}, base(map[string]any{"sub": "jobs/7"}), `token claim "sub" is not a valid URI: has no scheme`},
		{"username tab", IssuerConfig{Type: TypeUsername, SubjectDomain: "example.com"}, base(map[string]any{"sub": "alice\tbob"}), `token claim "sub" is not a valid username: contains a tab`},
		{"kubernetes namespace path", IssuerConfig{Type: TypeKubernetes}, k8s("prod/serviceaccounts/x/../..", "builder"), `token claim "kubernetes.io.namespace" is not a Kubernetes namespace (an RFC 1123 label): contains '/'`},
		{"kubernetes namespace dotted", IssuerConfig{Type: TypeKubernetes}, k8s("a.b", "builder"), `token claim "kubernetes.io.namespace" is not a Kubernetes namespace (an RFC 1123 label): is not a single label`},
		{"kubernetes name", IssuerConfig{Type: TypeKubernetes}, k8s("prod", "builder?x"), `token claim "kubernetes.io.serviceaccount.name" is not a Kubernetes service account name (an RFC 1123 subdomain): contains '?'`},
		{"spiffe space", IssuerConfig{Type: TypeSPIFFE, SPIFFETrustDomain: "example.org"}, base(map[string]any{"sub": "spiffe://example.org/a b"}), `token claim "sub" is not a valid SPIFFE ID: contains a space`},
		{"spiffe query", IssuerConfig{Type: TypeSPIFFE, SPIFFETrustDomain: "example.org"}, base(map[string]any{"sub": "spiffe://example.org/a?b=c"}), `token claim "sub" is not a valid SPIFFE ID: has a port, query, fragment or trailing '/'`},
		{"ci SAN claim newline", IssuerConfig{Type: TypeCIProvider}, gh("job_workflow_ref", "octo/app/.github/workflows/x.yml@refs/heads/main\nevil"), `token claim "job_workflow_ref" is not usable in a certificate: contains a newline`},
		{"ci SAN claim space", IssuerConfig{Type: TypeCIProvider}, gh("job_workflow_ref", "octo/app/x.yml@refs/heads/a b"), `the subject alternative name made from token claim "job_workflow_ref" is not a valid URI: contains a space at byte 46`},
		{"ci SAN url override", IssuerConfig{Type: TypeCIProvider}, gh("url", "https://github.com@evil.example"), `the subject alternative name made from token claims "job_workflow_ref", "url" is not a valid URI: has userinfo`},
		{"ci extension NUL", IssuerConfig{Type: TypeCIProvider}, gh("ref", "refs/heads/main\x00evil"), `token claim "ref" is not usable in a certificate: contains a NUL (U+0000) at byte 15`},
		{"ci extension bidi", IssuerConfig{Type: TypeCIProvider}, gh("workflow", "release\u202e"), `token claim "workflow" is not usable in a certificate: contains the bidirectional control U+202E`},
		{"ci extension too long", IssuerConfig{Type: TypeCIProvider}, gh("repository_visibility", strings.Repeat("v", MaxValueBytes+1)), `token claim "repository_visibility" is not usable in a certificate: is 2049 bytes`},
		{"ci rendered too long", IssuerConfig{Type: TypeCIProvider}, gh("run_id", strings.Repeat("9", MaxValueBytes-20)), `the extension run-invocation-uri made from token claims "repository", "run_attempt", "run_id" is not usable in a certificate: is `},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var prov *CIProvider
			if tt.cfg.Type == TypeCIProvider {
				prov = &github
			}
			p, err := principalFor(&tt.cfg, prov, tt.c)
			var ce *ClaimError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("principal %+v, error %v; want a ClaimError containing %q", p, err, tt.want)
			}
			var ae *AuthError
			if errors.As(err, &ae) {
				t.Fatal("a malformed claim is reported as an authentication failure (401)")
			}
		})
	}
	// The same claims, well-formed, make principals.
	for name, tc := range map[string]struct {
		cfg IssuerConfig
		c   claims
	}{
		"email":        {emailCfg, verified("alice@example.com")},
		"email-or-uri": {emailOrURI, base(map[string]any{"sub": "bot 1"})},
		"kubernetes":   {IssuerConfig{Type: TypeKubernetes}, k8s("prod", "builder.v2")},
		"ci":           {IssuerConfig{Type: TypeCIProvider}, base(githubClaims())},
	} {
		var prov *CIProvider
		if tc.cfg.Type == TypeCIProvider {
			prov = &github
		}
		p, err := principalFor(&tc.cfg, prov, tc.c)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("%s: principalFor accepted what Validate refuses: %v", name, err)
		}
	}
}

// Validate, which the CA runs before signing, holds principals that were
// not made from claims to the same rules.
func TestPrincipalValidate(t *testing.T) {
	ext := Extensions{Issuer: "https://idp", Subject: "s"}
	for _, tt := range []struct {
		name string
		p    Principal
		want string
	}{
		{"UTF-8 email", Principal{Email: "jöhn@example.com", Extensions: ext}, "the certificate's email SAN is not a valid email address: contains the non-ASCII character"},
		{"URI host", Principal{URI: &url.URL{Scheme: "https", Host: "a..b"}, Extensions: ext}, "the certificate's URI SAN is not a valid URI: has a host that has an empty label"},
		{"username", Principal{OtherName: "a\x00!example.com", Extensions: ext}, "the certificate's username SAN is not usable in a certificate: contains a NUL"},
		{"subject", Principal{Email: "a@example.com", Extensions: Extensions{Issuer: "https://idp", Subject: "a\nb"}}, "the certificate's token subject extension is not usable"},
		{"CI value", Principal{Email: "a@example.com", Extensions: Extensions{Issuer: "https://idp", CI: map[string]string{"source-repository-ref": "x\x00"}}}, "the certificate's extension source-repository-ref is not usable"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			var ce *ClaimError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want a ClaimError containing %q", err, tt.want)
			}
		})
	}
	if err := (&Principal{Email: "a@example.com", URI: &url.URL{Scheme: "https", Host: "x"}, Extensions: ext}).Validate(); err == nil {
		t.Fatal("a principal with two SANs validated")
	}
}

func TestCIProviderDefaultsAreChecked(t *testing.T) {
	p := Presets()["github-actions"]
	p.DefaultTemplateValues = map[string]string{"url": "https://github.example\n.com"}
	if err := p.validate(); err == nil || !strings.Contains(err.Error(), "default_template_values.url contains a newline") {
		t.Fatalf("error %v", err)
	}
}

// certRoundTrip signs a certificate with crypto/x509 for the principal and
// parses it back: what the validators accept must make a certificate
// every Go client can read, with the SAN and extensions unchanged.
type certRoundTrip struct {
	key  ed25519.PrivateKey
	pub  ed25519.PublicKey
	root *x509.Certificate
}

func newCertRoundTrip(t testing.TB) *certRoundTrip {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(der)
	return &certRoundTrip{key: key, pub: pub, root: root}
}

func (r *certRoundTrip) check(t testing.TB, p *Principal) {
	t.Helper()
	exts, err := p.Extensions.Render()
	if err != nil {
		t.Fatalf("rendering the extensions of an accepted principal: %v", err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), NotBefore: r.root.NotBefore, NotAfter: r.root.NotAfter, ExtraExtensions: exts}
	if p.Email != "" {
		tmpl.EmailAddresses = []string{p.Email}
	}
	if p.URI != nil {
		tmpl.URIs = []*url.URL{p.URI}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, r.root, r.pub, r.key)
	if err != nil {
		t.Fatalf("crypto/x509 refuses to sign %+v: %v", p, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("crypto/x509 cannot parse the certificate for %+v: %v", p, err)
	}
	if p.Email != "" && (len(c.EmailAddresses) != 1 || c.EmailAddresses[0] != p.Email) {
		t.Fatalf("email SAN %q, want %q", c.EmailAddresses, p.Email)
	}
	if p.URI != nil && (len(c.URIs) != 1 || c.URIs[0].String() != p.URI.String()) {
		t.Fatalf("URI SAN %v, want %q", c.URIs, p.URI)
	}
	for _, want := range exts {
		found := false
		for _, got := range c.Extensions {
			found = found || got.Id.Equal(want.Id) && bytes.Equal(got.Value, want.Value)
		}
		if !found {
			t.Fatalf("extension %v lost", want.Id)
		}
		if want.Id.Equal(OIDTokenSubject) {
			var s string
			if _, err := asn1.Unmarshal(want.Value, &s); err != nil || s != p.Extensions.Subject {
				t.Fatalf("token subject %q, %v", s, err)
			}
		}
	}
}

// FuzzValidators: whatever checkEmail or checkURI accepts goes through
// crypto/x509 unchanged (signed, parsed, same SAN), net/mail reads an
// accepted email as itself, and checkText's values encode as UTF8String.
func FuzzValidators(f *testing.F) {
	for _, s := range []string{
		"alice@example.com", "alice@example.com\nbob@evil.com", "alice@example.com, bob@evil.com", "alice@example.com\x00bob",
		"not-an-email", "jöhn@example.com", `"quoted"@example.com`, "a@[1.2.3.4]", "a@b", "a@b.c-d.e",
		"https://github.com/o/r/.github/workflows/x.yml@refs/heads/main", "https://a..b/", "spiffe://td/x", "urn:x:y",
		"https://x/%zz", "https://[::1]:8/x?y#z", "https://user@host/", "mailto:a@b", "http://x:0/", "x:", "a+b-c.d:e",
	} {
		f.Add(s)
	}
	rt := newCertRoundTrip(f)
	ext := Extensions{Issuer: "https://idp.example.com", Subject: "s"}
	f.Fuzz(func(t *testing.T, s string) {
		if checkEmail(s) == nil {
			if a, err := mail.ParseAddress(s); err != nil || a.Address != s {
				t.Fatalf("checkEmail accepts %q, net/mail reads %v, %v", s, a, err)
			}
			if len(s) > MaxEmailBytes || strings.Count(s, "@") != 1 {
				t.Fatalf("checkEmail accepts %q", s)
			}
			rt.check(t, &Principal{Email: s, Extensions: ext})
		}
		if u, err := checkURI(s); err == nil {
			if u.String() != s || len(s) > MaxURIBytes || u.User != nil {
				t.Fatalf("checkURI accepts %q as %q", s, u)
			}
			rt.check(t, &Principal{URI: u, Extensions: ext})
		}
		if checkText(s, MaxValueBytes) == nil {
			if _, err := asn1.MarshalWithParams(s, "utf8"); err != nil {
				t.Fatalf("checkText accepts %q, which is no UTF8String: %v", s, err)
			}
			for _, r := range s {
				if isControl(r) {
					t.Fatalf("checkText accepts a control character in %q", s)
				}
			}
		}
	})
}

// FuzzPrincipalFromClaims: any JSON claims, for every issuer type, either
// refuse or make a principal that Validate accepts and that crypto/x509
// signs and parses back unchanged.
func FuzzPrincipalFromClaims(f *testing.F) {
	for _, s := range []string{
		`{"iss":"https://idp.example.com","sub":"s","email":"alice@example.com","email_verified":true}`,
		`{"iss":"https://idp.example.com","sub":"bot\n1"}`,
		`{"iss":"https://idp.example.com","sub":"https://build.example.com/jobs/7"}`,
		`{"iss":"https://idp.example.com","sub":"spiffe://example.org/ns/x"}`,
		`{"iss":"https://idp.example.com","sub":"x","kubernetes.io":{"namespace":"prod","serviceaccount":{"name":"b"}}}`,
		`{"iss":"https://idp.example.com","sub":"repo:o/r","job_workflow_ref":"o/r/.github/workflows/x.yml@refs/heads/main","job_workflow_sha":"a","sha":"a","event_name":"push","repository":"o/r","workflow":"w","ref":"refs/heads/main","runner_environment":"github-hosted","repository_id":"1","repository_owner":"o","repository_owner_id":"2","repository_visibility":"public","workflow_ref":"o/r/.github/workflows/x.yml@refs/heads/main","workflow_sha":"a","run_id":"3","run_attempt":"1"}`,
		`{"iss":"https://idp.example.com","sub":"s","email":"j\u00f6hn@example.com","email_verified":"true","fed":{"c":"x"}}`,
	} {
		f.Add([]byte(s))
	}
	github := Presets()["github-actions"]
	cfgs := []IssuerConfig{
		{Type: TypeEmail}, {Type: TypeEmail, IssuerClaim: "$.fed.c"}, {Type: TypeEmailOrURI},
		{Type: TypeURI, SubjectDomain: "https://build.example.com"}, {Type: TypeUsername, SubjectDomain: "example.com"},
		{Type: TypeKubernetes}, {Type: TypeSPIFFE, SPIFFETrustDomain: "example.org"}, {Type: TypeCIProvider},
	}
	rt := newCertRoundTrip(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := decodeClaims(data)
		if err != nil {
			return
		}
		for _, cfg := range cfgs {
			p, err := principalFor(&cfg, &github, c)
			if err != nil {
				var ce *ClaimError
				var ae *AuthError
				if !errors.As(err, &ce) && !errors.As(err, &ae) {
					t.Fatalf("%s: error of type %T: %v", cfg.Type, err, err)
				}
				continue
			}
			if err := p.Validate(); err != nil {
				t.Fatalf("%s: principal from %s fails Validate: %v", cfg.Type, data, err)
			}
			if p.Extensions.Issuer == "" || p.OtherName != "" {
				// No iss: the pool never gets here without one (and Render
				// refuses it). An otherName is encoded by the CA, and
				// crypto/x509 does not read it back.
				continue
			}
			rt.check(t, p)
		}
	})
}
