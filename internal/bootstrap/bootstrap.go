// Package bootstrap creates the keys and certificate chains an instance
// signs with: `signet-server admin init` makes them for a production
// instance, and dev mode makes them in its data directory on its first
// start, through the same code (Make), so a dev instance runs on the
// material a production one would have, only unencrypted.
package bootstrap

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/signet-dev/signet/internal/keys"
	"github.com/signet-dev/signet/internal/pkigen"
)

// KeyNames are an instance's keys, each in a file <name>.pem or a token
// object signet-<name>: the log's, the CT log's, the CA's root and
// intermediate, the TSA's root and signing key, and the four TUF roles'.
func KeyNames() []string {
	return []string{"log", "ct", "ca-root", "ca", "tsa-root", "tsa", "tuf-root", "tuf-targets", "tuf-snapshot", "tuf-timestamp"}
}

// The files Make writes besides key files.
const (
	CAChainFile  = "ca-chain.pem"  // CA intermediate first, root last
	TSAChainFile = "tsa-chain.pem" // TSA signing certificate first, root last
	CACSRFile    = "ca.csr"        // with ExternalCA: the intermediate's request
	TSACSRFile   = "tsa.csr"       // with ExternalCA: the signing certificate's request
)

// Plan says where an instance's keys go and what is made.
type Plan struct {
	// Dir holds the key files (without Token), the chains and the requests.
	Dir string
	// Token, a pkcs11: URI naming a token (without object=), makes the keys
	// non-extractable objects in it instead of files.
	Token string
	// Password encrypts the key files and goes into their URIs; empty,
	// they are not encrypted (dev mode).
	Password keys.PasswordSource
	Getenv   func(string) string
	// Names go into the certificates.
	Names pkigen.Names
	// ExternalCA makes no roots: the CA intermediate and the TSA signing
	// certificate are requested (CACSRFile, TSACSRFile) from another PKI.
	ExternalCA bool
	// Only, when set, limits Make to these keys (names from KeyNames, but
	// a root goes with its chain's key: "ca" brings "ca-root") and the
	// chains of the ones among them that have one: dev mode leaves out the
	// components the configuration gives a key of its own.
	Only []string
	// Keep takes what Dir already holds and makes only what is missing (dev
	// mode, every start; unencrypted files only). Without it Make makes nothing if any of its files
	// exists (Existing lists them).
	Keep bool
}

// Instance is what Make made or found.
type Instance struct {
	// URIs are the key URIs by name (KeyNames; without the roots with
	// ExternalCA, or when Keep found the chains already made).
	URIs map[string]string
	// CAChain and TSAChain are the chain files ("" with ExternalCA).
	CAChain, TSAChain string
	// Made lists what was created, in order: files in Dir by name, and
	// "token object <label>".
	Made []string
}

// URI is the key URI of key name under p.
func (p Plan) URI(name string) (string, error) {
	if p.Token != "" {
		return TokenObject(p.Token, "signet-"+name)
	}
	return keys.FileURI(filepath.Join(p.Dir, name+".pem"), p.Password), nil
}

// chainSpec is a certificate chain Make makes: for a key, under a root key
// of its own, or requested from another PKI.
type chainSpec struct {
	key, root, file, csr string
	make                 func(pkigen.Names, crypto.Signer, crypto.PublicKey) ([]*x509.Certificate, error)
	request              func(pkigen.Names, crypto.Signer) ([]byte, error)
}

func chains() []chainSpec {
	return []chainSpec{
		{"ca", "ca-root", CAChainFile, CACSRFile, pkigen.CAChain, pkigen.CACSR},
		{"tsa", "tsa-root", TSAChainFile, TSACSRFile, pkigen.TSAChain, pkigen.TSACSR},
	}
}

// wants tells whether p makes key (or, for a root, its chain's key).
func (p Plan) wants(key string) bool {
	for _, c := range chains() {
		if key == c.root {
			key = c.key
		}
	}
	return len(p.Only) == 0 || slices.Contains(p.Only, key)
}

// chainNeeds tells whether key signs or is certified by a chain Make is
// still to make.
func (p Plan) chainNeeds(key string) bool {
	for _, c := range chains() {
		if (key == c.key || key == c.root) && p.wants(c.key) && !(p.Keep && p.exists(c.file)) {
			return true
		}
	}
	return false
}

// Keys are the names of the keys Make makes or takes. A root is needed only
// to make its chain: not with ExternalCA, nor when Keep finds the chain
// made.
func (p Plan) Keys() []string {
	var out []string
	for _, k := range KeyNames() {
		if !p.wants(k) {
			continue
		}
		for _, c := range chains() {
			if k == c.root && (p.ExternalCA || p.Keep && p.exists(c.file)) {
				k = ""
			}
		}
		if k != "" {
			out = append(out, k)
		}
	}
	return out
}

func (p Plan) exists(file string) bool {
	_, err := os.Stat(filepath.Join(p.Dir, file))
	return err == nil
}

// Files are the files Make would write in Dir.
func (p Plan) Files() []string {
	var files []string
	for _, c := range chains() {
		switch {
		case !p.wants(c.key):
		case p.ExternalCA:
			files = append(files, c.csr)
		default:
			files = append(files, c.file)
		}
	}
	if p.Token == "" {
		for _, k := range p.Keys() {
			files = append(files, k+".pem")
		}
	}
	return files
}

