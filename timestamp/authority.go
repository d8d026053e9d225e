package timestamp

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

var (
	oidSignedData           = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidTSTInfo              = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 4}
	oidContentType          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidMessageDigest        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidSigningCertificateV2 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 47}
	oidECDSAWithSHA256      = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSAWithSHA384      = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSAWithSHA512      = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	oidSHA256WithRSA        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidSHA384WithRSA        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	oidSHA512WithRSA        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}

	// SigstorePolicy is the policy OID Sigstore's TSA uses by default.
	SigstorePolicy = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 2}
)

// Config describes an authority.
type Config struct {
	Signer crypto.Signer
	// Chain is the signing certificate first, the root last.
	Chain []*x509.Certificate
	// DefaultPolicy goes in tokens whose request names none.
	DefaultPolicy asn1.ObjectIdentifier
	// AcceptedPolicies may be requested (DefaultPolicy always may).
	AcceptedPolicies []asn1.ObjectIdentifier
	// Accuracy is the stated accuracy of genTime (zero: none stated).
	Accuracy time.Duration
	// IncludeChain puts the whole chain, not only the signing certificate,
	// in tokens whose request sets certReq.
	IncludeChain bool
	// AllowExtensions copies request extensions into tokens instead of
	// rejecting them.
	AllowExtensions bool
	// Hash is the CMS digest (default: SHA-256, SHA-384 for a P-384 key,
	// SHA-512 for P-521).
	Hash crypto.Hash
	Now  func() time.Time
}

// Authority issues time-stamp tokens.
type Authority struct {
	cfg      Config
	accepted map[string]bool
	sigAlg   asn1.ObjectIdentifier
	digestID []byte // DER AlgorithmIdentifier of the CMS digest
	// Constant parts of every token, encoded once.
	sid         []byte // IssuerAndSerialNumber
	essAttr     []byte // signingCertificateV2 attribute
	ctAttr      []byte // contentType attribute
	tsaName     []byte // [0] GeneralName of the signing certificate's subject
	certsLeaf   []byte // [0] certificates: the signing certificate
	certsChain  []byte // [0] certificates: the whole chain
	accuracyDER []byte
}

// Issued is what was stamped, for the audit record.
type Issued struct {
	Serial  *big.Int
	GenTime time.Time
	Hash    crypto.Hash
	Digest  []byte
	Policy  asn1.ObjectIdentifier
}

var extKeyUsageOID = asn1.ObjectIdentifier{2, 5, 29, 37}

// New validates the chain against RFC 3161's rules and the signer, then
// prepares the authority. Each refusal names the rule that broke.
func New(cfg Config) (*Authority, error) {
	if len(cfg.Chain) < 2 {
		return nil, errors.New("TSA chain needs at least the signing certificate and its root")
	}
	leaf := cfg.Chain[0]
	if leaf.IsCA {
		return nil, fmt.Errorf("TSA signing certificate %q must not be a CA", leaf.Subject)
	}
	if len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageTimeStamping || len(leaf.UnknownExtKeyUsage) != 0 {
		return nil, fmt.Errorf("TSA signing certificate %q must have exactly one extended key usage, timeStamping (RFC 3161 2.3)", leaf.Subject)
	}
	for _, e := range leaf.Extensions {
		if e.Id.Equal(extKeyUsageOID) && !e.Critical {
			return nil, fmt.Errorf("TSA signing certificate %q: its extended key usage must be marked critical (RFC 3161 2.3)", leaf.Subject)
		}
	}
	pub, ok := cfg.Signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		return nil, fmt.Errorf("the TSA signer's key does not match the signing certificate %q", leaf.Subject)
	}
	inters := x509.NewCertPool()
	for i, c := range cfg.Chain[1:] {
		if !c.IsCA {
			return nil, fmt.Errorf("TSA chain certificate %d %q is not a CA", i+1, c.Subject)
		}
		if i+1 < len(cfg.Chain)-1 {
			if len(c.ExtKeyUsage) > 0 && !containsEKU(c.ExtKeyUsage, x509.ExtKeyUsageTimeStamping) {
				return nil, fmt.Errorf("TSA intermediate %q restricts extended key usage without timeStamping", c.Subject)
			}
			inters.AddCert(c)
		}
	}
	roots := x509.NewCertPool()
	roots.AddCert(cfg.Chain[len(cfg.Chain)-1])
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping}, CurrentTime: leaf.NotBefore.Add(time.Second)}); err != nil {
		return nil, fmt.Errorf("the TSA chain does not verify to its root: %w", err)
	}
	if cfg.DefaultPolicy == nil {
		cfg.DefaultPolicy = SigstorePolicy
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Accuracy < 0 || cfg.Accuracy > time.Hour {
		return nil, fmt.Errorf("TSA accuracy %s must be between 0 and 1h", cfg.Accuracy)
	}
	a := &Authority{cfg: cfg, accepted: map[string]bool{cfg.DefaultPolicy.String(): true}}
	for _, p := range cfg.AcceptedPolicies {
		a.accepted[p.String()] = true
	}
	if err := a.prepare(); err != nil {
		return nil, err
	}
	return a, nil
}

