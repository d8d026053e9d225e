package identity

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Limits on what a token may put in a certificate. They are fixed (the
// RFCs' own limits where there is one) and documented in
// docs/configuration.md, "OIDC issuers".
const (
	// MaxEmailBytes is RFC 5321's limit on a path (254 = 256 minus the
	// angle brackets); MaxEmailLocalBytes its limit on a local part.
	MaxEmailBytes      = 254
	MaxEmailLocalBytes = 64
	// MaxHostnameBytes and MaxLabelBytes are RFC 1035's.
	MaxHostnameBytes = 253
	MaxLabelBytes    = 63
	// MaxURIBytes bounds a URI SAN (browsers' and most servers' practical
	// limit; CI identities are a few hundred bytes).
	MaxURIBytes = 2048
	// MaxValueBytes bounds every other token-derived value of a certificate:
	// the Sigstore extensions (issuer, token subject, CI-provider values)
	// and the username otherName.
	MaxValueBytes = 2048
)

// ClaimError is a genuine token whose claims cannot go into a certificate
// as they are: an email that is not an addr-spec, a URI with a space, a
// value with a control character, something too long. The CA answers 400
// (the request is malformed, as Fulcio answers InvalidArgument), not 401:
// the token verified, but what it says cannot be certified.
type ClaimError struct {
	// Claims are the token claims at fault, e.g. ["email"]; empty when the
	// value was not traced to claims (a principal checked by the CA itself).
	Claims []string
	// Field is what the claims were made into when that is not simply the
	// claim's value, e.g. "subject alternative name" or "extension
	// build-signer-uri".
	Field string
	// Want is what the value should be ("a valid email address").
	Want string
	// Reason says what is wrong, e.g. "contains a newline (U+000A) at byte 17".
	Reason string
}

func (e *ClaimError) Error() string {
	quoted := make([]string, len(e.Claims))
	for i, c := range e.Claims {
		quoted[i] = fmt.Sprintf("%q", c)
	}
	names := strings.Join(quoted, ", ")
	switch {
	case e.Field == "" && len(e.Claims) == 1:
		return fmt.Sprintf("token claim %s is not %s: %s", names, e.Want, e.Reason)
	case len(e.Claims) == 0:
		return fmt.Sprintf("the certificate's %s is not %s: %s", e.Field, e.Want, e.Reason)
	case len(e.Claims) == 1:
		return fmt.Sprintf("the %s made from token claim %s is not %s: %s", e.Field, names, e.Want, e.Reason)
	default:
		return fmt.Sprintf("the %s made from token claims %s is not %s: %s", e.Field, names, e.Want, e.Reason)
	}
}

const (
	wantEmail = "a valid email address"
	wantURI   = "a valid URI"
	wantValue = "usable in a certificate"
)

func claimErr(claim, want string, reason error) error {
	return &ClaimError{Claims: []string{claim}, Want: want, Reason: reason.Error()}
}

// describeRune names a character for an error message.
func describeRune(r rune) string {
	switch r {
	case '\n':
		return "a newline (U+000A)"
	case '\r':
		return "a carriage return (U+000D)"
	case '\t':
		return "a tab (U+0009)"
	case 0:
		return "a NUL (U+0000)"
	case ' ':
		return "a space"
	}
	if isControl(r) {
		return fmt.Sprintf("the control character U+%04X", r)
	}
	if isBidiControl(r) {
		return fmt.Sprintf("the bidirectional control U+%04X", r)
	}
	if r >= utf8.RuneSelf {
		return fmt.Sprintf("the non-ASCII character %q (U+%04X)", r, r)
	}
	return fmt.Sprintf("%q", r)
}

// isControl is Unicode's Cc: C0, DEL and C1.
func isControl(r rune) bool { return r < 0x20 || (r >= 0x7f && r <= 0x9f) }

// isBidiControl reports the explicit bidirectional formatting characters,
// which make a string display in another order than it compares (an
// identity that reads as another's).
func isBidiControl(r rune) bool {
	return r == 0x061c || r == 0x200e || r == 0x200f || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
}

// checkText accepts a value for a UTF8String (or raw) certificate
// extension: valid UTF-8, at most max bytes, no control or bidirectional
// formatting characters. Any other Unicode is fine.
func checkText(s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("is %d bytes, more than the %d allowed", len(s), max)
	}
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return fmt.Errorf("is not valid UTF-8 (byte %d)", i)
			}
		}
		if isControl(r) || isBidiControl(r) {
			return fmt.Errorf("contains %s at byte %d", describeRune(r), i)
		}
	}
	return nil
}

