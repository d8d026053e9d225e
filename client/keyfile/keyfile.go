// Package keyfile reads and writes signing keys in the files cosign uses:
// a private key encrypted with a password (scrypt, then NaCl secretbox over
// its PKCS#8 DER, in PEM type "ENCRYPTED SIGSTORE PRIVATE KEY") beside a
// PKIX "PUBLIC KEY" PEM. A key either tool generates works with the other.
// Plain PEM private keys (PKCS#8, SEC 1 EC, PKCS#1 RSA) load too.
//
// The encryption itself is go-securesystemslib's encrypted package, which
// cosign uses: it writes scrypt N=2^16, r=8, p=1 and accepts only the three
// parameter sets it knows on decryption, so a key file cannot make a
// reader spend unbounded memory or time in scrypt.
package keyfile

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
)

// PEM block types.
const (
	EncryptedType = "ENCRYPTED SIGSTORE PRIVATE KEY"
	// LegacyEncryptedType is what cosign wrote before v2.1; still read.
	LegacyEncryptedType = "ENCRYPTED COSIGN PRIVATE KEY"
	PublicType          = "PUBLIC KEY"
)

// MaxFileBytes bounds a key file read: the largest key here (RSA 4096,
// encrypted and base64-encoded) is under 4 KiB.
const MaxFileBytes = 64 << 10

// ErrWrongPassword is a password that does not decrypt the key. (NaCl
// secretbox cannot tell a wrong password from a damaged file: both fail
// its authentication.)
var ErrWrongPassword = errors.New("the password does not decrypt this key (or the key file is damaged)")

// Generate makes a new ECDSA P-256 key, cosign's default.
func Generate() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// Encrypt writes key as an encrypted private key PEM.
func Encrypt(key crypto.Signer, password []byte) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding the private key: %w", err)
	}
	box, err := encrypted.Encrypt(der, password)
	if err != nil {
		return nil, fmt.Errorf("encrypting the private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: EncryptedType, Bytes: box}), nil
}

// PublicPEM is pub as a PKIX PUBLIC KEY PEM.
func PublicPEM(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encoding the public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: PublicType, Bytes: der}), nil
}

// IsEncrypted reports whether data is an encrypted private key PEM, which
// needs a password.
func IsEncrypted(data []byte) bool {
	block, _ := pem.Decode(data)
	return block != nil && (block.Type == EncryptedType || block.Type == LegacyEncryptedType)
}

// Parse reads a private key PEM: encrypted (with password) or plain.
func Parse(data, password []byte) (crypto.Signer, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("not a PEM private key")
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return nil, errors.New("more than one PEM block: a key file holds one private key")
	}
	var der []byte
	switch block.Type {
	case EncryptedType, LegacyEncryptedType:
		plain, err := encrypted.Decrypt(block.Bytes, password)
		if err != nil {
			if strings.Contains(err.Error(), "decryption failed") {
				return nil, ErrWrongPassword
			}
			return nil, fmt.Errorf("the encrypted key: %w", err)
		}
		der = plain
	case "PRIVATE KEY":
		der = block.Bytes
	case "EC PRIVATE KEY":
		k, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("EC PRIVATE KEY: %w", err)
		}
		return k, nil
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("RSA PRIVATE KEY: %w", err)
		}
		return k, nil
	default:
		return nil, fmt.Errorf("PEM type %q is not a private key (want %s, PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)", block.Type, EncryptedType)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("the private key's PKCS#8: %w", err)
	}
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		return k, nil
	case *rsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	default:
		return nil, fmt.Errorf("unsupported private key type %T", k)
	}
}

// ReadFile reads at most MaxFileBytes of path.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes: not a key file", path, MaxFileBytes)
	}
	return data, nil
}