func containsEKU(list []x509.ExtKeyUsage, want x509.ExtKeyUsage) bool {
	for _, e := range list {
		if e == want {
			return true
		}
	}
	return false
}

// Chain is the signing certificate up to the root.
func (a *Authority) Chain() []*x509.Certificate { return a.cfg.Chain }

func (a *Authority) prepare() error {
	switch k := a.cfg.Signer.Public().(type) {
	case *ecdsa.PublicKey:
		if a.cfg.Hash == 0 {
			switch k.Curve {
			case elliptic.P384():
				a.cfg.Hash = crypto.SHA384
			case elliptic.P521():
				a.cfg.Hash = crypto.SHA512
			default:
				a.cfg.Hash = crypto.SHA256
			}
		}
		a.sigAlg = map[crypto.Hash]asn1.ObjectIdentifier{crypto.SHA256: oidECDSAWithSHA256, crypto.SHA384: oidECDSAWithSHA384, crypto.SHA512: oidECDSAWithSHA512}[a.cfg.Hash]
	case *rsa.PublicKey:
		if a.cfg.Hash == 0 {
			a.cfg.Hash = crypto.SHA256
		}
		a.sigAlg = map[crypto.Hash]asn1.ObjectIdentifier{crypto.SHA256: oidSHA256WithRSA, crypto.SHA384: oidSHA384WithRSA, crypto.SHA512: oidSHA512WithRSA}[a.cfg.Hash]
	default:
		return fmt.Errorf("TSA key type %T is not supported (ECDSA or RSA)", k)
	}
	hashOID, ok := HashOID(a.cfg.Hash)
	if !ok || a.sigAlg == nil {
		return fmt.Errorf("TSA hash %s is not supported (SHA-256, SHA-384, SHA-512)", a.cfg.Hash)
	}
	leaf := a.cfg.Chain[0]
	var err error
	if a.digestID, err = build(func(b *cryptobyte.Builder) { addAlgID(b, hashOID, true) }); err != nil {
		return err
	}
	if a.sid, err = build(func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddBytes(leaf.RawIssuer)
			b.AddASN1BigInt(leaf.SerialNumber)
		})
	}); err != nil {
		return err
	}
	// ESSCertIDv2 with the default hash (SHA-256, so hashAlgorithm is
	// omitted) over the signing certificate, and its issuer and serial.
	certHash := sha256.Sum256(leaf.Raw)
	if a.essAttr, err = attribute(oidSigningCertificateV2, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // SigningCertificateV2
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // certs
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // ESSCertIDv2
					b.AddASN1OctetString(certHash[:])
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // IssuerSerial
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // GeneralNames
							b.AddASN1(cbasn1.Tag(4).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
								b.AddBytes(leaf.RawIssuer)
							})
						})
						b.AddASN1BigInt(leaf.SerialNumber)
					})
				})
			})
		})
	}); err != nil {
		return err
	}
	if a.ctAttr, err = attribute(oidContentType, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidTSTInfo) }); err != nil {
		return err
	}
	if a.tsaName, err = build(func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.Tag(4).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
				b.AddBytes(leaf.RawSubject)
			})
		})
	}); err != nil {
		return err
	}
	certs := func(n int) ([]byte, error) {
		return build(func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
				for _, c := range a.cfg.Chain[:n] {
					b.AddBytes(c.Raw)
				}
			})
		})
	}
	if a.certsLeaf, err = certs(1); err != nil {
		return err
	}
	if a.certsChain, err = certs(len(a.cfg.Chain)); err != nil {
		return err
	}
	if acc := a.cfg.Accuracy; acc > 0 {
		if a.accuracyDER, err = build(func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				if s := int64(acc / time.Second); s > 0 {
					b.AddASN1Int64(s)
				}
				if ms := int64(acc % time.Second / time.Millisecond); ms > 0 {
					b.AddASN1Int64WithTag(ms, cbasn1.Tag(0).ContextSpecific())
				}
				if us := int64(acc % time.Millisecond / time.Microsecond); us > 0 {
					b.AddASN1Int64WithTag(us, cbasn1.Tag(1).ContextSpecific())
				}
			})
		}); err != nil {
			return err
		}
	}
	return nil
}

