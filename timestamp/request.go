// Package timestamp is an RFC 3161 time-stamping authority: it parses
// TimeStampReq, signs TSTInfo into a CMS SignedData token, and answers
// refusals with RFC 3161 rejections carrying the right PKIFailureInfo bit.
// The ASN.1 is built with cryptobyte, so the DER is ours to control.
package timestamp

import (
	"crypto"
	"encoding/asn1"
	"fmt"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// FailureInfo is a PKIFailureInfo bit (RFC 3161 section 2.4.2).
type FailureInfo int

// The failure bits a TSA answers with.
const (
	BadAlg              FailureInfo = 0
	BadRequest          FailureInfo = 2
	BadDataFormat       FailureInfo = 5
	TimeNotAvailable    FailureInfo = 14
	UnacceptedPolicy    FailureInfo = 15
	UnacceptedExtension FailureInfo = 16
	SystemFailure       FailureInfo = 25
)

func (f FailureInfo) String() string {
	switch f {
	case BadAlg:
		return "badAlg"
	case BadRequest:
		return "badRequest"
	case BadDataFormat:
		return "badDataFormat"
	case TimeNotAvailable:
		return "timeNotAvailable"
	case UnacceptedPolicy:
		return "unacceptedPolicy"
	case UnacceptedExtension:
		return "unacceptedExtension"
	case SystemFailure:
		return "systemFailure"
	}
	return fmt.Sprintf("failure(%d)", int(f))
}

// Rejection is a request the TSA refuses, with the reason to report.
type Rejection struct {
	Failure FailureInfo
	Msg     string
}

func (r *Rejection) Error() string { return r.Msg }

func reject(f FailureInfo, format string, args ...any) *Rejection {
	return &Rejection{Failure: f, Msg: fmt.Sprintf(format, args...)}
}

var (
	oidSHA1   = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
)

// HashOID is the DER object identifier of a supported imprint hash.
func HashOID(h crypto.Hash) (asn1.ObjectIdentifier, bool) {
	switch h {
	case crypto.SHA256:
		return oidSHA256, true
	case crypto.SHA384:
		return oidSHA384, true
	case crypto.SHA512:
		return oidSHA512, true
	}
	return nil, false
}

// Request is a parsed TimeStampReq.
type Request struct {
	Hash   crypto.Hash
	Digest []byte
	// rawImprint is the MessageImprint element as sent: the token must
	// carry exactly the same one.
	rawImprint []byte
	Policy     asn1.ObjectIdentifier // nil when absent
	Nonce      *big.Int              // nil when absent
	CertReq    bool
	// Extensions is the raw [0] Extensions content, nil when absent.
	Extensions []byte
}

// maxOIDArcs bounds a policy OID, as the reference TSA does.
const maxOIDArcs = 128

// ParseRequest reads a DER TimeStampReq strictly. Every error is a *Rejection.
func ParseRequest(der []byte) (*Request, error) {
	in := cryptobyte.String(der)
	var req cryptobyte.String
	if !in.ReadASN1(&req, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, reject(BadDataFormat, "the body is not a DER TimeStampReq")
	}
	var version int64
	if !req.ReadASN1Integer(&version) {
		return nil, reject(BadDataFormat, "TimeStampReq has no version")
	}
	if version != 1 {
		return nil, reject(BadRequest, "TimeStampReq version %d is not supported (want 1)", version)
	}
	var imprint, algID, params cryptobyte.String
	var rawImprint cryptobyte.String
	if !req.ReadASN1Element(&rawImprint, cbasn1.SEQUENCE) {
		return nil, reject(BadDataFormat, "TimeStampReq has no messageImprint")
	}
	imprint = rawImprint
	var oid asn1.ObjectIdentifier
	var digest []byte
	if !imprint.ReadASN1(&imprint, cbasn1.SEQUENCE) || !imprint.ReadASN1(&algID, cbasn1.SEQUENCE) || !algID.ReadASN1ObjectIdentifier(&oid) {
		return nil, reject(BadDataFormat, "messageImprint has no hash algorithm")
	}
	if !algID.Empty() {
		if !algID.ReadASN1(&params, cbasn1.NULL) || !algID.Empty() || !params.Empty() {
			return nil, reject(BadDataFormat, "messageImprint hash algorithm has unexpected parameters")
		}
	}
	if !imprint.ReadASN1Bytes(&digest, cbasn1.OCTET_STRING) || !imprint.Empty() {
		return nil, reject(BadDataFormat, "messageImprint has no hashedMessage")
	}
	r := &Request{Digest: digest, rawImprint: rawImprint}
	switch {
	case oid.Equal(oidSHA256):
		r.Hash = crypto.SHA256
	case oid.Equal(oidSHA384):
		r.Hash = crypto.SHA384
	case oid.Equal(oidSHA512):
		r.Hash = crypto.SHA512
	case oid.Equal(oidSHA1):
		return nil, reject(BadAlg, "SHA-1 message imprints are refused: use SHA-256, SHA-384 or SHA-512")
	default:
		return nil, reject(BadAlg, "hash algorithm %s is not supported: use SHA-256, SHA-384 or SHA-512", oid)
	}
	if len(digest) != r.Hash.Size() {
		return nil, reject(BadDataFormat, "message imprint is %d bytes, %s needs %d", len(digest), r.Hash, r.Hash.Size())
	}
	if req.PeekASN1Tag(cbasn1.OBJECT_IDENTIFIER) {
		if !req.ReadASN1ObjectIdentifier(&r.Policy) {
			return nil, reject(BadDataFormat, "reqPolicy is not an object identifier")
		}
		if len(r.Policy) > maxOIDArcs {
			return nil, reject(BadRequest, "reqPolicy has more than %d arcs", maxOIDArcs)
		}
	}
	if req.PeekASN1Tag(cbasn1.INTEGER) {
		r.Nonce = new(big.Int)
		if !req.ReadASN1Integer(r.Nonce) {
			return nil, reject(BadDataFormat, "nonce is not an integer")
		}
	}
	if req.PeekASN1Tag(cbasn1.BOOLEAN) {
		if !req.ReadASN1Boolean(&r.CertReq) {
			return nil, reject(BadDataFormat, "certReq is not a boolean")
		}
	}
	extTag := cbasn1.Tag(0).ContextSpecific().Constructed()
	if req.PeekASN1Tag(extTag) {
		var ext cryptobyte.String
		if !req.ReadASN1(&ext, extTag) {
			return nil, reject(BadDataFormat, "extensions are malformed")
		}
		r.Extensions = ext
	}
	if !req.Empty() {
		return nil, reject(BadDataFormat, "unexpected data after the TimeStampReq fields")
	}
	return r, nil
}

// MarshalRequest encodes a TimeStampReq (for clients and tests).
func MarshalRequest(h crypto.Hash, digest []byte, policy asn1.ObjectIdentifier, nonce *big.Int, certReq bool) ([]byte, error) {
	oid, ok := HashOID(h)
	if !ok {
		return nil, fmt.Errorf("hash %s is not supported", h)
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(1)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(oid)
				b.AddASN1NULL()
			})
			b.AddASN1OctetString(digest)
		})
		if policy != nil {
			b.AddASN1ObjectIdentifier(policy)
		}
		if nonce != nil {
			b.AddASN1BigInt(nonce)
		}
		if certReq {
			b.AddASN1Boolean(true)
		}
	})
	return b.Bytes()
}
