package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	ct "github.com/google/certificate-transparency-go"
	"github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/signet-dev/signet/ca/identity"
	"github.com/signet-dev/signet/internal/sigalg"
)

type pki struct {
	rootKey, interKey *ecdsa.PrivateKey
	root, inter       *x509.Certificate
}

func cert(t *testing.T, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func newPKI(t *testing.T, interEKU []x509.ExtKeyUsage, interIsCA bool) pki {
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	interKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	rootT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "root"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	root := cert(t, rootT, rootT, rootKey.Public(), rootKey)
	interT := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "intermediate"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: interIsCA, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, ExtKeyUsage: interEKU}
	inter := cert(t, interT, root, interKey.Public(), rootKey)
	return pki{rootKey, interKey, root, inter}
}

func TestNewChecksTheChain(t *testing.T) {
	good := newPKI(t, []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}, true)
	noEKU := newPKI(t, nil, true)
	notCA := newPKI(t, []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}, false)
	other := newPKI(t, []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}, true)
	for _, tt := range []struct {
		name   string
		signer crypto.Signer
		chain  []*x509.Certificate
		want   string
	}{
		{"good", good.interKey, []*x509.Certificate{good.inter, good.root}, ""},
		{"root only", good.rootKey, []*x509.Certificate{good.root}, ""},
		{"signer mismatch", other.interKey, []*x509.Certificate{good.inter, good.root}, "does not match the issuing certificate"},
		{"intermediate without codeSigning", noEKU.interKey, []*x509.Certificate{noEKU.inter, noEKU.root}, "lacks extended key usage codeSigning"},
		{"issuing cert not a CA", notCA.interKey, []*x509.Certificate{notCA.inter, notCA.root}, "is not a CA"},
		{"wrong root", good.interKey, []*x509.Certificate{good.inter, other.root}, "does not verify to its root"},
		{"empty", good.interKey, nil, "empty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.signer, tt.chain, DefaultValidity)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// The username SAN is an otherName that sigstore's own parser reads back.
func TestUsernameOtherNameSAN(t *testing.T) {
	p := newPKI(t, []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}, true)
	c, err := New(p.interKey, []*x509.Certificate{p.inter, p.root}, DefaultValidity)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := issue(t, c, &identity.Principal{OtherName: "alice!example.com", Extensions: identity.Extensions{Issuer: "https://idp", Subject: "alice"}}, key.Public())
	got, err := cryptoutils.UnmarshalOtherNameSAN(leaf.Extensions)
	if err != nil || got != "alice!example.com" {
		t.Fatalf("otherName %q, %v", got, err)
	}
	for _, e := range leaf.Extensions {
		if e.Id.Equal(oidSubjectAltName) && !e.Critical {
			t.Fatal("otherName SAN not critical")
		}
	}
	uriLeaf := issue(t, c, &identity.Principal{URI: &url.URL{Scheme: "https", Host: "ci.example.com", Path: "/job"}, Extensions: identity.Extensions{Issuer: "https://idp"}}, key.Public())
	if len(uriLeaf.URIs) != 1 {
		t.Fatalf("URI leaf has URIs %v", uriLeaf.URIs)
	}
}

func TestVerifyProofAndCSR(t *testing.T) {
	allowed, _ := sigalg.NewSet(nil, DefaultAlgorithms)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	// A P-384 proof must use SHA-384, the key's default digest.
	wrongDigest, _ := p384.Sign(rand.Reader, make([]byte, 32), crypto.SHA256)
	if err := VerifyProof(p384.Public(), []string{"sub"}, wrongDigest, allowed); err == nil {
		t.Fatal("accepted a proof over the wrong digest")
	}
	onlyP256, _ := sigalg.NewSet([]sigalg.Algorithm{sigalg.P256SHA256}, nil)
	if err := VerifyProof(p384.Public(), []string{"sub"}, wrongDigest, onlyP256); err == nil || !strings.Contains(err.Error(), "ECDSA P-384 key, SHA-384 digest) is not allowed") {
		t.Fatalf("allow-list not applied: %v", err)
	}
	// A P-384 CSR signed with SHA-256 is not a default pair (as Fulcio).
	csrDER, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{SignatureAlgorithm: x509.ECDSAWithSHA256}, p384)
	if _, err := ParseCSR(pemCSR(csrDER), allowed); err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Fatalf("P-384/SHA-256 CSR: %v", err)
	}
	good, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{SignatureAlgorithm: x509.ECDSAWithSHA384}, p384)
	if _, err := ParseCSR(pemCSR(good), allowed); err != nil {
		t.Fatal(err)
	}
	tampered := pemCSR(good)
	tampered[len(tampered)/2] ^= 1
	if _, err := ParseCSR(tampered, allowed); err == nil {
		t.Fatal("tampered CSR accepted")
	}
}