func build(f func(*cryptobyte.Builder)) ([]byte, error) {
	var b cryptobyte.Builder
	f(&b)
	return b.Bytes()
}

func addAlgID(b *cryptobyte.Builder, oid asn1.ObjectIdentifier, null bool) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		if null {
			b.AddASN1NULL()
		}
	})
}

// attribute encodes a CMS Attribute with one value.
func attribute(oid asn1.ObjectIdentifier, value func(*cryptobyte.Builder)) ([]byte, error) {
	return build(func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oid)
			b.AddASN1(cbasn1.SET, value)
		})
	})
}

// generalizedTime encodes t in UTC with milliseconds, trailing zeros dropped.
func generalizedTime(t time.Time) []byte {
	t = t.UTC()
	s := t.Format("20060102150405")
	if ms := t.Nanosecond() / int(time.Millisecond); ms > 0 {
		frac := strconv.Itoa(1000 + ms)[1:]
		for frac[len(frac)-1] == '0' {
			frac = frac[:len(frac)-1]
		}
		s += "." + frac
	}
	return []byte(s + "Z")
}

func (a *Authority) digest(data []byte) []byte {
	switch a.cfg.Hash {
	case crypto.SHA384:
		d := sha512.Sum384(data)
		return d[:]
	case crypto.SHA512:
		d := sha512.Sum512(data)
		return d[:]
	default:
		d := sha256.Sum256(data)
		return d[:]
	}
}

// Stamp checks a request and returns a DER TimeStampResp granting it. A
// *Rejection says why a request is refused. It is Prepare then Sign.
func (a *Authority) Stamp(req *Request) ([]byte, *Issued, error) {
	issued, err := a.Prepare(req)
	if err != nil {
		return nil, nil, err
	}
	resp, err := a.Sign(req, issued)
	if err != nil {
		return nil, nil, err
	}
	return resp, issued, nil
}

// Prepare checks a request and decides what its token will say (policy,
// serial, time) without signing it, so that the token can be recorded
// while it is signed. A *Rejection says why a request is refused.
func (a *Authority) Prepare(req *Request) (*Issued, error) {
	policy := a.cfg.DefaultPolicy
	if req.Policy != nil {
		if !a.accepted[req.Policy.String()] {
			return nil, reject(UnacceptedPolicy, "policy %s is not accepted by this TSA", req.Policy)
		}
		policy = req.Policy
	}
	if req.Extensions != nil && !a.cfg.AllowExtensions {
		return nil, reject(UnacceptedExtension, "request extensions are not accepted by this TSA")
	}
	var serialBytes [16]byte
	if _, err := rand.Read(serialBytes[:]); err != nil {
		return nil, err
	}
	serialBytes[0] &= 0x7f
	return &Issued{Serial: new(big.Int).SetBytes(serialBytes[:]), GenTime: a.cfg.Now(), Hash: req.Hash, Digest: req.Digest, Policy: policy}, nil
}

