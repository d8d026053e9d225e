package server

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/signet-dev/signet/internal/keys"
	"github.com/signet-dev/signet/timestamp"
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
	chain, rootKey, err := caChainFor(interKey.Public())
	if err != nil {
		return "", "", err
	}
	if err := keys.WriteFile(filepath.Join(dir, "ca-root.pem"), rootKey, nil); err != nil {
		return "", "", err
	}
	if err := keys.WriteFile(keyPath, interKey, nil); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(chainPath, pemChain(chain), 0o644); err != nil {
		return "", "", err
	}
	logger.Info("generated dev CA chain", "chain", chainPath)
	return keys.FileURI(abs, ""), chainPath, nil
}

// caChainFor makes a root and an intermediate certificate for pub.
func caChainFor(pub crypto.PublicKey) ([]*x509.Certificate, crypto.Signer, error) {
	now := time.Now().UTC()
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	root := &x509.Certificate{
		SerialNumber: randSerial(), Subject: pkix.Name{Organization: []string{"signet dev"}, CommonName: "signet dev root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0),
		IsCA: true, BasicConstraintsValid: true, MaxPathLen: 1,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	rootCert, err := createCert(root, nil, rootKey.Public(), rootKey)
	if err != nil {
		return nil, nil, err
	}
	inter := &x509.Certificate{
		SerialNumber: randSerial(), Subject: pkix.Name{Organization: []string{"signet dev"}, CommonName: "signet dev intermediate"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(5, 0, 0),
		IsCA: true, BasicConstraintsValid: true, MaxPathLen: 0, MaxPathLenZero: true,
		KeyUsage:    x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
	interCert, err := createCert(inter, rootCert, pub, rootKey)
	if err != nil {
		return nil, nil, err
	}
	return []*x509.Certificate{interCert, rootCert}, rootKey, nil
}

// createCert signs tmpl by parent (self-signed when parent is nil).
func createCert(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func pemChain(chain []*x509.Certificate) []byte {
	var out []byte
	for _, c := range chain {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
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
	if err := os.WriteFile(chainPath, pemChain(chain), 0o644); err != nil {
		return "", "", err
	}
	logger.Info("generated dev TSA chain", "chain", chainPath)
	return keys.FileURI(abs, ""), chainPath, nil
}

// tsaChainFor makes a root and a TSA signing certificate for pub.
func tsaChainFor(pub crypto.PublicKey) ([]*x509.Certificate, error) {
	now := time.Now().UTC()
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	root, err := createCert(&x509.Certificate{
		SerialNumber: randSerial(), Subject: pkix.Name{Organization: []string{"signet dev"}, CommonName: "signet dev TSA root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, nil, rootKey.Public(), rootKey)
	if err != nil {
		return nil, err
	}
	leaf, err := createCert(&x509.Certificate{
		SerialNumber: randSerial(), Subject: pkix.Name{Organization: []string{"signet dev"}, CommonName: "signet dev TSA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(5, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtraExtensions: []pkix.Extension{timestamp.CriticalTimeStampingEKU()},
	}, root, pub, rootKey)
	if err != nil {
		return nil, err
	}
	return []*x509.Certificate{leaf, root}, nil
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

func randSerial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
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