func pemCSR(der []byte) []byte {
	return []byte("-----BEGIN CERTIFICATE REQUEST-----\n" + wrap64(der) + "-----END CERTIFICATE REQUEST-----\n")
}

func wrap64(der []byte) string {
	s := base64Std(der)
	var b strings.Builder
	for len(s) > 64 {
		b.WriteString(s[:64] + "\n")
		s = s[64:]
	}
	return b.String() + s + "\n"
}

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// The direct leaf encoder must produce exactly the TBSCertificate that
// x509.CreateCertificate does for the same template.
func TestDirectSigningMatchesCreateCertificate(t *testing.T) {
	p := newPKI(t, []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}, true)
	c, err := New(p.interKey, []*x509.Certificate{p.inter, p.root}, DefaultValidity)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for name, pr := range map[string]*identity.Principal{
		"email": {Email: "a@example.com", Extensions: identity.Extensions{Issuer: "https://idp", Subject: "a"}},
		"uri": {URI: &url.URL{Scheme: "https", Host: "github.com", Path: "/o/r/.github/workflows/x.yml@refs/heads/main"},
			Extensions: identity.Extensions{Issuer: "https://token.actions.githubusercontent.com", Subject: "repo:o/r", CI: map[string]string{"build-signer-uri": "https://github.com/o/r", "github-workflow-sha": "abc"}}},
		"username": {OtherName: "alice!example.com", Extensions: identity.Extensions{Issuer: "https://idp", Subject: "alice"}},
	} {
		t.Run(name, func(t *testing.T) {
			tmpl, err := c.Template(pr, key.Public())
			if err != nil {
				t.Fatal(err)
			}
			der, err := c.signLeafDirect(p.interKey, tmpl, key.Public())
			if err != nil {
				t.Fatal(err)
			}
			direct, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			viaGo, err := x509.CreateCertificate(rand.Reader, tmpl, p.inter, key.Public(), p.interKey)
			if err != nil {
				t.Fatal(err)
			}
			goCert, _ := x509.ParseCertificate(viaGo)
			if !bytes.Equal(direct.RawTBSCertificate, goCert.RawTBSCertificate) {
				t.Fatalf("TBS differs from x509.CreateCertificate's:\n direct %x\n go     %x", direct.RawTBSCertificate, goCert.RawTBSCertificate)
			}
			if err := direct.CheckSignatureFrom(p.inter); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// recordingCT keeps the precertificate the CA hands its log; the real CT
// log's SCTs are verified end to end by sigstore-go and cosign in
// internal/server. Here only the handed-over entry matters.
type recordingCT struct{ got *Precertificate }

func (r *recordingCT) LogPrecertificate(_ context.Context, p *Precertificate) (*ct.SignedCertificateTimestamp, error) {
	r.got = p
	return &ct.SignedCertificateTimestamp{SCTVersion: ct.V1, Timestamp: 1, Signature: ct.DigitallySigned{
		Algorithm: tls.SignatureAndHashAlgorithm{Hash: tls.SHA256, Signature: tls.ECDSA}, Signature: []byte{1}}}, nil
}

// The precertificate entry the CA builds itself (the TBS without poison)
// must be what certificate-transparency-go derives both from the
// precertificate, as a CT log does, and from the final certificate, as
// SCT verifiers do; with direct signing and through CreateCertificate.
func TestPrecertificateEntryMatchesCTGo(t *testing.T) {
	p := newPKI(t, []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}, true)
	for name, signer := range map[string]crypto.Signer{
		"direct":            p.interKey,
		"CreateCertificate": struct{ crypto.Signer }{p.interKey},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := New(signer, []*x509.Certificate{p.inter, p.root}, DefaultValidity)
			if err != nil {
				t.Fatal(err)
			}
			rec := &recordingCT{}
			c.UseSCTSource(rec)
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			final := issue(t, c, &identity.Principal{Email: "a@example.com", Extensions: identity.Extensions{Issuer: "https://idp", Subject: "a"}}, key.Public())
			got := rec.got
			precert, err := x509.ParseCertificate(got.DER)
			if err != nil {
				t.Fatal(err)
			}
			if err := precert.CheckSignatureFrom(p.inter); err != nil {
				t.Fatalf("precertificate: %v", err)
			}
			fromPrecert, err := ctx509.BuildPrecertTBS(precert.RawTBSCertificate, nil)
			if err != nil {
				t.Fatal(err)
			}
			fromFinal, err := ctx509.RemoveSCTList(final.RawTBSCertificate)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.TBS, fromPrecert) || !bytes.Equal(got.TBS, fromFinal) {
				t.Fatalf("precertificate entry TBS differs:\n CA         %x\n precert    %x\n final cert %x", got.TBS, fromPrecert, fromFinal)
			}
			if got.IssuerKeyHash != sha256.Sum256(p.inter.RawSubjectPublicKeyInfo) || len(got.Chain) != 2 ||
				!bytes.Equal(got.Chain[0], p.inter.Raw) || !bytes.Equal(got.Chain[1], p.root.Raw) {
				t.Fatal("issuer key hash or chain is not the issuing certificate's")
			}
		})
	}
}

