// Package trust builds the trust material clients are given: Sigstore's
// trusted_root.json (keys and chains with validity windows) and
// signing_config.json (service URLs), with protobuf-specs' types so the JSON
// is exactly what sigstore-go and cosign parse.
package trust

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	prototrust "github.com/sigstore/protobuf-specs/gen/pb-go/trustroot/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/signet-dev/signet/log/note"
)

// Media types clients check.
const (
	TrustedRootMediaType   = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
	SigningConfigMediaType = "application/vnd.dev.sigstore.signingconfig.v0.2+json"
)

// Key is a log key and when it signed; a zero End is open.
type Key struct {
	PublicKey  crypto.PublicKey
	Start, End time.Time
	// BaseURL is where this key's log is read, when not the instance's
	// (each tree of the Rekor v2 log serves its tiles under a prefix).
	BaseURL string
}

// Chain is a CA or TSA chain (leaf-most first, root last) and the window
// clients trust it for; a zero End is open.
type Chain struct {
	Certificates []*x509.Certificate
	Start, End   time.Time
}

// Instance is what one Signet publishes; nil parts are not running.
type Instance struct {
	// BaseURL is the public URL every service hangs off.
	BaseURL  string
	Operator string
	Log      *Key
	CT       *Key
	CA       *Chain
	TSA      *Chain
	// PastCAs and PastTSAs are chains rotated out, still trusted for what
	// they signed inside their windows.
	PastCAs, PastTSAs []*Chain
	// PastCT are CT keys rotated out, still trusted for their SCTs;
	// PastLogs are transparency log keys rotated out, still trusted for the
	// entries of the trees they signed.
	PastCT, PastLogs []*Key
	// OIDCURL is an issuer clients may get tokens from (the dev issuer).
	OIDCURL string
	// LogV2 is the Rekor v2 log's key (nil: no v2 log), PastLogsV2 its
	// retired keys. Its trusted-root entries look like the v1 log's, with
	// the C2SP note key ID sigstore-go looks logs up by as logId: for an
	// ECDSA key the same SHA-256 of the PKIX key, for an Ed25519 key one
	// over the baseUrl's hostname too (note.KeyID). The signing config lists it with
	// majorApiVersion 2, which clients that speak v2 pick over v1.
	LogV2      *Key
	PastLogsV2 []*Key
	// LogV2Writes lists the v2 log in the signing config: it takes entries.
	// Without it its keys stay in the trusted root for what it logged.
	LogV2Writes bool
}

func keyDetails(pub crypto.PublicKey) (protocommon.PublicKeyDetails, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256, nil
		case elliptic.P384():
			return protocommon.PublicKeyDetails_PKIX_ECDSA_P384_SHA_384, nil
		case elliptic.P521():
			return protocommon.PublicKeyDetails_PKIX_ECDSA_P521_SHA_512, nil
		}
	case *rsa.PublicKey:
		return protocommon.PublicKeyDetails_PKIX_RSA_PKCS1V15_2048_SHA256, nil
	case ed25519.PublicKey:
		return protocommon.PublicKeyDetails_PKIX_ED25519, nil
	}
	return 0, fmt.Errorf("key type %T has no trusted-root key details", pub)
}

func logInstance(baseURL string, k *Key) (*prototrust.TransparencyLogInstance, error) {
	der, err := x509.MarshalPKIXPublicKey(k.PublicKey)
	if err != nil {
		return nil, err
	}
	details, err := keyDetails(k.PublicKey)
	if err != nil {
		return nil, err
	}
	if k.BaseURL != "" {
		baseURL = k.BaseURL
	}
	id := sha256.Sum256(der)
	if _, ok := k.PublicKey.(ed25519.PublicKey); ok {
		// A log is found by the C2SP key ID of its checkpoints, which for
		// Ed25519 covers the signer's name: the baseUrl's hostname, as
		// sigstore-go reads it (only Rekor v2 logs have Ed25519 keys).
		u, err := url.Parse(baseURL)
		if err != nil || u.Hostname() == "" {
			return nil, fmt.Errorf("log baseUrl %q has no hostname to name its Ed25519 key", baseURL)
		}
		if id, err = note.KeyID(u.Hostname(), k.PublicKey); err != nil {
			return nil, err
		}
	}
	validFor := &protocommon.TimeRange{Start: timestamppb.New(k.Start)}
	if !k.End.IsZero() {
		validFor.End = timestamppb.New(k.End)
	}
	return &prototrust.TransparencyLogInstance{
		BaseUrl:       baseURL,
		HashAlgorithm: protocommon.HashAlgorithm_SHA2_256,
		PublicKey:     &protocommon.PublicKey{RawBytes: der, KeyDetails: details, ValidFor: validFor},
		LogId:         &protocommon.LogId{KeyId: id[:]},
	}, nil
}

