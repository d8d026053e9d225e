package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/miekg/pkcs11"
)

// pkcs11URI is the part of an RFC 7512 URI we use.
type pkcs11URI struct {
	token      string
	slotID     *uint
	object     string
	id         []byte
	modulePath string
	pin        string
}

// parsePKCS11URI reads pkcs11:token=...;object=...;id=...?module-path=...&pin-source=file:...
// (pin-value=... and our pin-env=VAR are accepted too).
func parsePKCS11URI(uri string, getenv func(string) string) (*pkcs11URI, error) {
	rest, ok := strings.CutPrefix(uri, "pkcs11:")
	if !ok {
		return nil, errors.New("not a pkcs11: URI")
	}
	path, query, _ := strings.Cut(rest, "?")
	out := &pkcs11URI{}
	for _, attr := range strings.Split(path, ";") {
		if attr == "" {
			continue
		}
		k, v, ok := strings.Cut(attr, "=")
		if !ok {
			return nil, fmt.Errorf("path attribute %q has no value", attr)
		}
		val, err := url.PathUnescape(v)
		if err != nil {
			return nil, fmt.Errorf("path attribute %s: %w", k, err)
		}
		switch k {
		case "token":
			out.token = val
		case "object":
			out.object = val
		case "id":
			out.id = []byte(val)
		case "slot-id":
			n, err := strconv.ParseUint(val, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("slot-id %q is not a number", val)
			}
			s := uint(n)
			out.slotID = &s
		case "type", "manufacturer", "model", "serial", "library-description", "library-manufacturer", "library-version", "slot-description", "slot-manufacturer":
			// Accepted and not needed to find the key.
		default:
			return nil, fmt.Errorf("unknown path attribute %q", k)
		}
	}
	for _, q := range strings.Split(query, "&") {
		if q == "" {
			continue
		}
		k, v, _ := strings.Cut(q, "=")
		val, err := url.QueryUnescape(v)
		if err != nil {
			return nil, fmt.Errorf("query attribute %s: %w", k, err)
		}
		switch k {
		case "module-path":
			out.modulePath = val
		case "pin-value":
			out.pin = val
		case "pin-env":
			out.pin = getenv(val)
			if out.pin == "" {
				return nil, fmt.Errorf("environment variable %s (the token PIN) is empty or unset", val)
			}
		case "pin-source":
			p, ok := strings.CutPrefix(val, "file:")
			if !ok {
				return nil, fmt.Errorf("pin-source %q: only file: sources are supported", val)
			}
			data, err := os.ReadFile(strings.TrimPrefix(p, "//"))
			if err != nil {
				return nil, fmt.Errorf("reading the PIN: %w", err)
			}
			out.pin = strings.TrimRight(string(data), "\r\n")
		default:
			return nil, fmt.Errorf("unknown query attribute %q", k)
		}
	}
	if out.modulePath == "" {
		return nil, errors.New("module-path is required (e.g. ?module-path=/usr/lib/softhsm/libsofthsm2.so)")
	}
	if out.token == "" && out.slotID == nil {
		return nil, errors.New("name the token with token= or slot-id=")
	}
	if out.object == "" && out.id == nil {
		return nil, errors.New("name the key with object= (label) or id=")
	}
	return out, nil
}

// pkcs11Signer signs inside the token; the private key never leaves it.
// Sessions are pooled so concurrent signatures do not queue on one.
type pkcs11Signer struct {
	ctx      *pkcs11.Ctx
	key      pkcs11.ObjectHandle
	pub      crypto.PublicKey
	cert     *x509.Certificate // the token's certificate for the key, if any
	sessions chan pkcs11.SessionHandle
}

// Certificate returns the certificate a PKCS#11 token stores for the
// signer's key (same label or id), when the signer is such a key and the
// token has one.
func Certificate(s crypto.Signer) (*x509.Certificate, bool) {
	p, ok := s.(*pkcs11Signer)
	if !ok || p.cert == nil {
		return nil, false
	}
	return p.cert, true
}

// poolSize is how many sessions one signer keeps open.
const poolSize = 8

