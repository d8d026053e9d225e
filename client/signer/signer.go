// Package signer opens the private key a signing command names: a key
// file (cosign's encrypted format, or a plain PEM key), or a key URI
// whose scheme picks a provider. pkcs11: (RFC 7512; the key stays in the
// token: an HSM, a YubiKey through its PKCS#11 module, SoftHSM2) is built
// in. A KMS is one more Provider for its scheme (awskms://, gcpkms://,
// azurekms://, hashivault://, as cosign spells them), returning a
// crypto.Signer whose Sign calls the service; none is built in, since none
// can be tested here against the real service, and a URI of those schemes
// is refused saying so rather than read as a file name.
package signer

import (
	"crypto"
	"fmt"
	"strings"

	"github.com/signet-dev/signet/client/keyfile"
	"github.com/signet-dev/signet/internal/keys"
)

// A Provider opens keys named by URIs of one scheme.
type Provider interface {
	Open(uri string) (crypto.Signer, error)
}

// ProviderFunc adapts a function to a Provider.
type ProviderFunc func(uri string) (crypto.Signer, error)

// Open calls f.
func (f ProviderFunc) Open(uri string) (crypto.Signer, error) { return f(uri) }

// Opener opens keys: by URI scheme through its providers, else as a file.
type Opener struct {
	// Providers by scheme ("pkcs11" for pkcs11:..., "awskms" for
	// awskms://...). Default holds the built-in ones.
	Providers map[string]Provider
	// Password is asked for an encrypted key file.
	Password func(path string) ([]byte, error)
}

// PKCS11 opens keys in PKCS#11 tokens (the server's key custody code).
var PKCS11 Provider = ProviderFunc(func(uri string) (crypto.Signer, error) {
	return keys.Open(uri, keys.Options{})
})

// Default is the built-in providers.
func Default() map[string]Provider { return map[string]Provider{"pkcs11": PKCS11} }

// KMSSchemes are the key URI schemes cosign has KMS providers for.
var KMSSchemes = []string{"awskms", "gcpkms", "azurekms", "hashivault"}

// Open opens the key ref names.
func (o Opener) Open(ref string) (crypto.Signer, error) {
	if scheme, _, ok := strings.Cut(ref, ":"); ok && !strings.ContainsAny(scheme, `/\.`) && len(scheme) > 1 {
		if p, ok := o.Providers[scheme]; ok {
			key, err := p.Open(ref)
			if err != nil {
				return nil, fmt.Errorf("the %s key: %w", scheme, err)
			}
			return key, nil
		}
		for _, k := range KMSSchemes {
			if scheme == k {
				return nil, fmt.Errorf("%s:// keys need a KMS provider, and this signet has none: sign with a key file or a pkcs11: URI (see the README, Keys in KMS)", scheme)
			}
		}
	}
	data, err := keyfile.ReadFile(ref)
	if err != nil {
		return nil, err
	}
	var password []byte
	if keyfile.IsEncrypted(data) {
		if o.Password == nil {
			return nil, fmt.Errorf("%s is encrypted and no password can be asked for", ref)
		}
		if password, err = o.Password(ref); err != nil {
			return nil, err
		}
	}
	key, err := keyfile.Parse(data, password)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	return key, nil
}
