// Package pkigen makes the certificate chains a Signet instance runs on: a
// code-signing CA (root -> intermediate with EKU codeSigning) and a TSA
// (root -> leaf with one critical timeStamping EKU). Dev mode and
// `signet-server admin init` both use it; the keys may live anywhere a
// crypto.Signer can.
package pkigen

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"time"

	"github.com/signet-dev/signet/timestamp"
)

// Names say whose chains these are.
type Names struct {
	Organization string
	// Prefix starts every common name ("signet dev", "Example Corp").
	Prefix string
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

func create(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// Root makes a self-signed root valid for years (backdated an hour for
// clock skew).
func Root(n Names, cn string, signer crypto.Signer, years int) (*x509.Certificate, error) {
	now := time.Now().UTC()
	return create(&x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{Organization: []string{n.Organization}, CommonName: n.Prefix + " " + cn},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(years, 0, 0),
		IsCA: true, BasicConstraintsValid: true, MaxPathLen: 1,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, nil, signer.Public(), signer)
}

// CAChain makes the intermediate for pub under a new root signed by
// rootSigner, and returns [intermediate, root].
func CAChain(n Names, rootSigner crypto.Signer, pub crypto.PublicKey) ([]*x509.Certificate, error) {
	root, err := Root(n, "root", rootSigner, 10)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	inter, err := create(&x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{Organization: []string{n.Organization}, CommonName: n.Prefix + " intermediate"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(5, 0, 0),
		IsCA: true, BasicConstraintsValid: true, MaxPathLen: 0, MaxPathLenZero: true,
		KeyUsage:    x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}, root, pub, rootSigner)
	if err != nil {
		return nil, err
	}
	return []*x509.Certificate{inter, root}, nil
}

// TSAChain makes the TSA signing certificate for pub under a new root
// signed by rootSigner, and returns [leaf, root].
func TSAChain(n Names, rootSigner crypto.Signer, pub crypto.PublicKey) ([]*x509.Certificate, error) {
	root, err := Root(n, "TSA root", rootSigner, 10)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	leaf, err := create(&x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{Organization: []string{n.Organization}, CommonName: n.Prefix + " TSA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(5, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtraExtensions: []pkix.Extension{timestamp.CriticalTimeStampingEKU()},
	}, root, pub, rootSigner)
	if err != nil {
		return nil, err
	}
	return []*x509.Certificate{leaf, root}, nil
}

// PEM encodes certificates, in order.
func PEM(chain []*x509.Certificate) []byte {
	var out []byte
	for _, c := range chain {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}
