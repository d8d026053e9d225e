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

// devCAChain returns the dev CA's key URI and chain file, generating a root
// and an intermediate (EKU codeSigning, as clients require of
// intermediates) in dir on first start.
func devCAChain(dir string, logger *slog.Logger) (string, string, error) {
	keyPath := filepath.Join(dir, "ca.pem")
	chainPath := filepath.Join(dir, "ca-chain.pem")
	abs, err := filepath.Abs(keyPath)
	if err != nil {
		return "", "", err
	}
	if _, err := os.Stat(chainPath); err == nil {
		return keys.FileURI(abs, ""), chainPath, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	interKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	chain, err := pkigen.CAChain(devNames, rootKey, interKey.Public())
	if err != nil {
		return "", "", err
	}
	if err := keys.WriteFile(filepath.Join(dir, "ca-root.pem"), rootKey, nil); err != nil {
		return "", "", err
	}
	if err := keys.WriteFile(keyPath, interKey, nil); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(chainPath, pkigen.PEM(chain), 0o644); err != nil {
		return "", "", err
	}
	logger.Info("generated dev CA chain", "chain", chainPath)
	return keys.FileURI(abs, ""), chainPath, nil
}

// devTSAChain returns the dev TSA's key URI and chain file (root -> leaf
// with a single critical timeStamping EKU), generating them on first start.
func devTSAChain(dir string, logger *slog.Logger) (string, string, error) {
	keyPath := filepath.Join(dir, "tsa.pem")
	chainPath := filepath.Join(dir, "tsa-chain.pem")
	abs, err := filepath.Abs(keyPath)
	if err != nil {
		return "", "", err
	}
	if _, err := os.Stat(chainPath); err == nil {
		return keys.FileURI(abs, ""), chainPath, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	chain, err := tsaChainFor(leafKey.Public())
	if err != nil {
		return "", "", err
	}
	if err := keys.WriteFile(keyPath, leafKey, nil); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(chainPath, pkigen.PEM(chain), 0o644); err != nil {
		return "", "", err
	}
	logger.Info("generated dev TSA chain", "chain", chainPath)
	return keys.FileURI(abs, ""), chainPath, nil
}

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
	s, err := keys.Open(keys.FileURI(abs, ""), keys.Options{Dev: true})
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
