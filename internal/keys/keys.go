// Package keys opens private keys named by URI as crypto.Signers:
//
//	file:///path/key.pem?password-env=VAR  PKCS#8 PEM, encrypted with the password in $VAR
//	memory:                                  a P-256 key generated now (dev mode only)
//
//	pkcs11:token=T;object=L?module-path=M&pin-source=file:P   a key in an HSM (RFC 7512)
package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/youmark/pkcs8"
)

// Options say where a key may come from.
type Options struct {
	// Dev allows memory: keys and unencrypted PEM files, which production refuses.
	Dev bool
	// Getenv reads the password variable; os.Getenv when nil.
	Getenv func(string) string
}

// Open returns the signer the URI names.
func Open(uri string, opts Options) (crypto.Signer, error) {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	scheme, _, _ := strings.Cut(uri, ":")
	switch scheme {
	case "memory":
		if !opts.Dev {
			return nil, errors.New("key URI memory: is only allowed in dev mode; use file:// or pkcs11:")
		}
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "file":
		return openFile(uri, opts)
	case "pkcs11":
		return openPKCS11(uri, opts)
	default:
		return nil, fmt.Errorf("key URI %q: unknown scheme %q (want file://, pkcs11: or memory:)", redact(uri), scheme)
	}
}

func openFile(uri string, opts Options) (crypto.Signer, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("key URI %q: %w", redact(uri), err)
	}
	if u.Host != "" {
		return nil, fmt.Errorf("key URI %q: a file URI needs an absolute path (file:///path/key.pem)", redact(uri))
	}
	data, err := os.ReadFile(u.Path)
	if err != nil {
		return nil, fmt.Errorf("reading key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("key %s: no PEM block found", u.Path)
	}
	var key any
	switch block.Type {
	case "ENCRYPTED PRIVATE KEY":
		env := u.Query().Get("password-env")
		if env == "" {
			return nil, fmt.Errorf("key %s is encrypted: name the variable holding its password with ?password-env=VAR in the key URI", u.Path)
		}
		password := opts.Getenv(env)
		if password == "" {
			return nil, fmt.Errorf("key %s: environment variable %s (its password) is empty or unset", u.Path, env)
		}
		key, err = pkcs8.ParsePKCS8PrivateKey(block.Bytes, []byte(password))
		if err != nil {
			return nil, fmt.Errorf("key %s: decrypting with the password in %s: %w", u.Path, env, err)
		}
	case "PRIVATE KEY", "EC PRIVATE KEY":
		if !opts.Dev {
			return nil, fmt.Errorf("key %s is not encrypted; production keys must be encrypted PKCS#8 (openssl pkcs8 -topk8 -v2 aes256)", u.Path)
		}
		if block.Type == "EC PRIVATE KEY" {
			key, err = x509.ParseECPrivateKey(block.Bytes)
		} else {
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		}
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", u.Path, err)
		}
	default:
		return nil, fmt.Errorf("key %s: PEM block %q is not a private key", u.Path, block.Type)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key %s: %T cannot sign", u.Path, key)
	}
	return signer, nil
}

// WriteFile stores key as PKCS#8 PEM at path (mode 0600), encrypted when
// password is not empty. It refuses to overwrite an existing file.
func WriteFile(path string, key crypto.Signer, password []byte) error {
	var der []byte
	var err error
	typ := "PRIVATE KEY"
	if len(password) > 0 {
		der, err = pkcs8.MarshalPrivateKey(key, password, nil)
		typ = "ENCRYPTED PRIVATE KEY"
	} else {
		der, err = x509.MarshalPKCS8PrivateKey(key)
	}
	if err != nil {
		return fmt.Errorf("encoding key for %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("writing key: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: typ, Bytes: der}); err != nil {
		f.Close()
		return fmt.Errorf("writing key %s: %w", path, err)
	}
	return f.Close()
}

// FileURI is the key URI for a PEM file at an absolute path.
func FileURI(path, passwordEnv string) string {
	u := url.URL{Scheme: "file", Path: path}
	if passwordEnv != "" {
		u.RawQuery = url.Values{"password-env": {passwordEnv}}.Encode()
	}
	return u.String()
}

// redact drops query parameters, which may carry PINs, from error messages.
func redact(uri string) string {
	if i := strings.IndexAny(uri, "?"); i >= 0 {
		return uri[:i] + "?…"
	}
	return uri
}
