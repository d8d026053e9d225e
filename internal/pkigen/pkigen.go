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
	"encoding/asn1"
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
	return CAIntermediate(n, root, rootSigner, pub)
}

// CAIntermediate issues a codeSigning intermediate for pub under an
// existing root (a rotation), and returns [intermediate, root].
func CAIntermediate(n Names, root *x509.Certificate, rootSigner crypto.Signer, pub crypto.PublicKey) ([]*x509.Certificate, error) {
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
	return TSALeaf(n, root, rootSigner, pub)
}

// TSALeaf issues a TSA signing certificate for pub under an existing root
// (a rotation), and returns [leaf, root].
func TSALeaf(n Names, root *x509.Certificate, rootSigner crypto.Signer, pub crypto.PublicKey) ([]*x509.Certificate, error) {
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

// CACSR is a certificate request for the CA intermediate's key, for an
// existing (corporate) root to sign: it asks for what CAChain would issue
// (CA with path length 0, certSign, EKU codeSigning).
func CACSR(n Names, signer crypto.Signer) ([]byte, error) {
	bc, err := asn1.Marshal(basicConstraints{IsCA: true, MaxPathLen: 0})
	if err != nil {
		return nil, err
	}
	eku, err := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 3}})
	if err != nil {
		return nil, err
	}
	return csr(n, "intermediate", signer, []pkix.Extension{
		{Id: oidBasicConstraints, Critical: true, Value: bc},
		keyUsage(x509.KeyUsageCertSign | x509.KeyUsageCRLSign),
		{Id: oidExtKeyUsage, Value: eku},
	})
}

// TSACSR is a certificate request for the TSA signing key, asking for what
// TSAChain would issue (digitalSignature, one critical timeStamping EKU).
func TSACSR(n Names, signer crypto.Signer) ([]byte, error) {
	return csr(n, "TSA", signer, []pkix.Extension{keyUsage(x509.KeyUsageDigitalSignature), timestamp.CriticalTimeStampingEKU()})
}

var (
	oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidKeyUsage         = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtKeyUsage      = asn1.ObjectIdentifier{2, 5, 29, 37}
)

type basicConstraints struct {
	IsCA       bool `asn1:"optional"`
	MaxPathLen int  `asn1:"optional,default:-1"`
}

// keyUsage encodes the keyUsage extension (RFC 5280 4.2.1.3): bit i of the
// BIT STRING is x509.KeyUsage bit 1<<i.
func keyUsage(ku x509.KeyUsage) pkix.Extension {
	var bits asn1.BitString
	for i := 0; i < 9; i++ {
		if ku&(1<<i) != 0 {
			for len(bits.Bytes) <= i/8 {
				bits.Bytes = append(bits.Bytes, 0)
			}
			bits.Bytes[i/8] |= 0x80 >> (i % 8)
			bits.BitLength = i + 1
		}
	}
	der, _ := asn1.Marshal(bits)
	return pkix.Extension{Id: oidKeyUsage, Critical: true, Value: der}
}

func csr(n Names, cn string, signer crypto.Signer, exts []pkix.Extension) ([]byte, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:         pkix.Name{Organization: []string{n.Organization}, CommonName: n.Prefix + " " + cn},
		ExtraExtensions: exts,
	}, signer)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}
