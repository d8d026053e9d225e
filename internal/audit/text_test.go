package audit_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/signet-dev/signet/internal/audit"
)

func TestEscapeText(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"alice@example.com", "alice@example.com"},
		{"https://github.com/o/r/.github/workflows/x.yml@refs/heads/main", "https://github.com/o/r/.github/workflows/x.yml@refs/heads/main"},
		{"jöhn@example.com 日本", "jöhn@example.com 日本"},
		{"a\x00b", `a\x00b`},
		{"\x00\x00", `\x00\x00`},
		{`back\slash`, `back\\slash`},
		{`\x00`, `\\x00`},
		{"\xff", `\xff`},
		{"caf\xc3", `caf\xc3`},
		{"\xe2\x82x", `\xe2\x82x`},
		{"\xed\xa0\x80", `\xed\xa0\x80`}, // a UTF-16 surrogate: not UTF-8
		{"tab\tnew\nline", "tab\tnew\nline"},
	} {
		got := audit.EscapeText(tt.in)
		if got != tt.want {
			t.Errorf("EscapeText(%q) = %q, want %q", tt.in, got, tt.want)
		}
		back, err := audit.UnescapeText(got)
		if err != nil || back != tt.in {
			t.Errorf("UnescapeText(%q) = %q, %v; want %q", got, back, err, tt.in)
		}
	}
}

func TestUnescapeTextRefusesWhatEscapeTextNeverWrites(t *testing.T) {
	for _, in := range []string{
		`\`, `trailing\`, `\n`, `\x`, `\x0`, `\xg0`, `\xFF`, // not \\ or \xHH in lower-case hex
		`\x41`,          // 'A' is stored as is
		`\xc3\xa9`,      // é is valid UTF-8, stored as is
		"raw\x00nul",    // a NUL byte is never stored
		"raw \xff byte", // nor invalid UTF-8
	} {
		if got, err := audit.UnescapeText(in); !errors.Is(err, audit.ErrNotEscaped) {
			t.Errorf("UnescapeText(%q) = %q, %v; want ErrNotEscaped", in, got, err)
		}
	}
}

// FuzzEscapeText checks that every string is stored as valid UTF-8 without
// NUL bytes, reads back as itself, that values needing no escape are kept,
// and that UnescapeText accepts exactly EscapeText's outputs.
func FuzzEscapeText(f *testing.F) {
	for _, s := range []string{"", "alice@example.com", "a\x00b", `\`, `\\x00`, "\xff\xfe", "caf\xc3", "日本", `\x41`, `\xc3\xa9`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := audit.EscapeText(s)
		if !utf8.ValidString(e) || strings.IndexByte(e, 0) >= 0 {
			t.Fatalf("EscapeText(%q) = %q: not storable", s, e)
		}
		if utf8.ValidString(s) && !strings.ContainsAny(s, "\x00\\") && e != s {
			t.Fatalf("EscapeText(%q) = %q: changed a value that needs no escape", s, e)
		}
		back, err := audit.UnescapeText(e)
		if err != nil || back != s {
			t.Fatalf("UnescapeText(EscapeText(%q)) = %q, %v", s, back, err)
		}
		// s read as a stored value: accepted only if it is its own value's
		// escaping.
		if u, err := audit.UnescapeText(s); err == nil && audit.EscapeText(u) != s {
			t.Fatalf("UnescapeText(%q) = %q, which escapes to %q", s, u, audit.EscapeText(u))
		}
	})
}
