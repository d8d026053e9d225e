package ca

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"

	ct "github.com/google/certificate-transparency-go"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	"golang.org/x/crypto/cryptobyte"
)

// SCTSource logs a precertificate and returns the log's promise to include
// it.
type SCTSource interface {
	LogPrecertificate(ctx context.Context, p *Precertificate) (*ct.SignedCertificateTimestamp, error)
}

// Precertificate is a signed precertificate with what an RFC 6962 log
// builds its entry from, so a log in this process parses nothing again.
type Precertificate struct {
	// DER is the precertificate; Chain its issuer's chain up to the root.
	DER   []byte
	Chain [][]byte
	// TBS is its TBSCertificate without the poison extension, and
	// IssuerKeyHash SHA-256 of the issuer's SubjectPublicKeyInfo: the
	// precertificate entry an SCT signs.
	TBS           []byte
	IssuerKeyHash [32]byte
}

var oidPoison = asn1.ObjectIdentifier(ctx509.OIDExtensionCTPoison)

// UseSCTSource makes Issue embed an SCT from src in every certificate.
// Call it before the CA serves requests.
func (c *CA) UseSCTSource(src SCTSource) { c.sct = src }

// EmbedsSCTs reports whether issued certificates carry an SCT list.
func (c *CA) EmbedsSCTs() bool { return c.sct != nil }

// issueWithSCT signs a precertificate (the template plus the critical CT
// poison), logs it, and signs the final certificate with the SCT list in
// the poison's place, so both share one TBS apart from that extension.
func (c *CA) issueWithSCT(ctx context.Context, t *x509.Certificate, pubKey any) ([]byte, error) {
	p := &Precertificate{IssuerKeyHash: sha256.Sum256(c.chain[0].RawSubjectPublicKeyInfo)}
	for _, cert := range c.chain {
		p.Chain = append(p.Chain, cert.Raw)
	}
	poison := pkix.Extension{Id: oidPoison, Critical: true, Value: asn1.NullBytes}
	if key, ok := c.fastSigner(); ok {
		// The poison is the last extension, so the TBS without it is the
		// template's own; the final certificate puts the SCT list there.
		enc, err := c.newLeafEncoder(key, t, pubKey)
		if err != nil {
			return nil, fmt.Errorf("encoding the precertificate: %w", err)
		}
		if p.TBS, err = enc.tbs(); err != nil {
			return nil, err
		}
		preTBS, err := enc.tbs(poison)
		if err != nil {
			return nil, err
		}
		if p.DER, err = signDirect(key, preTBS); err != nil {
			return nil, fmt.Errorf("signing the precertificate: %w", err)
		}
		ext, err := c.logPrecertificate(ctx, p)
		if err != nil {
			return nil, err
		}
		finalTBS, err := enc.tbs(ext)
		if err != nil {
			return nil, err
		}
		return signDirect(key, finalTBS)
	}
	pre := *t
	pre.ExtraExtensions = append(append([]pkix.Extension{}, t.ExtraExtensions...), poison)
	precert, err := c.Sign(ctx, &pre, pubKey)
	if err != nil {
		return nil, fmt.Errorf("signing the precertificate: %w", err)
	}
	p.DER = precert.Raw
	if p.TBS, err = ctx509.BuildPrecertTBS(precert.RawTBSCertificate, nil); err != nil {
		return nil, fmt.Errorf("removing the poison extension: %w", err)
	}
	ext, err := c.logPrecertificate(ctx, p)
	if err != nil {
		return nil, err
	}
	final := *t
	final.ExtraExtensions = append(append([]pkix.Extension{}, t.ExtraExtensions...), ext)
	return c.signDER(ctx, &final, pubKey)
}

// logPrecertificate gets the precertificate's SCT as the extension the
// final certificate carries.
func (c *CA) logPrecertificate(ctx context.Context, p *Precertificate) (pkix.Extension, error) {
	sct, err := c.sct.LogPrecertificate(ctx, p)
	if err != nil {
		return pkix.Extension{}, fmt.Errorf("logging the precertificate: %w", err)
	}
	return sctListExtension(sct)
}

// sctListExtension encodes RFC 6962's SignedCertificateTimestampList (with
// cryptobyte: certificate-transparency-go's reflective TLS encoder was a
// visible share of the CPU per certificate; a test compares the bytes).
func sctListExtension(scts ...*ct.SignedCertificateTimestamp) (pkix.Extension, error) {
	var list cryptobyte.Builder
	list.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, s := range scts {
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
				b.AddUint8(uint8(s.SCTVersion))
				b.AddBytes(s.LogID.KeyID[:])
				b.AddUint64(s.Timestamp)
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(s.Extensions) })
				b.AddUint8(uint8(s.Signature.Algorithm.Hash))
				b.AddUint8(uint8(s.Signature.Algorithm.Signature))
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(s.Signature.Signature) })
			})
		}
	})
	inner, err := list.Bytes()
	if err != nil {
		return pkix.Extension{}, fmt.Errorf("encoding the SCT list: %w", err)
	}
	value, err := asn1.Marshal(inner)
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier(ctx509.OIDExtensionCTSCT), Value: value}, nil
}
