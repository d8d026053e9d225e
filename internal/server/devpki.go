package server

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/signet-dev/signet/internal/keys"
	"github.com/signet-dev/signet/internal/pkigen"
)

// devNames go into dev mode's certificates.
var devNames = pkigen.Names{Organization: "signet dev", Prefix: "signet dev"}

// caChainFor makes a throwaway CA chain for pub (memory: signers in dev).
func caChainFor(pub crypto.PublicKey) ([]*x509.Certificate, error) {
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return pkigen.CAChain(devNames, rootKey, pub)
}

// tsaChainFor makes a TSA chain for pub under a fresh root key.
func tsaChainFor(pub crypto.PublicKey) ([]*x509.Certificate, error) {
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return pkigen.TSAChain(devNames, rootKey, pub)
}

// devOIDCKey loads (or generates) the dev OIDC issuer's RSA key.
func devOIDCKey(path string, logger *slog.Logger) (*rsa.PrivateKey, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		if err := keys.WriteFile(path, crypto.Signer(k), nil); err != nil {
			return nil, err
		}
		logger.Info("generated dev OIDC issuer key", "path", path)
	}
	abs, _ := filepath.Abs(path)
	s, err := keys.Open(keys.FileURI(abs, keys.PasswordSource{}), keys.Options{Dev: true})
	if err != nil {
		return nil, err
	}
	k, ok := s.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("dev OIDC key %s is %T, want RSA", path, s)
	}
	return k, nil
}

// readChain reads PEM certificates from a file, in order.
func readChain(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading certificate chain: %w", err)
	}
	certs, err := cryptoutils.UnmarshalCertificatesFromPEM(data)
	if err != nil {
		return nil, fmt.Errorf("certificate chain %s: %w", path, err)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("certificate chain %s holds no PEM certificate", path)
	}
	return certs, nil
}
