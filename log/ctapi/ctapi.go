// Package ctapi is the RFC 6962 certificate-transparency personality of the
// log engine: it logs (pre)certificates that chain to configured roots and
// returns SCTs. certificate-transparency-go supplies the structures, TLS
// serialisation and chain validation.
package ctapi

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	ct "github.com/google/certificate-transparency-go"
	"github.com/google/certificate-transparency-go/tls"
	"github.com/google/certificate-transparency-go/trillian/ctfe"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	"github.com/google/certificate-transparency-go/x509util"

	tlog "github.com/signet-dev/signet/log"
)

// MaxMergeDelay is the longest this log takes to integrate an entry it
// issued an SCT for. Queued entries are integrated every 200 ms; only a
// failing database delays that, and integration is retried on the same tick.
const MaxMergeDelay = 10 * time.Second

// Limits bound requests.
type Limits struct {
	MaxBodyBytes  int64
	MaxChain      int
	MaxGetEntries int
}

// DefaultLimits are documented in docs/configuration.md.
var DefaultLimits = Limits{MaxBodyBytes: 256 << 10, MaxChain: 10, MaxGetEntries: 256}

// Config wires the personality.
type Config struct {
	Log    *tlog.Log
	Signer crypto.Signer
	// Roots are the certificates chains must end in.
	Roots  []*x509.Certificate
	Limits Limits
	Logger *slog.Logger
}

// CT is one RFC 6962 log.
type CT struct {
	cfg    Config
	logID  [32]byte
	roots  *x509util.PEMCertPool
	opts   ctfe.CertValidationOpts
	mu     sync.Mutex
	sthSig map[uint64]ct.DigitallySigned // by tree size, so each STH is signed once
}