// The SCT list extension is what certificate-transparency-go encodes.
func TestSCTListMatchesCTGo(t *testing.T) {
	var scts []*ct.SignedCertificateTimestamp
	var want ctx509.SignedCertificateTimestampList
	for i := range 3 {
		s := &ct.SignedCertificateTimestamp{SCTVersion: ct.V1, Timestamp: uint64(1700000000000 + i), Extensions: ct.CTExtensions(bytes.Repeat([]byte{byte(i)}, i)),
			Signature: ct.DigitallySigned{Algorithm: tls.SignatureAndHashAlgorithm{Hash: tls.SHA256, Signature: tls.ECDSA}, Signature: bytes.Repeat([]byte{0xab}, 70+i)}}
		rand.Read(s.LogID.KeyID[:]) //nolint:errcheck
		scts = append(scts, s)
		b, err := tls.Marshal(*s)
		if err != nil {
			t.Fatal(err)
		}
		want.SCTList = append(want.SCTList, ctx509.SerializedSCT{Val: b})
		inner, err := tls.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		wantValue, _ := asn1.Marshal(inner)
		ext, err := sctListExtension(scts...)
		if err != nil || !bytes.Equal(ext.Value, wantValue) || !ext.Id.Equal(asn1.ObjectIdentifier(ctx509.OIDExtensionCTSCT)) || ext.Critical {
			t.Fatalf("%d SCTs: %v\n got  %x\n want %x", i+1, err, ext.Value, wantValue)
		}
	}
}

