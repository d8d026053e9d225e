package audit

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// EscapeText makes s storable in a PostgreSQL text column of a UTF-8
// database, reversibly: a backslash is written \\, a NUL byte \x00, and each
// byte that is not part of valid UTF-8 \xHH (two lower-case hex digits);
// everything else is kept as is. A value that is valid UTF-8 without NUL
// bytes or backslashes (every serial, digest, e-mail address and URL the CA
// and TSA write) is stored unchanged. UnescapeText gives s back.
//
// Escaping the backslash itself is what keeps the mapping unambiguous: a
// stored \x00 is always an escaped NUL, a stored \\x00 the four characters
// \x00.
func EscapeText(s string) string {
	if strings.IndexByte(s, '\\') < 0 && strings.IndexByte(s, 0) < 0 && utf8.ValidString(s) {
		return s
	}
	const hex = "0123456789abcdef"
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			b.WriteString(`\\`)
			i++
		case c == 0:
			b.WriteString(`\x00`)
			i++
		case c < utf8.RuneSelf:
			b.WriteByte(c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b.WriteString(`\x`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xf])
			} else {
				b.WriteString(s[i : i+size])
			}
			i += size
		}
	}
	return b.String()
}

// ErrNotEscaped means a value is not EscapeText's output.
var ErrNotEscaped = errors.New("not an escaped audit value")

// UnescapeText reverses EscapeText, for whoever reads the audit tables. It
// accepts only EscapeText's output: a backslash sequence other than \\ and
// \xHH (lower-case hex), or a \xHH for a byte EscapeText would have kept,
// is refused, so each stored value has exactly one reading.
func UnescapeText(s string) (string, error) {
	if strings.IndexByte(s, '\\') < 0 {
		if strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s) {
			return "", fmt.Errorf("%w: a NUL byte or invalid UTF-8 is never stored as is", ErrNotEscaped)
		}
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		switch {
		case i+1 < len(s) && s[i+1] == '\\':
			b.WriteByte('\\')
			i++
		case i+3 < len(s) && s[i+1] == 'x':
			hi, ok1 := lowerHexDigit(s[i+2])
			lo, ok2 := lowerHexDigit(s[i+3])
			if !ok1 || !ok2 {
				return "", fmt.Errorf("%w: %q at byte %d is not \\xHH", ErrNotEscaped, s[i:i+4], i)
			}
			b.WriteByte(hi<<4 | lo)
			i += 3
		default:
			return "", fmt.Errorf("%w: backslash at byte %d starts neither \\\\ nor \\xHH", ErrNotEscaped, i)
		}
	}
	out := b.String()
	if EscapeText(out) != s {
		return "", fmt.Errorf("%w: it holds a NUL byte or invalid UTF-8, or a \\xHH escape stands for a byte that is stored as is", ErrNotEscaped)
	}
	return out, nil
}

func lowerHexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
