// Package ca issues short-lived code-signing certificates in Fulcio's
// profile to principals that proved who they are (ca/identity) and that
// they hold the key.
package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/signet-dev/signet/ca/identity"
)

// CA signs leaves with an issuing key whose certificate is chain[0]; the
// last certificate of the chain is the root.
type CA struct {
	signer   crypto.Signer
	chain    []*x509.Certificate
	validity time.Duration
	now      func() time.Time
	sct      SCTSource // nil: no CT
}

// DefaultValidity is Fulcio's certificate lifetime.
const DefaultValidity = 10 * time.Minute

// New checks the chain against the signer and returns the CA. It refuses a
// chain whose issuing certificate is not a CA, does not match the signer,
// lacks codeSigning on an intermediate, or does not verify to its root.
func New(signer crypto.Signer, chain []*x509.Certificate, validity time.Duration) (*CA, error) {
	if len(chain) == 0 {
		return nil, errors.New("CA chain is empty")
	}
	if validity <= 0 || validity > 24*time.Hour {
		return nil, fmt.Errorf("certificate validity %s must be between 1s and 24h", validity)
	}
	issuing := chain[0]
	if !issuing.IsCA || !issuing.BasicConstraintsValid {
		return nil, fmt.Errorf("issuing certificate %q is not a CA (basicConstraints CA:TRUE missing)", issuing.Subject)
	}
	if issuing.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("issuing certificate %q lacks keyUsage certSign", issuing.Subject)
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(issuing.PublicKey) {
		return nil, fmt.Errorf("the CA signer's key does not match the issuing certificate %q", issuing.Subject)
	}
	for i, c := range chain[:len(chain)-1] {
		if !hasEKU(c, x509.ExtKeyUsageCodeSigning) {
			return nil, fmt.Errorf("intermediate certificate %d %q lacks extended key usage codeSigning (clients chain EKUs)", i, c.Subject)
		}
		if !c.IsCA {
			return nil, fmt.Errorf("certificate %d %q of the chain is not a CA", i, c.Subject)
		}
	}
	root := chain[len(chain)-1]
	roots := x509.NewCertPool()
	roots.AddCert(root)
	if len(chain) > 1 {
		inters := x509.NewCertPool()
		for _, c := range chain[1 : len(chain)-1] {
			inters.AddCert(c)
		}
		if _, err := issuing.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}); err != nil {
			return nil, fmt.Errorf("the CA chain does not verify to its root %q: %w", root.Subject, err)
		}
	} else if err := root.CheckSignatureFrom(root); err != nil {
		return nil, fmt.Errorf("the single CA certificate is not a self-signed root: %w", err)
	}
	return &CA{signer: signer, chain: chain, validity: validity, now: time.Now}, nil
}

func hasEKU(c *x509.Certificate, want x509.ExtKeyUsage) bool {
	for _, e := range c.ExtKeyUsage {
		if e == want {
			return true
		}
	}
	return false
}

// Chain is the issuing certificate up to the root.
func (c *CA) Chain() []*x509.Certificate { return c.chain }

var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// Template is the leaf for a principal and key, before signing. The CT step
// signs it twice (precertificate, then final with SCTs), so it is separate.
//
// It refuses (with *identity.ClaimError) a principal whose identity or
// extensions would make a malformed certificate, before anything is signed
// or logged.
func (c *CA) Template(p *identity.Principal, pub crypto.PublicKey) (*x509.Certificate, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 159))
	if err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encoding the public key: %w", err)
	}
	skid, err := subjectKeyID(spki)
	if err != nil {
		return nil, err
	}
	exts, err := p.Extensions.Render()
	if err != nil {
		return nil, err
	}
	now := c.now().UTC().Truncate(time.Second)
	t := &x509.Certificate{
		SerialNumber:   serial,
		NotBefore:      now,
		NotAfter:       now.Add(c.validity),
		KeyUsage:       x509.KeyUsageDigitalSignature,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		SubjectKeyId:   skid,
		AuthorityKeyId: c.chain[0].SubjectKeyId,
		// Not read by CreateCertificate; the direct encoder reuses it.
		RawSubjectPublicKeyInfo: spki,
		ExtraExtensions:         exts,
	}
	// With an empty subject Go marks the SAN critical, as RFC 5280 requires.
	switch {
	case p.Email != "":
		t.EmailAddresses = []string{p.Email}
	case p.URI != nil:
		t.URIs = append(t.URIs, p.URI)
	case p.OtherName != "":
		san, err := cryptoutils.MarshalOtherNameSAN(p.OtherName, true)
		if err != nil {
			return nil, err
		}
		t.ExtraExtensions = append([]pkix.Extension{*san}, t.ExtraExtensions...)
	default:
		return nil, errors.New("principal has no identity for the subject alternative name")
	}
	return t, nil
}

// subjectKeyID is RFC 5280's method 1: SHA-1 of the subjectPublicKey bits
// of a SubjectPublicKeyInfo.
func subjectKeyID(der []byte) ([]byte, error) {
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, err
	}
	sum := sha1.Sum(spki.PublicKey.Bytes)
	return sum[:], nil
}

// Sign issues the template as a certificate for pub.
func (c *CA) Sign(ctx context.Context, t *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, error) {
	der, err := c.signDER(ctx, t, pub)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func (c *CA) signDER(ctx context.Context, t *x509.Certificate, pub crypto.PublicKey) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if key, ok := c.fastSigner(); ok && !t.IsCA {
		return c.signLeafDirect(key, t, pub)
	}
	der, err := x509.CreateCertificate(rand.Reader, t, c.chain[0], pub, c.signer)
	if err != nil {
		return nil, fmt.Errorf("signing certificate: %w", err)
	}
	return der, nil
}

// Issued is a certificate as signed, with the template it was made from,
// which holds its serial, validity and subject public key: the CA's
// callers record those without parsing the certificate back (a few percent
// of the work per certificate).
type Issued struct {
	DER      []byte
	Template *x509.Certificate
}

// Issue makes and signs the leaf for a principal.
func (c *CA) Issue(ctx context.Context, p *identity.Principal, pub crypto.PublicKey) (Issued, error) {
	t, err := c.Template(p, pub)
	if err != nil {
		return Issued{}, err
	}
	var der []byte
	if c.sct != nil {
		der, err = c.issueWithSCT(ctx, t, pub)
	} else {
		der, err = c.signDER(ctx, t, pub)
	}
	return Issued{DER: der, Template: t}, err
}

// ValidatePublicKey accepts the key types Sigstore clients use: RSA of
// 2048, 3072 or 4096 bits, ECDSA P-256/384/521, Ed25519.
func ValidatePublicKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		switch k.N.BitLen() {
		case 2048, 3072, 4096:
		default:
			return fmt.Errorf("RSA key of %d bits is not allowed (2048, 3072 or 4096)", k.N.BitLen())
		}
		if k.E < 3 || k.E%2 == 0 {
			return errors.New("RSA key has an insecure public exponent")
		}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return fmt.Errorf("ECDSA curve %s is not allowed", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize || bytes.Equal(k, make([]byte, ed25519.PublicKeySize)) {
			return errors.New("Ed25519 key is malformed")
		}
	default:
		return fmt.Errorf("key type %T is not allowed", pub)
	}
	return nil
}