// issue issues a leaf and checks that what Issue reports beside the DER
// (from the template) is what the certificate says.
func issue(t *testing.T, c *CA, p *identity.Principal, pub crypto.PublicKey) *x509.Certificate {
	t.Helper()
	issued, err := c.Issue(context.Background(), p, pub)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(issued.DER)
	if err != nil {
		t.Fatal(err)
	}
	tm := issued.Template
	if cert.SerialNumber.Cmp(tm.SerialNumber) != 0 || !cert.NotBefore.Equal(tm.NotBefore) || !cert.NotAfter.Equal(tm.NotAfter) ||
		!bytes.Equal(cert.RawSubjectPublicKeyInfo, tm.RawSubjectPublicKeyInfo) {
		t.Fatalf("issued %v %v..%v %x, template says %v %v..%v %x", cert.SerialNumber, cert.NotBefore, cert.NotAfter, cert.RawSubjectPublicKeyInfo,
			tm.SerialNumber, tm.NotBefore, tm.NotAfter, tm.RawSubjectPublicKeyInfo)
	}
	return cert
}

// The direct encoder must refuse whatever x509.CreateCertificate refuses,
// and whatever it signs but x509.ParseCertificate then refuses (a
// certificate no Go client can read, whose precertificate would already be
// logged). It may refuse more (fields it does not write), never less; what
// both sign must be the same TBSCertificate. Templates here skip Template's
// principal validation on purpose: the encoder is the last line.
func TestDirectSigningRefusesWhatCreateCertificateRefuses(t *testing.T) {
	p := newPKI(t, []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}, true)
	c, err := New(p.interKey, []*x509.Certificate{p.inter, p.root}, DefaultValidity)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	base := &identity.Principal{Email: "a@example.com", Extensions: identity.Extensions{Issuer: "https://idp", Subject: "a"}}
	uri := func(s string) *url.URL {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	ext := func(oid asn1.ObjectIdentifier) pkix.Extension {
		return pkix.Extension{Id: oid, Value: []byte{0x05, 0x00}}
	}
	otherName := func(name string) pkix.Extension {
		san, err := cryptoutils.MarshalOtherNameSAN(name, true)
		if err != nil {
			t.Fatal(err)
		}
		return *san
	}
	tests := []struct {
		name       string
		edit       func(*x509.Certificate)
		directOnly bool // CreateCertificate signs it and Go parses it; the encoder refuses what it does not write
	}{
		{name: "plain email", edit: func(*x509.Certificate) {}},
		{name: "email with plus and dots", edit: func(c *x509.Certificate) { c.EmailAddresses = []string{"a.b+c@sub.example.com"} }},
		{name: "non-ASCII email", edit: func(c *x509.Certificate) { c.EmailAddresses = []string{"jöhn@example.com"} }},
		{name: "email with newline", edit: func(c *x509.Certificate) { c.EmailAddresses = []string{"alice@example.com\nbob@evil.com"} }},
		{name: "email with NUL", edit: func(c *x509.Certificate) { c.EmailAddresses = []string{"alice@example.com\x00bob"} }},
		{name: "URI", edit: func(c *x509.Certificate) {
			c.EmailAddresses, c.URIs = nil, []*url.URL{uri("https://github.com/o/r/.github/workflows/x.yml@refs/heads/main")}
		}},
		{name: "URI with port and IPv6 host", edit: func(c *x509.Certificate) { c.EmailAddresses, c.URIs = nil, []*url.URL{uri("https://[::1]:8443/x")} }},
		{name: "SPIFFE URI", edit: func(c *x509.Certificate) {
			c.EmailAddresses, c.URIs = nil, []*url.URL{uri("spiffe://example.org/ns/a/sa/b")}
		}},
		{name: "non-ASCII URI host", edit: func(c *x509.Certificate) {
			c.EmailAddresses, c.URIs = nil, []*url.URL{{Scheme: "https", Host: "exämple.com", Path: "/x"}}
		}},
		{name: "URI host with an empty label", edit: func(c *x509.Certificate) { c.EmailAddresses, c.URIs = nil, []*url.URL{uri("https://a..b/x")} }},
		{name: "username otherName", edit: func(c *x509.Certificate) {
			c.EmailAddresses = nil
			c.ExtraExtensions = append([]pkix.Extension{otherName("alice!example.com")}, c.ExtraExtensions...)
		}},
		{name: "non-ASCII username otherName", edit: func(c *x509.Certificate) {
			c.EmailAddresses = nil
			c.ExtraExtensions = append([]pkix.Extension{otherName("jöhn!example.com")}, c.ExtraExtensions...)
		}},
		{name: "SAN extension beside SAN fields", edit: func(c *x509.Certificate) {
			c.ExtraExtensions = append([]pkix.Extension{otherName("alice!example.com")}, c.ExtraExtensions...)
		}, directOnly: true},
		{name: "extension twice", edit: func(c *x509.Certificate) {
			c.ExtraExtensions = append(c.ExtraExtensions, ext(asn1.ObjectIdentifier{1, 2, 3, 4}), ext(asn1.ObjectIdentifier{1, 2, 3, 4}))
		}},
		{name: "extra key usage extension", edit: func(c *x509.Certificate) {
			c.ExtraExtensions = append(c.ExtraExtensions, ext(asn1.ObjectIdentifier{2, 5, 29, 15}))
		}},
		{name: "negative serial", edit: func(c *x509.Certificate) { c.SerialNumber = big.NewInt(-5) }},
		{name: "no serial", edit: func(c *x509.Certificate) { c.SerialNumber = nil }, directOnly: true},
		{name: "subject", edit: func(c *x509.Certificate) { c.Subject = pkix.Name{CommonName: "x"} }, directOnly: true},
		{name: "DNS SAN", edit: func(c *x509.Certificate) { c.DNSNames = []string{"example.com"} }, directOnly: true},
		{name: "another signature algorithm", edit: func(c *x509.Certificate) { c.SignatureAlgorithm = x509.ECDSAWithSHA384 }, directOnly: true},
		{name: "CRL URL", edit: func(c *x509.Certificate) { c.CRLDistributionPoints = []string{"http://crl.example"} }, directOnly: true},
	}
	var refusedBoth, signedBoth int
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl, err := c.Template(base, key.Public())
			if err != nil {
				t.Fatal(err)
			}
			tt.edit(tmpl)
			viaGo, goErr := x509.CreateCertificate(rand.Reader, tmpl, p.inter, key.Public(), p.interKey)
			var goCert *x509.Certificate
			if goErr == nil {
				goCert, goErr = x509.ParseCertificate(viaGo)
			}
			der, directErr := c.signLeafDirect(p.interKey, tmpl, key.Public())
			switch {
			case tt.directOnly:
				if goErr != nil || directErr == nil {
					t.Fatalf("want Go to sign and parse (%v) and the encoder to refuse (%v)", goErr, directErr)
				}
			case goErr != nil:
				if directErr == nil {
					t.Fatalf("Go refuses (%v) but the encoder signed", goErr)
				}
				refusedBoth++
			default:
				if directErr != nil {
					t.Fatalf("Go signs and parses, the encoder refuses: %v", directErr)
				}
				direct, err := x509.ParseCertificate(der)
				if err != nil {
					t.Fatalf("Go cannot parse what the encoder signed: %v", err)
				}
				if !bytes.Equal(direct.RawTBSCertificate, goCert.RawTBSCertificate) {
					t.Fatalf("TBS differs from x509.CreateCertificate's:\n direct %x\n go     %x", direct.RawTBSCertificate, goCert.RawTBSCertificate)
				}
				signedBoth++
			}
		})
	}
	// The table is only worth something if it has cases on both sides.
	if refusedBoth < 5 || signedBoth < 5 {
		t.Fatalf("%d cases refused by both, %d signed by both; the table lost its point", refusedBoth, signedBoth)
	}
}