// Sign makes the DER TimeStampResp granting req with what Prepare decided.
func (a *Authority) Sign(req *Request, issued *Issued) ([]byte, error) {
	policy, serial, genTime := issued.Policy, issued.Serial, issued.GenTime
	tst, err := build(func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1Int64(1)
			b.AddASN1ObjectIdentifier(policy)
			b.AddBytes(req.rawImprint)
			b.AddASN1BigInt(serial)
			b.AddASN1(cbasn1.GeneralizedTime, func(b *cryptobyte.Builder) { b.AddBytes(generalizedTime(genTime)) })
			if a.accuracyDER != nil {
				b.AddBytes(a.accuracyDER)
			}
			if req.Nonce != nil {
				b.AddASN1BigInt(req.Nonce)
			}
			b.AddBytes(a.tsaName)
			if req.Extensions != nil {
				b.AddASN1(cbasn1.Tag(1).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) { b.AddBytes(req.Extensions) })
			}
		})
	})
	if err != nil {
		return nil, fmt.Errorf("encoding TSTInfo: %w", err)
	}
	mdAttr, err := attribute(oidMessageDigest, func(b *cryptobyte.Builder) { b.AddASN1OctetString(a.digest(tst)) })
	if err != nil {
		return nil, err
	}
	// DER orders SET OF by encoding.
	attrs := [][]byte{a.ctAttr, mdAttr, a.essAttr}
	sort.Slice(attrs, func(i, j int) bool { return bytes.Compare(attrs[i], attrs[j]) < 0 })
	signedAttrs, err := build(func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
			for _, at := range attrs {
				b.AddBytes(at)
			}
		})
	})
	if err != nil {
		return nil, err
	}
	sig, err := a.cfg.Signer.Sign(rand.Reader, a.digest(signedAttrs), a.cfg.Hash)
	if err != nil {
		return nil, fmt.Errorf("signing the time-stamp token: %w", err)
	}
	_, isRSA := a.cfg.Signer.Public().(*rsa.PublicKey)
	resp, err := build(func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // TimeStampResp
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1Int64(0) }) // granted
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {                      // ContentInfo
				b.AddASN1ObjectIdentifier(oidSignedData)
				b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // SignedData
						b.AddASN1Int64(3)
						b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { b.AddBytes(a.digestID) })
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // EncapsulatedContentInfo
							b.AddASN1ObjectIdentifier(oidTSTInfo)
							b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
								b.AddASN1OctetString(tst)
							})
						})
						if req.CertReq {
							if a.cfg.IncludeChain {
								b.AddBytes(a.certsChain)
							} else {
								b.AddBytes(a.certsLeaf)
							}
						}
						b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
							b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // SignerInfo
								b.AddASN1Int64(1)
								b.AddBytes(a.sid)
								b.AddBytes(a.digestID)
								// signedAttrs as [0] IMPLICIT: same content, context tag.
								b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
									for _, at := range attrs {
										b.AddBytes(at)
									}
								})
								addAlgID(b, a.sigAlg, isRSA)
								b.AddASN1OctetString(sig)
							})
						})
					})
				})
			})
		})
	})
	if err != nil {
		return nil, fmt.Errorf("encoding TimeStampResp: %w", err)
	}
	return resp, nil
}

// RejectionResponse is the DER TimeStampResp refusing a request: status
// rejection, the reason as statusString and the failure bit.
func RejectionResponse(r *Rejection) []byte {
	bit := int(r.Failure)
	bits := make([]byte, bit/8+1)
	bits[bit/8] = 0x80 >> (bit % 8)
	unused := 7 - bit%8
	out, _ := build(func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1Int64(2) // rejection
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(r.Msg)) })
				})
				b.AddASN1(cbasn1.BIT_STRING, func(b *cryptobyte.Builder) {
					b.AddUint8(uint8(unused))
					b.AddBytes(bits)
				})
			})
		})
	})
	return out
}

// CriticalTimeStampingEKU is the extended key usage extension RFC 3161
// requires of a TSA certificate: timeStamping only, marked critical. Go's
// x509 marks EKUs non-critical, so certificate templates add this instead.
func CriticalTimeStampingEKU() pkix.Extension {
	der, _ := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 8}})
	return pkix.Extension{Id: extKeyUsageOID, Critical: true, Value: der}
}
