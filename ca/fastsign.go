package ca

import (
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
	"time"

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
	sigAlg, digest := directAlgorithm(key)
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

// directAlgorithm is the signature algorithm and digest for the key's curve.
func directAlgorithm(key *ecdsa.PrivateKey) (asn1.ObjectIdentifier, func([]byte) []byte) {
	switch key.Curve {
	case elliptic.P256():
		return oidECDSASHA256, func(b []byte) []byte { d := sha256.Sum256(b); return d[:] }
	case elliptic.P384():
		return oidECDSASHA384, func(b []byte) []byte { d := sha512.Sum384(b); return d[:] }
	default:
		return oidECDSASHA512, func(b []byte) []byte { d := sha512.Sum512(b); return d[:] }
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

// newLeafEncoder encodes a template made by Template.
func (c *CA) newLeafEncoder(key *ecdsa.PrivateKey, t *x509.Certificate, pub crypto.PublicKey) (*leafEncoder, error) {
	if t.KeyUsage != x509.KeyUsageDigitalSignature || len(t.ExtKeyUsage) != 1 || t.ExtKeyUsage[0] != x509.ExtKeyUsageCodeSigning || t.IsCA {
		return nil, errors.New("direct signing only handles code-signing leaves")
	}
	spki := t.RawSubjectPublicKeyInfo
	if len(spki) == 0 {
		var err error
		if spki, err = x509.MarshalPKIXPublicKey(pub); err != nil {
			return nil, err
		}
	}
	sigAlg, _ := directAlgorithm(key)
	var hb cryptobyte.Builder
	hb.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) { b.AddASN1Int64(2) })
	hb.AddASN1BigInt(t.SerialNumber)
	hb.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(sigAlg) })
	hb.AddBytes(c.chain[0].RawSubject)
	hb.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		addTime(b, t.NotBefore)
		addTime(b, t.NotAfter)
	})
	hb.AddASN1(cbasn1.SEQUENCE, func(*cryptobyte.Builder) {}) // empty subject
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
	skid, _ := asn1.Marshal(t.SubjectKeyId)
	addExtension(&eb, oidSKID, false, skid)
	if len(t.AuthorityKeyId) > 0 {
		akid, _ := asn1.Marshal(struct {
			ID []byte `asn1:"optional,tag:0"`
		}{t.AuthorityKeyId})
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