// New checks the key (ECDSA; the log ID is SHA-256 of its SPKI) and roots.
func New(cfg Config) (*CT, error) {
	if _, ok := cfg.Signer.Public().(*ecdsa.PublicKey); !ok {
		return nil, fmt.Errorf("the CT log key must be ECDSA, got %T", cfg.Signer.Public())
	}
	if len(cfg.Roots) == 0 {
		return nil, errors.New("the CT log needs at least one root to accept chains for")
	}
	if cfg.Limits.MaxBodyBytes <= 0 {
		cfg.Limits = DefaultLimits
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	der, err := x509.MarshalPKIXPublicKey(cfg.Signer.Public())
	if err != nil {
		return nil, err
	}
	c := &CT{cfg: cfg, logID: sha256.Sum256(der), roots: x509util.NewPEMCertPool(), sthSig: map[uint64]ct.DigitallySigned{}}
	for _, r := range cfg.Roots {
		rc, err := ctx509.ParseCertificate(r.Raw)
		if err != nil {
			return nil, fmt.Errorf("CT root %q: %w", r.Subject, err)
		}
		c.roots.AddCert(rc)
	}
	// Chains must allow code signing: this log serves a code-signing CA.
	c.opts = ctfe.NewCertValidationOpts(c.roots, time.Time{}, false, false, nil, nil, false, []ctx509.ExtKeyUsage{ctx509.ExtKeyUsageCodeSigning})
	return c, nil
}

// LogID is SHA-256 of the log key's SubjectPublicKeyInfo.
func (c *CT) LogID() [32]byte { return c.logID }

// PublicKey is the key SCTs and STHs verify with.
func (c *CT) PublicKey() crypto.PublicKey { return c.cfg.Signer.Public() }

// ChainError is a chain the log refuses (HTTP 400).
type ChainError struct{ Msg string }

func (e *ChainError) Error() string { return e.Msg }

// AddChain validates a submitted chain (leaf first) and logs it; precert
// says whether it came to add-pre-chain.
func (c *CT) AddChain(ctx context.Context, raw [][]byte, precert bool) (*ct.SignedCertificateTimestamp, error) {
	if len(raw) == 0 {
		return nil, &ChainError{"the chain is empty"}
	}
	if len(raw) > c.cfg.Limits.MaxChain {
		return nil, &ChainError{fmt.Sprintf("the chain has %d certificates, more than %d", len(raw), c.cfg.Limits.MaxChain)}
	}
	chain, err := ctfe.ValidateChain(raw, c.opts)
	if err != nil {
		return nil, &ChainError{"the chain does not verify to an accepted root with code signing allowed: " + err.Error()}
	}
	isPre, err := ctfe.IsPrecertificate(chain[0])
	if err != nil {
		return nil, &ChainError{err.Error()}
	}
	switch {
	case precert && !isPre:
		return nil, &ChainError{"add-pre-chain needs a precertificate (critical CT poison extension)"}
	case !precert && isPre:
		return nil, &ChainError{"add-chain got a precertificate; send it to add-pre-chain"}
	}
	der := make([][]byte, len(chain))
	for i, cert := range chain {
		der[i] = cert.Raw
	}
	return c.log(ctx, der, precert)
}

// log validates nothing (callers do) and logs a chain of DER certificates,
// the first an end-entity certificate or a precertificate.
func (c *CT) log(ctx context.Context, chain [][]byte, precert bool) (*ct.SignedCertificateTimestamp, error) {
	ts := uint64(time.Now().UnixMilli())
	if precert {
		keyHash, tbs, err := precertEntry(chain)
		if err != nil {
			return nil, err
		}
		return c.logPrecert(ctx, ts, keyHash, tbs, chain[0], chain[1:])
	}
	leaf := &ct.MerkleTreeLeaf{Version: ct.V1, LeafType: ct.TimestampedEntryLeafType, TimestampedEntry: &ct.TimestampedEntry{
		Timestamp: ts, EntryType: ct.X509LogEntryType, X509Entry: &ct.ASN1Cert{Data: chain[0]},
	}}
	leafBytes, err := tls.Marshal(*leaf)
	if err != nil {
		return nil, fmt.Errorf("encoding the leaf: %w", err)
	}
	rest := make([]ct.ASN1Cert, len(chain)-1)
	for i, d := range chain[1:] {
		rest[i] = ct.ASN1Cert{Data: d}
	}
	extra, err := tls.Marshal(ct.CertificateChain{Entries: rest})
	if err != nil {
		return nil, fmt.Errorf("encoding the chain: %w", err)
	}
	input, err := ct.SerializeSCTSignatureInput(ct.SignedCertificateTimestamp{SCTVersion: ct.V1, Timestamp: ts}, ct.LogEntry{Leaf: *leaf})
	if err != nil {
		return nil, err
	}
	return c.queueAndSign(ctx, ts, leafBytes, extra, input)
}

// precertEntry is what a precertificate chain's entry records: the issuer's
// key hash and the precertificate's TBS without the poison extension.
func precertEntry(chain [][]byte) ([32]byte, []byte, error) {
	if len(chain) < 2 {
		return [32]byte{}, nil, &ChainError{"a precertificate needs its issuer in the chain"}
	}
	cert, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return [32]byte{}, nil, &ChainError{"precertificate: " + err.Error()}
	}
	issuer, err := x509.ParseCertificate(chain[1])
	if err != nil {
		return [32]byte{}, nil, &ChainError{"issuer: " + err.Error()}
	}
	tbs, err := ctx509.BuildPrecertTBS(cert.RawTBSCertificate, nil)
	if err != nil {
		return [32]byte{}, nil, &ChainError{"removing the poison extension: " + err.Error()}
	}
	return sha256.Sum256(issuer.RawSubjectPublicKeyInfo), tbs, nil
}

// logPrecert logs a precertificate entry with its chain.
func (c *CT) logPrecert(ctx context.Context, ts uint64, issuerKeyHash [32]byte, tbs, precert []byte, chain [][]byte) (*ct.SignedCertificateTimestamp, error) {
	leaf, err := encodePrecertLeaf(issuerKeyHash, tbs, ts)
	if err != nil {
		return nil, fmt.Errorf("encoding the leaf: %w", err)
	}
	extra, err := encodePrecertChainEntry(precert, chain)
	if err != nil {
		return nil, fmt.Errorf("encoding the chain: %w", err)
	}
	return c.queueAndSign(ctx, ts, leaf, extra, leaf)
}