func openPKCS11(uri string, opts Options) (crypto.Signer, error) {
	u, err := parsePKCS11URI(uri, opts.Getenv)
	if err != nil {
		return nil, fmt.Errorf("key URI %q: %w", redact(uri), err)
	}
	ctx := pkcs11.New(u.modulePath)
	if ctx == nil {
		return nil, fmt.Errorf("loading PKCS#11 module %s failed (is it installed? Debian: apt-get install softhsm2 for SoftHSM)", u.modulePath)
	}
	if err := ctx.Initialize(); err != nil && !isCode(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		return nil, fmt.Errorf("initialising PKCS#11 module %s: %w", u.modulePath, err)
	}
	slot, err := findSlot(ctx, u)
	if err != nil {
		return nil, err
	}
	s := &pkcs11Signer{ctx: ctx, sessions: make(chan pkcs11.SessionHandle, poolSize)}
	for i := 0; i < poolSize; i++ {
		sh, err := ctx.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION)
		if err != nil {
			return nil, fmt.Errorf("opening a PKCS#11 session: %w", err)
		}
		s.sessions <- sh
	}
	sh := <-s.sessions
	defer func() { s.sessions <- sh }()
	if u.pin != "" {
		if err := ctx.Login(sh, pkcs11.CKU_USER, u.pin); err != nil && !isCode(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
			return nil, fmt.Errorf("logging in to token %q: %w", u.token, err)
		}
	}
	if s.key, err = findObject(ctx, sh, pkcs11.CKO_PRIVATE_KEY, u); err != nil {
		return nil, err
	}
	if s.pub, err = publicKey(ctx, sh, u); err != nil {
		return nil, err
	}
	s.cert = tokenCertificate(ctx, sh, u, s.pub)
	return s, nil
}

func isCode(err error, code uint) bool {
	var e pkcs11.Error
	return errors.As(err, &e) && uint(e) == code
}

func findSlot(ctx *pkcs11.Ctx, u *pkcs11URI) (uint, error) {
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		return 0, fmt.Errorf("listing PKCS#11 slots: %w", err)
	}
	var labels []string
	for _, slot := range slots {
		if u.slotID != nil {
			if slot == *u.slotID {
				return slot, nil
			}
			continue
		}
		info, err := ctx.GetTokenInfo(slot)
		if err != nil {
			continue
		}
		label := strings.TrimRight(info.Label, " \x00")
		labels = append(labels, label)
		if label == u.token {
			return slot, nil
		}
	}
	return 0, fmt.Errorf("no PKCS#11 token %q (tokens present: %s)", u.token, strings.Join(labels, ", "))
}

func template(class uint, u *pkcs11URI) []*pkcs11.Attribute {
	t := []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, class)}
	if u.object != "" {
		t = append(t, pkcs11.NewAttribute(pkcs11.CKA_LABEL, u.object))
	}
	if u.id != nil {
		t = append(t, pkcs11.NewAttribute(pkcs11.CKA_ID, u.id))
	}
	return t
}

func findObjects(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle, t []*pkcs11.Attribute) ([]pkcs11.ObjectHandle, error) {
	if err := ctx.FindObjectsInit(sh, t); err != nil {
		return nil, err
	}
	objs, _, err := ctx.FindObjects(sh, 2)
	if ferr := ctx.FindObjectsFinal(sh); err == nil {
		err = ferr
	}
	return objs, err
}

func findObject(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle, class uint, u *pkcs11URI) (pkcs11.ObjectHandle, error) {
	objs, err := findObjects(ctx, sh, template(class, u))
	if err != nil {
		return 0, fmt.Errorf("searching token %q: %w", u.token, err)
	}
	switch len(objs) {
	case 0:
		return 0, fmt.Errorf("token %q has no private key with object=%q id=%x (or the PIN is missing)", u.token, u.object, u.id)
	case 1:
		return objs[0], nil
	default:
		return 0, fmt.Errorf("token %q has several keys matching object=%q id=%x; add id= to pick one", u.token, u.object, u.id)
	}
}

