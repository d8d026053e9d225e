package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Leaf certificates are signed here rather than by x509.CreateCertificate
// when the issuing key is Go's own *ecdsa.PrivateKey: CreateCertificate
// verifies every signature it gets back (to catch faulty signers), which
// doubled the public-key work per certificate. Go's ECDSA cannot produce a
// bad signature, so the check buys nothing there; HSM and other signers keep
// going through CreateCertificate. The encoding follows CreateCertificate's
// for our templates (extension order: key usage, extended key usage, subject
// key ID, authority key ID, SAN, then the extra extensions), and the tests
// check the result with crypto/x509, zlint, sigstore-go and cosign.

var (
	oidKeyUsage    = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidSKID        = asn1.ObjectIdentifier{2, 5, 29, 14}
	oidAKID        = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidCodeSigning = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 3}
	oidECDSASHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSASHA384 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSASHA512 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
)

// emptySubject is the DER of an empty Name.
var emptySubject = []byte{0x30, 0x00}

// fastSigner reports whether leaves can take the direct path.
func (c *CA) fastSigner() (*ecdsa.PrivateKey, bool) {
	k, ok := c.signer.(*ecdsa.PrivateKey)
	return k, ok
}

func addTime(b *cryptobyte.Builder, t time.Time) {
	t = t.UTC()
	if t.Year() >= 1950 && t.Year() < 2050 {
		b.AddASN1UTCTime(t)
	} else {
		b.AddASN1GeneralizedTime(t)
	}
}

func addExtension(b *cryptobyte.Builder, oid asn1.ObjectIdentifier, critical bool, value []byte) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		if critical {
			b.AddASN1Boolean(true)
		}
		b.AddASN1OctetString(value)
	})
}

// signLeafDirect encodes and signs a leaf for a template made by Template.
func (c *CA) signLeafDirect(key *ecdsa.PrivateKey, t *x509.Certificate, pub crypto.PublicKey) ([]byte, error) {
	enc, err := c.newLeafEncoder(key, t, pub)
	if err != nil {
		return nil, err
	}
	tbs, err := enc.tbs()
	if err != nil {
		return nil, err
	}
	return signDirect(key, tbs)
}

// signDirect signs a TBSCertificate into a certificate's DER.
func signDirect(key *ecdsa.PrivateKey, tbs []byte) ([]byte, error) {
	sigAlg, digest, _ := directAlgorithm(key)
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest(tbs))
	if err != nil {
		return nil, err
	}
	var cb cryptobyte.Builder
	cb.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(tbs)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(sigAlg) })
		b.AddASN1BitString(sig)
	})
	return cb.Bytes()
}

// directAlgorithm is the signature algorithm and digest for the key's
// curve, the ones x509.CreateCertificate picks.
func directAlgorithm(key *ecdsa.PrivateKey) (asn1.ObjectIdentifier, func([]byte) []byte, x509.SignatureAlgorithm) {
	switch key.Curve {
	case elliptic.P256():
		return oidECDSASHA256, func(b []byte) []byte { d := sha256.Sum256(b); return d[:] }, x509.ECDSAWithSHA256
	case elliptic.P384():
		return oidECDSASHA384, func(b []byte) []byte { d := sha512.Sum384(b); return d[:] }, x509.ECDSAWithSHA384
	default:
		return oidECDSASHA512, func(b []byte) []byte { d := sha512.Sum512(b); return d[:] }, x509.ECDSAWithSHA512
	}
}

// leafEncoder holds a leaf's TBSCertificate encoded but for the closing of
// its extensions, so the precertificate, the entry its SCT signs and the
// final certificate, which differ only in a last extension, share the work.
type leafEncoder struct {
	// head is the TBS fields before the extensions, exts the template's
	// extensions, each element encoded.
	head, exts []byte
}