// checkPrintableASCII accepts only printable ASCII without spaces: what an
// IA5String SAN may hold here.
func checkPrintableASCII(s string) error {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return fmt.Errorf("is not valid UTF-8 (byte %d)", i)
			}
		}
		if r <= ' ' || r >= 0x7f {
			reason := fmt.Sprintf("contains %s at byte %d", describeRune(r), i)
			if r >= 0x80 && !isControl(r) {
				reason += "; certificates hold these names in ASCII (IA5String)"
			}
			return errors.New(reason)
		}
	}
	return nil
}

// atext is RFC 5322's atom characters besides letters and digits.
const atextSpecials = "!#$%&'*+-/=?^_`{|}~"

func isAtext(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(atextSpecials, c) >= 0
}

// checkEmail accepts an RFC 5322 addr-spec in its plain form: a dot-atom
// local part (no quoted strings: verifiers compare SANs as strings, and a
// quoted local part has several spellings and room for spaces, commas and
// a second '@'), exactly one '@', and a domain that is a hostname (no
// address literals). ASCII only: an internationalized address (RFC 6531)
// cannot be an rfc822Name, which is an IA5String, and Go's crypto/x509
// refuses to parse a certificate that holds one.
func checkEmail(s string) error {
	if s == "" {
		return errors.New("is empty")
	}
	if len(s) > MaxEmailBytes {
		return fmt.Errorf("is %d bytes, more than the %d allowed", len(s), MaxEmailBytes)
	}
	if err := checkPrintableASCII(s); err != nil {
		return err
	}
	switch strings.Count(s, "@") {
	case 0:
		return errors.New("has no '@'")
	case 1:
	default:
		return errors.New("has more than one '@'")
	}
	local, domain, _ := strings.Cut(s, "@")
	switch {
	case local == "":
		return errors.New("has nothing before the '@'")
	case len(local) > MaxEmailLocalBytes:
		return fmt.Errorf("has a local part (before the '@') of %d bytes, more than the %d allowed", len(local), MaxEmailLocalBytes)
	case local[0] == '"':
		return errors.New("has a quoted local part, which is not accepted")
	case local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, ".."):
		return errors.New("has a local part that starts or ends with '.' or holds '..'")
	}
	for i := 0; i < len(local); i++ {
		if c := local[i]; c != '.' && !isAtext(c) {
			return fmt.Errorf("contains %q at byte %d, which a local part cannot hold (letters, digits, dots and %s)", c, i, atextSpecials)
		}
	}
	if strings.HasPrefix(domain, "[") {
		return errors.New("has an address literal as its domain, which is not accepted")
	}
	if err := checkHostname(domain, false); err != nil {
		return fmt.Errorf("has a domain that %w", err)
	}
	return nil
}

// checkHostname accepts an RFC 1123 host name: dot-separated labels of
// letters, digits and hyphens (and underscores where underscore is true:
// URI hosts such as SPIFFE trust domains), no label empty, longer than 63
// bytes, or starting or ending with a hyphen, no trailing dot.
func checkHostname(h string, underscore bool) error {
	switch {
	case h == "":
		return errors.New("is empty")
	case len(h) > MaxHostnameBytes:
		return fmt.Errorf("is %d bytes, more than the %d allowed", len(h), MaxHostnameBytes)
	}
	for _, label := range strings.Split(h, ".") {
		switch {
		case label == "":
			return errors.New("has an empty label (a leading, trailing or doubled '.')")
		case len(label) > MaxLabelBytes:
			return fmt.Errorf("has a label of %d bytes, more than the %d allowed", len(label), MaxLabelBytes)
		case label[0] == '-' || label[len(label)-1] == '-':
			return fmt.Errorf("has a label %q that starts or ends with '-'", label)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' && underscore) {
				return fmt.Errorf("contains %q", c)
			}
		}
	}
	return nil
}