// publicKey reads the key pair's public half: the public key object, else
// a certificate with the same label or id.
func publicKey(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle, u *pkcs11URI) (crypto.PublicKey, error) {
	if objs, err := findObjects(ctx, sh, template(pkcs11.CKO_PUBLIC_KEY, u)); err == nil && len(objs) == 1 {
		attrs, err := ctx.GetAttributeValue(sh, objs[0], []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil)})
		if err != nil {
			return nil, fmt.Errorf("reading the public key's type: %w", err)
		}
		switch bytesToUint(attrs[0].Value) {
		case pkcs11.CKK_EC:
			return ecPublicKey(ctx, sh, objs[0])
		case ckkECEdwards:
			return edPublicKey(ctx, sh, objs[0])
		case pkcs11.CKK_RSA:
			attrs, err := ctx.GetAttributeValue(sh, objs[0], []*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil), pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, nil),
			})
			if err != nil {
				return nil, fmt.Errorf("reading the RSA public key: %w", err)
			}
			return &rsa.PublicKey{N: new(big.Int).SetBytes(attrs[0].Value), E: int(new(big.Int).SetBytes(attrs[1].Value).Int64())}, nil
		default:
			return nil, errors.New("the token key is neither EC, Ed25519 nor RSA")
		}
	}
	if objs, err := findObjects(ctx, sh, template(pkcs11.CKO_CERTIFICATE, u)); err == nil && len(objs) == 1 {
		attrs, err := ctx.GetAttributeValue(sh, objs[0], []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
		if err != nil {
			return nil, err
		}
		c, err := x509.ParseCertificate(attrs[0].Value)
		if err != nil {
			return nil, fmt.Errorf("parsing the token's certificate: %w", err)
		}
		return c.PublicKey, nil
	}
	return nil, fmt.Errorf("token %q has no public key or certificate matching object=%q id=%x", u.token, u.object, u.id)
}

// tokenCertificate finds a certificate for pub stored beside the key.
func tokenCertificate(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle, u *pkcs11URI, pub crypto.PublicKey) *x509.Certificate {
	objs, err := findObjects(ctx, sh, template(pkcs11.CKO_CERTIFICATE, u))
	if err != nil || len(objs) != 1 {
		return nil
	}
	attrs, err := ctx.GetAttributeValue(sh, objs[0], []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
	if err != nil {
		return nil
	}
	c, err := x509.ParseCertificate(attrs[0].Value)
	if err != nil {
		return nil
	}
	if k, ok := pub.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(c.PublicKey) {
		return nil
	}
	return c
}

// ImportCertificate stores a certificate in the token under the URI's
// label and id (next to the key it certifies).
func ImportCertificate(uri string, cert *x509.Certificate, opts Options) error {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	u, err := parsePKCS11URI(uri, opts.Getenv)
	if err != nil {
		return fmt.Errorf("key URI %q: %w", redact(uri), err)
	}
	ctx := pkcs11.New(u.modulePath)
	if ctx == nil {
		return fmt.Errorf("loading PKCS#11 module %s failed", u.modulePath)
	}
	if err := ctx.Initialize(); err != nil && !isCode(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		return err
	}
	slot, err := findSlot(ctx, u)
	if err != nil {
		return err
	}
	sh, err := ctx.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return err
	}
	defer ctx.CloseSession(sh) //nolint:errcheck
	if err := ctx.Login(sh, pkcs11.CKU_USER, u.pin); err != nil && !isCode(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
		return fmt.Errorf("logging in to token %q: %w", u.token, err)
	}
	attrs := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_CERTIFICATE),
		pkcs11.NewAttribute(pkcs11.CKA_CERTIFICATE_TYPE, pkcs11.CKC_X_509),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, u.object),
		pkcs11.NewAttribute(pkcs11.CKA_SUBJECT, cert.RawSubject),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, cert.Raw),
	}
	if u.id != nil {
		attrs = append(attrs, pkcs11.NewAttribute(pkcs11.CKA_ID, u.id))
	}
	if _, err := ctx.CreateObject(sh, attrs); err != nil {
		return fmt.Errorf("storing the certificate in token %q: %w", u.token, err)
	}
	return nil
}

func bytesToUint(b []byte) uint {
	var n uint
	for i := len(b) - 1; i >= 0; i-- { // PKCS#11 CK_ULONG is native (little-endian here)
		n = n<<8 | uint(b[i])
	}
	return n
}

var curveOIDs = map[string]elliptic.Curve{
	asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}.String(): elliptic.P256(),
	asn1.ObjectIdentifier{1, 3, 132, 0, 34}.String():          elliptic.P384(),
	asn1.ObjectIdentifier{1, 3, 132, 0, 35}.String():          elliptic.P521(),
}