// queueAndSign queues an encoded leaf and signs its SCT. An entry this tree
// already holds (the same leaf but for its timestamp, see entryIdentity) is
// not queued again: as RFC 6962 logs do, the answer is an SCT for the stored
// leaf, with its original timestamp, so the log holds one leaf per entry
// however often, and however concurrently, it is submitted.
func (c *CT) queueAndSign(ctx context.Context, ts uint64, leaf, extra, sctInput []byte) (*ct.SignedCertificateTimestamp, error) {
	// The SCT promises inclusion within the maximum merge delay: the leaf
	// is durably queued now and integrated by the pipeline right after.
	stored, duplicate, err := c.cfg.Log.EnqueueIdentified(ctx, entryIdentity(leaf), leaf, extra)
	if err != nil {
		return nil, err
	}
	if duplicate {
		if ts, err = storedTimestamp(leaf, stored); err != nil {
			return nil, err
		}
		// The stored leaf differs from this one only in its timestamp,
		// and a v1 leaf is byte for byte its SCT's signature input.
		sctInput = stored
	}
	sct := &ct.SignedCertificateTimestamp{SCTVersion: ct.V1, LogID: ct.LogID{KeyID: c.logID}, Timestamp: ts}
	if sct.Signature, err = c.sign(sctInput); err != nil {
		return nil, err
	}
	return sct, nil
}

func (c *CT) sign(input []byte) (ct.DigitallySigned, error) {
	digest := sha256.Sum256(input)
	sig, err := c.cfg.Signer.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return ct.DigitallySigned{}, fmt.Errorf("signing: %w", err)
	}
	return ct.DigitallySigned{Algorithm: tls.SignatureAndHashAlgorithm{Hash: tls.SHA256, Signature: tls.ECDSA}, Signature: sig}, nil
}

// STH returns the signed tree head of the latest tree.
func (c *CT) STH(ctx context.Context) (*ct.SignedTreeHead, error) {
	root, err := c.cfg.Log.Latest(ctx)
	if err != nil {
		return nil, err
	}
	sth := &ct.SignedTreeHead{Version: ct.V1, TreeSize: root.Size, Timestamp: uint64(root.Timestamp.UnixMilli())}
	copy(sth.SHA256RootHash[:], root.Hash)
	c.mu.Lock()
	sig, ok := c.sthSig[root.Size]
	c.mu.Unlock()
	if !ok {
		input, err := ct.SerializeSTHSignatureInput(*sth)
		if err != nil {
			return nil, err
		}
		if sig, err = c.sign(input); err != nil {
			return nil, err
		}
		c.mu.Lock()
		if len(c.sthSig) > 1024 {
			c.sthSig = map[uint64]ct.DigitallySigned{}
		}
		c.sthSig[root.Size] = sig
		c.mu.Unlock()
	}
	sth.TreeHeadSignature = sig
	return sth, nil
}

// Precert is a precertificate the CA of this process logs, with its entry
// as the CA built it.
type Precert struct {
	// DER is the precertificate; Chain its issuer's chain up to the root.
	DER   []byte
	Chain [][]byte
	// TBS is its TBSCertificate without the poison extension, and
	// IssuerKeyHash SHA-256 of the issuer's SubjectPublicKeyInfo: the
	// precertificate entry an SCT signs.
	TBS           []byte
	IssuerKeyHash [32]byte
}

// LogPrecertificate logs a precertificate of the CA in this process: its
// chain is not validated (this process made and signed it) and its entry
// is taken as the CA built it, parsing nothing.
func (c *CT) LogPrecertificate(ctx context.Context, p Precert) (*ct.SignedCertificateTimestamp, error) {
	return c.logPrecert(ctx, uint64(time.Now().UnixMilli()), p.IssuerKeyHash, p.TBS, p.DER, p.Chain)
}