// checkDirectTemplate refuses, before anything is encoded, signed or
// logged, a template the direct encoder would sign otherwise than
// x509.CreateCertificate does, or into a certificate crypto/x509 cannot
// parse back:
//   - what CreateCertificate itself refuses: a negative serial, and SAN
//     strings that are not IA5 (a non-ASCII email made a certificate no Go
//     client could read, after its precertificate had been logged);
//   - fields the encoder does not write and would drop silently: a
//     subject, DNS or IP SANs, basic constraints, policies, name
//     constraints, AIA and CRL URLs, unknown EKUs, another signature
//     algorithm than the key's, no serial (CreateCertificate makes one up);
//   - what CreateCertificate signs but ParseCertificate refuses: a URI SAN
//     that does not parse or whose host has an empty label or a
//     non-printable byte, and an extension twice (extra extensions
//     replace CreateCertificate's own; here they would be added);
//   - a SAN extension among the extra extensions beside SAN fields:
//     CreateCertificate drops the fields, and with them an identity.
func checkDirectTemplate(t *x509.Certificate, keyAlg x509.SignatureAlgorithm, akid []byte) error {
	if t.KeyUsage != x509.KeyUsageDigitalSignature || len(t.ExtKeyUsage) != 1 || t.ExtKeyUsage[0] != x509.ExtKeyUsageCodeSigning || t.IsCA {
		return errors.New("direct signing only handles code-signing leaves")
	}
	switch {
	case t.SerialNumber == nil:
		return errors.New("direct signing needs the template's serial number")
	case t.SerialNumber.Sign() < 0:
		return errors.New("x509: serial number must be positive")
	case t.SignatureAlgorithm != x509.UnknownSignatureAlgorithm && t.SignatureAlgorithm != keyAlg:
		return fmt.Errorf("direct signing uses %v for this key, not %v", keyAlg, t.SignatureAlgorithm)
	}
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"a subject", len(t.RawSubject) > 0 || len(t.Subject.ToRDNSequence()) > 0},
		{"DNS or IP SANs", len(t.DNSNames)+len(t.IPAddresses) > 0},
		{"basic constraints", t.BasicConstraintsValid},
		{"policies", len(t.Policies)+len(t.PolicyIdentifiers) > 0},
		{"name constraints", len(t.PermittedDNSDomains)+len(t.ExcludedDNSDomains)+len(t.PermittedIPRanges)+len(t.ExcludedIPRanges)+
			len(t.PermittedEmailAddresses)+len(t.ExcludedEmailAddresses)+len(t.PermittedURIDomains)+len(t.ExcludedURIDomains) > 0},
		{"AIA or CRL URLs", len(t.OCSPServer)+len(t.IssuingCertificateURL)+len(t.CRLDistributionPoints) > 0},
		{"unknown extended key usages", len(t.UnknownExtKeyUsage) > 0},
	} {
		if f.set {
			return fmt.Errorf("direct signing does not write %s: sign this template with x509.CreateCertificate", f.name)
		}
	}
	for _, e := range t.EmailAddresses {
		if err := isIA5String(e); err != nil {
			return err
		}
	}
	for _, u := range t.URIs {
		if u == nil {
			return errors.New("x509: nil URI in the template")
		}
		if err := checkURISAN(u.String()); err != nil {
			return err
		}
	}
	hasSAN := len(t.EmailAddresses)+len(t.URIs) > 0
	// The encoder's own extensions; extra ones must not repeat them or
	// each other (a handful each: comparing pairs allocates nothing).
	for i, e := range t.ExtraExtensions {
		if e.Id.Equal(oidSubjectAltName) && hasSAN {
			return errors.New("the template has SAN fields and a SAN extension; x509.CreateCertificate would drop the fields")
		}
		dup := e.Id.Equal(oidKeyUsage) || e.Id.Equal(oidExtKeyUsage) ||
			e.Id.Equal(oidSKID) && len(t.SubjectKeyId) > 0 || e.Id.Equal(oidAKID) && len(akid) > 0
		for _, f := range t.ExtraExtensions[:i] {
			dup = dup || f.Id.Equal(e.Id)
		}
		if dup {
			return fmt.Errorf("x509: certificate would contain extension %v twice", e.Id)
		}
	}
	return nil
}

// isIA5String is x509.CreateCertificate's check of SAN strings.
func isIA5String(s string) error {
	for _, r := range s {
		if r > unicode.MaxASCII {
			return fmt.Errorf("x509: %q cannot be encoded as an IA5String", s)
		}
	}
	return nil
}