func ecPublicKey(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle, obj pkcs11.ObjectHandle) (crypto.PublicKey, error) {
	attrs, err := ctx.GetAttributeValue(sh, obj, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, nil), pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil),
	})
	if err != nil {
		return nil, fmt.Errorf("reading the EC public key: %w", err)
	}
	var oid asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(attrs[0].Value, &oid); err != nil {
		return nil, fmt.Errorf("EC key parameters are not a named curve: %w", err)
	}
	curve, ok := curveOIDs[oid.String()]
	if !ok {
		return nil, fmt.Errorf("EC curve %s is not supported (P-256, P-384, P-521)", oid)
	}
	var point []byte
	if _, err := asn1.Unmarshal(attrs[1].Value, &point); err != nil {
		point = attrs[1].Value // some tokens return the raw point
	}
	x, y := elliptic.Unmarshal(curve, point) //nolint:staticcheck // the point comes from the token, not a peer
	if x == nil {
		return nil, errors.New("the token's EC point is malformed")
	}
	return &ecdsa.PublicKey{Curve: curve, X: x, Y: y}, nil
}

// PKCS#11 v3.0's Edwards-curve names, which miekg/pkcs11 (v2.40 headers)
// lacks; SoftHSM 2.6 implements them.
const (
	ckkECEdwards           = 0x40
	ckmECEdwardsKeyPairGen = 0x1055
	ckmEdDSA               = 0x1057
)

// oidEd25519 names Ed25519 in CKA_EC_PARAMS (RFC 8410's id-Ed25519).
var oidEd25519 = asn1.ObjectIdentifier{1, 3, 101, 112}

func edPublicKey(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle, obj pkcs11.ObjectHandle) (crypto.PublicKey, error) {
	attrs, err := ctx.GetAttributeValue(sh, obj, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, nil), pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil),
	})
	if err != nil {
		return nil, fmt.Errorf("reading the Edwards public key: %w", err)
	}
	// The parameters are the curve's OID, or its name as a
	// PrintableString ("edwards25519") in tokens of PKCS#11 v3.0.
	var oid asn1.ObjectIdentifier
	var name string
	if _, err := asn1.Unmarshal(attrs[0].Value, &oid); err == nil {
		if !oid.Equal(oidEd25519) {
			return nil, fmt.Errorf("Edwards curve %s is not supported (Ed25519 only)", oid)
		}
	} else if _, err := asn1.Unmarshal(attrs[0].Value, &name); err != nil || name != "edwards25519" {
		return nil, fmt.Errorf("Edwards key parameters %x name no curve Signet supports (Ed25519 only)", attrs[0].Value)
	}
	// v3.0 wraps the key in a DER OCTET STRING; some tokens give it raw.
	point := attrs[1].Value
	if len(point) != ed25519.PublicKeySize {
		var inner []byte
		if rest, err := asn1.Unmarshal(point, &inner); err != nil || len(rest) != 0 {
			return nil, errors.New("the token's Ed25519 public key is neither 32 bytes nor a DER OCTET STRING of them")
		}
		point = inner
	}
	if len(point) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("the token's Ed25519 public key is %d bytes, not %d", len(point), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(point), nil
}

func (s *pkcs11Signer) Public() crypto.PublicKey { return s.pub }

