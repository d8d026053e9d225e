package ca

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"

	ct "github.com/google/certificate-transparency-go"
	"github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
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
func (c *CA) issueWithSCT(ctx context.Context, t *x509.Certificate, pubKey any) (*x509.Certificate, error) {
	base := t.ExtraExtensions
	pre := *t
	pre.ExtraExtensions = append(append([]pkix.Extension{}, base...), pkix.Extension{Id: oidPoison, Critical: true, Value: asn1.NullBytes})
	p := &Precertificate{IssuerKeyHash: sha256.Sum256(c.chain[0].RawSubjectPublicKeyInfo)}
	for _, cert := range c.chain {
		p.Chain = append(p.Chain, cert.Raw)
	}
	if key, ok := c.fastSigner(); ok {
		// The poison is the last extension, so the TBS without it is the
		// template's own.
		var err error
		if p.TBS, err = c.leafTBS(key, t, pubKey); err != nil {
			return nil, fmt.Errorf("encoding the precertificate: %w", err)
		}
		if p.DER, err = c.signDirect(key, &pre, pubKey); err != nil {
			return nil, fmt.Errorf("signing the precertificate: %w", err)
		}
	} else {
		precert, err := c.Sign(ctx, &pre, pubKey)
		if err != nil {
			return nil, fmt.Errorf("signing the precertificate: %w", err)
		}
		p.DER = precert.Raw
		if p.TBS, err = ctx509.BuildPrecertTBS(precert.RawTBSCertificate, nil); err != nil {
			return nil, fmt.Errorf("removing the poison extension: %w", err)
		}
	}
	sct, err := c.sct.LogPrecertificate(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("logging the precertificate: %w", err)
	}
	ext, err := sctListExtension(sct)
	if err != nil {
		return nil, err
	}
	final := *t
	final.ExtraExtensions = append(append([]pkix.Extension{}, base...), ext)
	return c.Sign(ctx, &final, pubKey)
}

// sctListExtension encodes RFC 6962's SignedCertificateTimestampList.
func sctListExtension(scts ...*ct.SignedCertificateTimestamp) (pkix.Extension, error) {
	var list ctx509.SignedCertificateTimestampList
	for _, s := range scts {
		b, err := tls.Marshal(*s)
		if err != nil {
			return pkix.Extension{}, err
		}
		list.SCTList = append(list.SCTList, ctx509.SerializedSCT{Val: b})
	}
	inner, err := tls.Marshal(list)
	if err != nil {
		return pkix.Extension{}, err
	}
	value, err := asn1.Marshal(inner)
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier(ctx509.OIDExtensionCTSCT), Value: value}, nil
}
