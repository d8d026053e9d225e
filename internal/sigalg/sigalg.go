// Package sigalg names the (key type, digest) pairs clients sign with, as
// Sigstore's --client-signing-algorithms does, so the log and the CA share
// one allow-list vocabulary.
package sigalg

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
	"sort"
	"strings"
)

// Algorithm is a key type and digest pair.
type Algorithm string

// The algorithms Sigstore's services know.
const (
	RSA2048SHA256 Algorithm = "rsa-sign-pkcs1-2048-sha256"
	RSA3072SHA256 Algorithm = "rsa-sign-pkcs1-3072-sha256"
	RSA4096SHA256 Algorithm = "rsa-sign-pkcs1-4096-sha256"
	P256SHA256    Algorithm = "ecdsa-sha2-256-nistp256"
	P384SHA384    Algorithm = "ecdsa-sha2-384-nistp384"
	P521SHA512    Algorithm = "ecdsa-sha2-512-nistp521"
	Ed25519       Algorithm = "ed25519"
	Ed25519ph     Algorithm = "ed25519-ph"
)

// All is every algorithm above.
var All = []Algorithm{RSA2048SHA256, RSA3072SHA256, RSA4096SHA256, P256SHA256, P384SHA384, P521SHA512, Ed25519, Ed25519ph}

// Of names the algorithm of a key signing with hash h; for Ed25519, h is
// SHA-512 for Ed25519ph (a digest was signed) and 0 for pure Ed25519.
func Of(pub crypto.PublicKey, h crypto.Hash) (Algorithm, bool) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if h != crypto.SHA256 {
			return "", false
		}
		switch k.N.BitLen() {
		case 2048:
			return RSA2048SHA256, true
		case 3072:
			return RSA3072SHA256, true
		case 4096:
			return RSA4096SHA256, true
		}
	case *ecdsa.PublicKey:
		switch {
		case k.Curve == elliptic.P256() && h == crypto.SHA256:
			return P256SHA256, true
		case k.Curve == elliptic.P384() && h == crypto.SHA384:
			return P384SHA384, true
		case k.Curve == elliptic.P521() && h == crypto.SHA512:
			return P521SHA512, true
		}
	case ed25519.PublicKey:
		switch h {
		case crypto.SHA512:
			return Ed25519ph, true
		case 0:
			return Ed25519, true
		}
	}
	return "", false
}

// Set is an allow-list.
type Set map[Algorithm]bool

// NewSet validates names; an empty list means def.
func NewSet(names []Algorithm, def []Algorithm) (Set, error) {
	if len(names) == 0 {
		names = def
	}
	s := Set{}
	for _, n := range names {
		known := false
		for _, a := range All {
			known = known || a == n
		}
		if !known {
			return nil, fmt.Errorf("unknown signing algorithm %q (known: %s)", n, strings.Join(names2(All), ", "))
		}
		s[n] = true
	}
	return s, nil
}

func names2(as []Algorithm) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = string(a)
	}
	sort.Strings(out)
	return out
}

// Check reports an error naming the key and digest when the pair is not allowed.
func (s Set) Check(pub crypto.PublicKey, h crypto.Hash) error {
	if a, ok := Of(pub, h); ok && s[a] {
		return nil
	}
	hash := "no digest"
	if h != 0 {
		hash = h.String() + " digest"
	}
	return fmt.Errorf("signing algorithm (%s key, %s) is not allowed", Describe(pub), hash)
}

// Describe names a public key's type and size for messages.
func Describe(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA-%d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	default:
		return fmt.Sprintf("%T", pub)
	}
}

// HashNames is how the APIs and the CLI name the digests they accept, in
// messages ("sha256, sha384 or sha512").
const HashNames = "sha256, sha384 or sha512"

// HashByName is the digest a lower-case name ("sha256", "sha384",
// "sha512") stands for, as hashedrekord entries, the TSA's JSON requests
// and signet's --hash name them; SHA-1 and anything else is false.
func HashByName(name string) (crypto.Hash, bool) {
	switch name {
	case "sha256":
		return crypto.SHA256, true
	case "sha384":
		return crypto.SHA384, true
	case "sha512":
		return crypto.SHA512, true
	}
	return 0, false
}

// HashName is HashByName's inverse: the lower-case name of SHA-256,
// SHA-384 or SHA-512 (index keys are "<name>:<hex>"); others are false.
func HashName(h crypto.Hash) (string, bool) {
	for _, name := range []string{"sha256", "sha384", "sha512"} {
		if byName, _ := HashByName(name); byName == h {
			return name, true
		}
	}
	return "", false
}