// Existing are the files of Files already in Dir.
func (p Plan) Existing() []string {
	var out []string
	for _, f := range p.Files() {
		if p.exists(f) {
			out = append(out, filepath.Join(p.Dir, f))
		}
	}
	return out
}

// Make creates the keys, then the chains under new roots (or, with
// ExternalCA, the requests), and returns where they are. For keys in a
// token, each issued certificate is stored beside its key too.
func Make(p Plan) (Instance, error) {
	if p.Getenv == nil {
		p.Getenv = os.Getenv
	}
	// Key URIs name absolute paths; the default data directory is not.
	dir, err := filepath.Abs(p.Dir)
	if err != nil {
		return Instance{}, fmt.Errorf("the key directory %s: %w", p.Dir, err)
	}
	p.Dir = dir
	if p.Keep && (p.Token != "" || p.ExternalCA) {
		return Instance{}, errors.New("keeping what a directory holds is for unencrypted dev key files, without a token or an external CA")
	}
	for _, c := range chains() {
		// A new key would not match the chain, which start-up refuses.
		if p.Keep && p.wants(c.key) && p.exists(c.file) && !p.exists(c.key+".pem") {
			return Instance{}, fmt.Errorf("%s exists but %s does not: remove the chain too to make a new one", filepath.Join(p.Dir, c.file), filepath.Join(p.Dir, c.key+".pem"))
		}
	}
	if existing := p.Existing(); !p.Keep && len(existing) > 0 {
		return Instance{}, fmt.Errorf("%s already exists; nothing was made, nothing is overwritten", strings.Join(existing, ", "))
	}
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		return Instance{}, fmt.Errorf("creating %s: %w", p.Dir, err)
	}
	var password []byte
	if p.Token == "" && p.Password != (keys.PasswordSource{}) {
		if password, err = p.Password.Read(p.Getenv); err != nil {
			return Instance{}, fmt.Errorf("encrypting the key files: %w", err)
		}
	}
	inst := Instance{URIs: map[string]string{}}
	signers := map[string]crypto.Signer{}
	for _, k := range p.Keys() {
		uri, err := p.URI(k)
		if err != nil {
			return Instance{}, err
		}
		inst.URIs[k] = uri
		path := filepath.Join(p.Dir, k+".pem")
		if p.Keep && p.exists(k+".pem") {
			// Opened only to make a chain; the server opens its keys itself.
			if p.chainNeeds(k) {
				if signers[k], err = keys.Open(uri, keys.Options{Dev: true, Getenv: p.Getenv}); err != nil {
					return Instance{}, fmt.Errorf("the %s key: %w", k, err)
				}
			}
			continue
		}
		if signers[k], err = CreateKey(uri, p.Token != "", path, password); err != nil {
			return Instance{}, fmt.Errorf("creating the %s key: %w", k, err)
		}
		made := k + ".pem"
		if p.Token != "" {
			made = "token object signet-" + k
		}
		inst.Made = append(inst.Made, made)
	}
	for _, c := range chains() {
		if !p.wants(c.key) {
			continue
		}
		if p.ExternalCA {
			csr, err := c.request(p.Names, signers[c.key])
			if err != nil {
				return Instance{}, fmt.Errorf("making the %s request: %w", c.key, err)
			}
			if err := writeNew(filepath.Join(p.Dir, c.csr), csr); err != nil {
				return Instance{}, err
			}
			inst.Made = append(inst.Made, c.csr)
			continue
		}
		path := filepath.Join(p.Dir, c.file)
		if c.key == "ca" {
			inst.CAChain = path
		} else {
			inst.TSAChain = path
		}
		if p.Keep && p.exists(c.file) {
			continue
		}
		chain, err := c.make(p.Names, signers[c.root], signers[c.key].Public())
		if err != nil {
			return Instance{}, fmt.Errorf("making the %s chain: %w", c.key, err)
		}
		if p.Token != "" {
			if err := keys.ImportCertificate(inst.URIs[c.key], chain[0], keys.Options{Getenv: p.Getenv}); err != nil {
				return Instance{}, err
			}
		}
		if err := writeNew(path, pkigen.PEM(chain)); err != nil {
			return Instance{}, err
		}
		inst.Made = append(inst.Made, c.file)
	}
	return inst, nil
}

// writeNew writes a public file that must not exist yet.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}

// CreateKey makes a new P-256 key: a non-extractable object in a token
// (uri names it) or a PEM file at path, encrypted with password unless it
// is empty. It never overwrites a key.
func CreateKey(uri string, inToken bool, path string, password []byte) (crypto.Signer, error) {
	if inToken {
		return keys.GeneratePKCS11Key(uri, elliptic.P256(), keys.Options{})
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	if err := keys.WriteFile(path, k, password); err != nil {
		return nil, err
	}
	return k, nil
}

// TokenObject adds object=label to a pkcs11: URI naming a token.
func TokenObject(token, label string) (string, error) {
	path, query, _ := strings.Cut(token, "?")
	if !strings.HasPrefix(path, "pkcs11:") || strings.Contains(path, "object=") {
		return "", errors.New("the token must be a pkcs11: URI naming it, without object=")
	}
	return path + ";object=" + label + "?" + query, nil
}
