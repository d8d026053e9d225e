package monitor

import (
	"crypto/sha256"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"

	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
)

// ParseCTLeaf reads a CT log's entry (an RFC 6962 MerkleTreeLeaf, as its
// tiles carry them) for the certificate's identity: a certificate entry
// or a precertificate's TBSCertificate, parsed with the CT library's x509
// (it reads precertificates Go's does not).
func ParseCTLeaf(leaf []byte) (Entry, error) {
	var l ct.MerkleTreeLeaf
	rest, err := cttls.Unmarshal(leaf, &l)
	switch {
	case err != nil:
		return Entry{}, fmt.Errorf("CT leaf: %w", err)
	case len(rest) != 0:
		return Entry{}, fmt.Errorf("CT leaf: %d bytes after it", len(rest))
	case l.TimestampedEntry == nil:
		return Entry{}, fmt.Errorf("CT leaf of type %d has no timestamped entry", l.LeafType)
	}
	var cert *ctx509.Certificate
	e := Entry{}
	switch te := l.TimestampedEntry; te.EntryType {
	case ct.X509LogEntryType:
		e.Kind = "x509"
		if te.X509Entry == nil {
			return Entry{}, fmt.Errorf("CT x509 entry without a certificate")
		}
		cert, err = ctx509.ParseCertificate(te.X509Entry.Data)
	case ct.PrecertLogEntryType:
		e.Kind = "precert"
		if te.PrecertEntry == nil {
			return Entry{}, fmt.Errorf("CT precert entry without a TBSCertificate")
		}
		cert, err = ctx509.ParseTBSCertificate(te.PrecertEntry.TBSCertificate)
	default:
		return Entry{}, fmt.Errorf("CT entry type %d", te.EntryType)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("CT %s entry: %w", e.Kind, err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	s := Signer{KeySHA256: hex.EncodeToString(sum[:]), Emails: cert.EmailAddresses, Subject: cert.Subject.String()}
	for _, u := range cert.URIs {
		s.URIs = append(s.URIs, u.String())
	}
	exts := make([]pkix.Extension, len(cert.Extensions))
	for i, x := range cert.Extensions {
		exts[i] = pkix.Extension{Id: asn1.ObjectIdentifier(x.Id), Critical: x.Critical, Value: x.Value}
	}
	fulcio, err := certificate.ParseExtensions(exts)
	if err != nil {
		return Entry{}, fmt.Errorf("CT %s entry's extensions: %w", e.Kind, err)
	}
	s.Issuer, s.Repository = fulcio.Issuer, fulcio.SourceRepositoryURI
	e.Signers = []Signer{s}
	return e, nil
}