func authority(uri string, c *Chain) *prototrust.CertificateAuthority {
	subject := c.Certificates[0].Subject
	ca := &prototrust.CertificateAuthority{
		Uri:       uri,
		Subject:   &protocommon.DistinguishedName{CommonName: subject.CommonName, Organization: strings.Join(subject.Organization, ", ")},
		CertChain: &protocommon.X509CertificateChain{},
		ValidFor:  &protocommon.TimeRange{Start: timestamppb.New(c.Start)},
	}
	if !c.End.IsZero() {
		ca.ValidFor.End = timestamppb.New(c.End)
	}
	for _, cert := range c.Certificates {
		ca.CertChain.Certificates = append(ca.CertChain.Certificates, &protocommon.X509Certificate{RawBytes: cert.Raw})
	}
	return ca
}

// logInstances lists the retired keys of a log, then its current one.
func logInstances(baseURL string, past []*Key, current *Key) ([]*prototrust.TransparencyLogInstance, error) {
	keys := past
	if current != nil {
		keys = append(keys[:len(keys):len(keys)], current)
	}
	var out []*prototrust.TransparencyLogInstance
	for _, k := range keys {
		l, err := logInstance(baseURL, k)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// TrustedRoot renders trusted_root.json.
func TrustedRoot(in Instance) ([]byte, error) {
	tr := &prototrust.TrustedRoot{MediaType: TrustedRootMediaType}
	var err error
	if tr.Tlogs, err = logInstances(in.BaseURL, in.PastLogs, in.Log); err != nil {
		return nil, fmt.Errorf("log key: %w", err)
	}
	v2, err := logInstances(in.BaseURL, in.PastLogsV2, in.LogV2)
	if err != nil {
		return nil, fmt.Errorf("Rekor v2 log key: %w", err)
	}
	tr.Tlogs = append(tr.Tlogs, v2...)
	if tr.Ctlogs, err = logInstances(in.BaseURL, in.PastCT, in.CT); err != nil {
		return nil, fmt.Errorf("CT key: %w", err)
	}
	for _, c := range in.PastCAs {
		tr.CertificateAuthorities = append(tr.CertificateAuthorities, authority(in.BaseURL, c))
	}
	if in.CA != nil {
		tr.CertificateAuthorities = append(tr.CertificateAuthorities, authority(in.BaseURL, in.CA))
	}
	for _, c := range in.PastTSAs {
		tr.TimestampAuthorities = append(tr.TimestampAuthorities, authority(in.BaseURL+"/api/v1/timestamp", c))
	}
	if in.TSA != nil {
		tr.TimestampAuthorities = append(tr.TimestampAuthorities, authority(in.BaseURL+"/api/v1/timestamp", in.TSA))
	}
	return marshal(tr)
}

// SigningConfig renders signing_config.json (v0.2).
func SigningConfig(in Instance, start time.Time) ([]byte, error) {
	svc := func(url string) []*prototrust.Service {
		return []*prototrust.Service{{Url: url, MajorApiVersion: 1, Operator: in.Operator, ValidFor: &protocommon.TimeRange{Start: timestamppb.New(start)}}}
	}
	sc := &prototrust.SigningConfig{MediaType: SigningConfigMediaType}
	if in.CA != nil {
		sc.CaUrls = svc(in.BaseURL)
	}
	if in.OIDCURL != "" {
		sc.OidcUrls = svc(in.OIDCURL)
	}
	if in.Log != nil {
		sc.RekorTlogUrls = svc(in.BaseURL)
		sc.RekorTlogConfig = &prototrust.ServiceConfiguration{Selector: prototrust.ServiceSelector_ANY}
	}
	if in.LogV2 != nil && in.LogV2Writes {
		v2 := svc(in.BaseURL)
		v2[0].MajorApiVersion = 2
		sc.RekorTlogUrls = append(sc.RekorTlogUrls, v2...)
		sc.RekorTlogConfig = &prototrust.ServiceConfiguration{Selector: prototrust.ServiceSelector_ANY}
	}
	if in.TSA != nil {
		sc.TsaUrls = svc(in.BaseURL + "/api/v1/timestamp")
		sc.TsaConfig = &prototrust.ServiceConfiguration{Selector: prototrust.ServiceSelector_ANY}
	}
	return marshal(sc)
}

// marshal renders m as indented JSON with stable bytes: protojson varies its
// whitespace between builds on purpose, and TUF would publish every such
// variation as new target content.
func marshal(m proto.Message) ([]byte, error) {
	raw, err := protojson.Marshal(m)
	if err != nil {
		return nil, err
	}
	var compact, out bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return nil, err
	}
	if err := json.Indent(&out, compact.Bytes(), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}