// checkURISAN is what x509.CreateCertificate checks of a URI SAN (IA5)
// and what x509.ParseCertificate then checks (it parses, and its host has
// no empty label and only printable ASCII).
func checkURISAN(s string) error {
	if err := isIA5String(s); err != nil {
		return err
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("x509: URI SAN %q would not parse: %w", s, err)
	}
	if u.Host == "" {
		return nil
	}
	for _, label := range strings.Split(u.Host, ".") {
		if label == "" || strings.IndexFunc(label, func(r rune) bool { return r < 33 || r > 126 }) >= 0 {
			return fmt.Errorf("x509: URI SAN %q has an invalid host", s)
		}
	}
	return nil
}

// newLeafEncoder encodes a template made by Template.
func (c *CA) newLeafEncoder(key *ecdsa.PrivateKey, t *x509.Certificate, pub crypto.PublicKey) (*leafEncoder, error) {
	// As CreateCertificate: the issuer's key ID when it has one and is
	// not the subject (ours is empty), else the template's.
	akidValue := t.AuthorityKeyId
	if len(c.chain[0].SubjectKeyId) > 0 && !bytes.Equal(c.chain[0].RawSubject, emptySubject) {
		akidValue = c.chain[0].SubjectKeyId
	}
	sigAlg, _, keyAlg := directAlgorithm(key)
	if err := checkDirectTemplate(t, keyAlg, akidValue); err != nil {
		return nil, err
	}
	spki := t.RawSubjectPublicKeyInfo
	if len(spki) == 0 {
		var err error
		if spki, err = x509.MarshalPKIXPublicKey(pub); err != nil {
			return nil, err
		}
	}
	var hb cryptobyte.Builder
	hb.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) { b.AddASN1Int64(2) })
	hb.AddASN1BigInt(t.SerialNumber)
	hb.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(sigAlg) })
	hb.AddBytes(c.chain[0].RawSubject)
	hb.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		addTime(b, t.NotBefore)
		addTime(b, t.NotAfter)
	})
	hb.AddBytes(emptySubject)
	hb.AddBytes(spki)
	head, err := hb.Bytes()
	if err != nil {
		return nil, err
	}
	var eb cryptobyte.Builder
	// keyUsage digitalSignature: BIT STRING, 7 unused bits, 0x80.
	addExtension(&eb, oidKeyUsage, true, []byte{0x03, 0x02, 0x07, 0x80})
	eku, _ := asn1.Marshal([]asn1.ObjectIdentifier{oidCodeSigning})
	addExtension(&eb, oidExtKeyUsage, false, eku)
	if len(t.SubjectKeyId) > 0 {
		skid, _ := asn1.Marshal(t.SubjectKeyId)
		addExtension(&eb, oidSKID, false, skid)
	}
	if len(akidValue) > 0 {
		akid, _ := asn1.Marshal(struct {
			ID []byte `asn1:"optional,tag:0"`
		}{akidValue})
		addExtension(&eb, oidAKID, false, akid)
	}
	if len(t.EmailAddresses)+len(t.URIs) > 0 {
		var san cryptobyte.Builder
		san.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			for _, e := range t.EmailAddresses {
				b.AddASN1(cbasn1.Tag(1).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(e)) })
			}
			for _, u := range t.URIs {
				b.AddASN1(cbasn1.Tag(6).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(u.String())) })
			}
		})
		sanDER, err := san.Bytes()
		if err != nil {
			return nil, err
		}
		addExtension(&eb, oidSubjectAltName, true, sanDER)
	}
	for _, e := range t.ExtraExtensions {
		addExtension(&eb, e.Id, e.Critical, e.Value)
	}
	exts, err := eb.Bytes()
	if err != nil {
		return nil, err
	}
	return &leafEncoder{head: head, exts: exts}, nil
}

// tbs is the TBSCertificate with more extensions after the template's.
func (e *leafEncoder) tbs(more ...pkix.Extension) ([]byte, error) {
	b := cryptobyte.NewBuilder(make([]byte, 0, len(e.head)+len(e.exts)+64))
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(e.head)
		b.AddASN1(cbasn1.Tag(3).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddBytes(e.exts)
				for _, x := range more {
					addExtension(b, x.Id, x.Critical, x.Value)
				}
			})
		})
	})
	return b.Bytes()
}
