// Package keys opens private keys named by URI as crypto.Signers:
//
//	file:///path/key.pem?password-env=VAR  PKCS#8 PEM, encrypted with the password in $VAR
//	file:///path/key.pem?password-file=/path/password   ... with the password in a file
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
	"path/filepath"
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
		pw, err := passwordSourceOf(u)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", u.Path, err)
		}
		if pw == (PasswordSource{}) {
			return nil, fmt.Errorf("key %s is encrypted: name its password with ?password-env=VAR or ?password-file=/path in the key URI", u.Path)
		}
		password, err := pw.Read(opts.Getenv)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", u.Path, err)
		}
		key, err = pkcs8.ParsePKCS8PrivateKey(block.Bytes, password)
		if err != nil {
			return nil, fmt.Errorf("key %s: decrypting with the password in %s: %w", u.Path, pw, err)
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

// PasswordSource is where an encrypted key file's password comes from: an
// environment variable, or a file (how Docker and Kubernetes mount
// secrets). At most one is set; neither means the file is not encrypted.
type PasswordSource struct {
	Env  string
	File string
}

func (p PasswordSource) String() string {
	if p.File != "" {
		return "password file " + p.File
	}
	return "environment variable " + p.Env
}

// Read returns the password; an empty one is an error. A file's trailing
// line break is not part of it.
func (p PasswordSource) Read(getenv func(string) string) ([]byte, error) {
	var pw string
	switch {
	case p.File != "":
		data, err := os.ReadFile(p.File)
		if err != nil {
			return nil, fmt.Errorf("reading the key password: %w", err)
		}
		pw = strings.TrimRight(string(data), "\r\n")
	case p.Env != "":
		if getenv == nil {
			getenv = os.Getenv
		}
		pw = getenv(p.Env)
	default:
		return nil, errors.New("no password source")
	}
	if pw == "" {
		return nil, fmt.Errorf("%s (its password) is empty or unset", p)
	}
	return []byte(pw), nil
}

// PasswordSourceOf is the password source a file key URI names.
func PasswordSourceOf(uri string) (PasswordSource, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return PasswordSource{}, fmt.Errorf("key URI %q: %w", redact(uri), err)
	}
	return passwordSourceOf(u)
}

func passwordSourceOf(u *url.URL) (PasswordSource, error) {
	q := u.Query()
	p := PasswordSource{Env: q.Get("password-env"), File: q.Get("password-file")}
	if p.Env != "" && p.File != "" {
		return PasswordSource{}, errors.New("the key URI names both password-env and password-file; keep one")
	}
	if p.File != "" && !filepath.IsAbs(p.File) {
		return PasswordSource{}, fmt.Errorf("password-file %q must be an absolute path", p.File)
	}
	return p, nil
}

// FileURI is the key URI for a PEM file at an absolute path, encrypted with
// the password from pw (none: not encrypted).
func FileURI(path string, pw PasswordSource) string {
	u := url.URL{Scheme: "file", Path: path}
	switch {
	case pw.File != "":
		// Slashes unescaped: the URI stays readable in signet.yaml.
		u.RawQuery = "password-file=" + strings.ReplaceAll(url.QueryEscape(pw.File), "%2F", "/")
	case pw.Env != "":
		u.RawQuery = "password-env=" + url.QueryEscape(pw.Env)
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