// uriExcluded are the printable ASCII characters RFC 3986 never allows
// unescaped.
const uriExcluded = "\"<>\\^`{|}"

// checkURI accepts an absolute URI as it will be written in a URI SAN:
// printable ASCII only, every '%' starting an escape, a scheme, parsed
// by net/url into the same string (so the SAN is exactly this string),
// no userinfo (https://github.com@evil.example reads as github.com), and
// a host, if it has an authority, that is a host name or an IP literal
// (crypto/x509 refuses to parse a certificate whose URI host has an
// empty label or a non-ASCII byte).
func checkURI(s string) (*url.URL, error) {
	switch {
	case s == "":
		return nil, errors.New("is empty")
	case len(s) > MaxURIBytes:
		return nil, fmt.Errorf("is %d bytes, more than the %d allowed", len(s), MaxURIBytes)
	}
	if err := checkPrintableASCII(s); err != nil {
		return nil, err
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if strings.IndexByte(uriExcluded, c) >= 0 {
			return nil, fmt.Errorf("contains %q at byte %d, which a URI cannot hold unescaped", c, i)
		}
		if c == '%' && (i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2])) {
			return nil, fmt.Errorf("has a '%%' at byte %d that does not start an escape (%%XX)", i)
		}
	}
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || !validScheme(scheme) {
		return nil, errors.New("has no scheme (an absolute URI such as https://host/path is required)")
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("does not parse: %v", err)
	}
	if u.User != nil {
		return nil, errors.New("has userinfo (a '@' before the host), which is not accepted")
	}
	if strings.HasPrefix(rest, "//") {
		if err := checkURIHost(u); err != nil {
			return nil, err
		}
	}
	if got := u.String(); got != s {
		return nil, fmt.Errorf("is not in normal form: it would be written as %q", got)
	}
	return u, nil
}

func checkURIHost(u *url.URL) error {
	host := u.Hostname()
	if host == "" {
		return errors.New("has an empty host")
	}
	if strings.HasPrefix(u.Host, "[") {
		if ip := net.ParseIP(host); ip == nil || ip.To4() != nil {
			return fmt.Errorf("has a bracketed host %q that is not an IPv6 address", host)
		}
		return nil
	}
	if net.ParseIP(host) != nil {
		return nil
	}
	if err := checkHostname(host, true); err != nil {
		return fmt.Errorf("has a host that %w", err)
	}
	return nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// validScheme is RFC 3986's ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
func validScheme(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alpha := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if !alpha && (i == 0 || !('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

// Validate checks everything of the principal that goes into a
// certificate. principalFor already checked each value against the claims
// it came from (and names them); the CA calls this again before signing so
// that no principal, however it was made, reaches a certificate or a CT
// log unchecked. Errors are *ClaimError.
func (p *Principal) Validate() error {
	n := 0
	if p.Email != "" {
		n++
		if err := checkEmail(p.Email); err != nil {
			return &ClaimError{Field: "email SAN", Want: wantEmail, Reason: err.Error()}
		}
	}
	if p.URI != nil {
		n++
		if _, err := checkURI(p.URI.String()); err != nil {
			return &ClaimError{Field: "URI SAN", Want: wantURI, Reason: err.Error()}
		}
	}
	if p.OtherName != "" {
		n++
		if err := checkText(p.OtherName, MaxValueBytes); err != nil {
			return &ClaimError{Field: "username SAN", Want: wantValue, Reason: err.Error()}
		}
	}
	if n != 1 {
		return fmt.Errorf("principal has %d subject alternative names, want exactly one", n)
	}
	return p.Extensions.validate()
}

func (e Extensions) validate() error {
	if err := checkText(e.Issuer, MaxValueBytes); err != nil {
		return &ClaimError{Field: "issuer extension", Want: wantValue, Reason: err.Error()}
	}
	if err := checkText(e.Subject, MaxValueBytes); err != nil {
		return &ClaimError{Field: "token subject extension", Want: wantValue, Reason: err.Error()}
	}
	for _, k := range renderOrder {
		if err := checkText(e.CI[k], MaxValueBytes); err != nil {
			return &ClaimError{Field: "extension " + k, Want: wantValue, Reason: err.Error()}
		}
	}
	return nil
}