// digestInfoPrefixes are the DER DigestInfo headers PKCS#1 v1.5 needs.
var digestInfoPrefixes = map[crypto.Hash][]byte{
	crypto.SHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384: {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

// Sign signs a digest in the token: ECDSA (ASN.1 result, as crypto.Signer
// promises) or RSA PKCS#1 v1.5; or, for Ed25519, the message itself
// (pure Ed25519, crypto.Hash(0), as ed25519.PrivateKey.Sign).
func (s *pkcs11Signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	var mech *pkcs11.Mechanism
	input := digest
	switch s.pub.(type) {
	case ed25519.PublicKey:
		if opts.HashFunc() != crypto.Hash(0) {
			return nil, errors.New("Ed25519ph signing with a PKCS#11 key is not supported: pure Ed25519 signs the message, crypto.Hash(0)")
		}
		mech = pkcs11.NewMechanism(ckmEdDSA, nil)
	case *ecdsa.PublicKey:
		mech = pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)
	case *rsa.PublicKey:
		if _, pss := opts.(*rsa.PSSOptions); pss {
			return nil, errors.New("RSA-PSS signing with a PKCS#11 key is not supported")
		}
		prefix, ok := digestInfoPrefixes[opts.HashFunc()]
		if !ok {
			return nil, fmt.Errorf("RSA signing with %s is not supported", opts.HashFunc())
		}
		input = append(append([]byte{}, prefix...), digest...)
		mech = pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS, nil)
	default:
		return nil, fmt.Errorf("signing with a %T in a PKCS#11 token is not supported", s.pub)
	}
	sh := <-s.sessions
	defer func() { s.sessions <- sh }()
	if err := s.ctx.SignInit(sh, []*pkcs11.Mechanism{mech}, s.key); err != nil {
		return nil, fmt.Errorf("PKCS#11 sign: %w", err)
	}
	sig, err := s.ctx.Sign(sh, input)
	if err != nil {
		return nil, fmt.Errorf("PKCS#11 sign: %w", err)
	}
	if _, ok := s.pub.(ed25519.PublicKey); ok && len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("PKCS#11 sign: the token returned a %d-byte Ed25519 signature", len(sig))
	}
	if _, ok := s.pub.(*ecdsa.PublicKey); ok {
		half := len(sig) / 2
		return asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:half]), new(big.Int).SetBytes(sig[half:])})
	}
	return sig, nil
}

// GeneratePKCS11Key makes a non-extractable EC key pair in the token the URI
// names, labelled with its object= (and id= when given).
func GeneratePKCS11Key(uri string, curve elliptic.Curve, opts Options) (crypto.Signer, error) {
	var oid asn1.ObjectIdentifier
	for k, c := range curveOIDs {
		if c == curve {
			for _, part := range strings.Split(k, ".") {
				n, _ := strconv.Atoi(part)
				oid = append(oid, n)
			}
		}
	}
	params, err := asn1.Marshal(oid)
	if err != nil || oid == nil {
		return nil, errors.New("curve must be P-256, P-384 or P-521")
	}
	return generatePKCS11(uri, opts, pkcs11.CKM_EC_KEY_PAIR_GEN, params)
}

// GeneratePKCS11Ed25519Key makes a non-extractable Ed25519 key pair in the
// token the URI names, as GeneratePKCS11Key does.
func GeneratePKCS11Ed25519Key(uri string, opts Options) (crypto.Signer, error) {
	params, err := asn1.Marshal(oidEd25519)
	if err != nil {
		return nil, err
	}
	return generatePKCS11(uri, opts, ckmECEdwardsKeyPairGen, params)
}

// generatePKCS11 makes a key pair with mechanism mech and CKA_EC_PARAMS
// params in the token, then opens it.
func generatePKCS11(uri string, opts Options, mech uint, params []byte) (crypto.Signer, error) {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	u, err := parsePKCS11URI(uri, opts.Getenv)
	if err != nil {
		return nil, fmt.Errorf("key URI %q: %w", redact(uri), err)
	}
	ctx := pkcs11.New(u.modulePath)
	if ctx == nil {
		return nil, fmt.Errorf("loading PKCS#11 module %s failed", u.modulePath)
	}
	if err := ctx.Initialize(); err != nil && !isCode(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		return nil, err
	}
	slot, err := findSlot(ctx, u)
	if err != nil {
		return nil, err
	}
	sh, err := ctx.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return nil, err
	}
	defer ctx.CloseSession(sh) //nolint:errcheck
	if err := ctx.Login(sh, pkcs11.CKU_USER, u.pin); err != nil && !isCode(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
		return nil, fmt.Errorf("logging in to token %q: %w", u.token, err)
	}
	common := func(extra ...*pkcs11.Attribute) []*pkcs11.Attribute {
		a := []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true), pkcs11.NewAttribute(pkcs11.CKA_LABEL, u.object)}
		if u.id != nil {
			a = append(a, pkcs11.NewAttribute(pkcs11.CKA_ID, u.id))
		}
		return append(a, extra...)
	}
	_, _, err = ctx.GenerateKeyPair(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, nil)},
		common(pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params), pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true)),
		common(pkcs11.NewAttribute(pkcs11.CKA_SIGN, true), pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true), pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false)))
	if err != nil {
		return nil, fmt.Errorf("generating a key pair in token %q: %w", u.token, err)
	}
	return openPKCS11(uri, opts)
}
