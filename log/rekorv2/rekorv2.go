// Package rekorv2 is the Rekor v2 personality of the log engine: the write
// API rekor-tiles serves (POST /api/v2/log/entries), so that cosign v3 and
// sigstore-go sign through it when the signing config lists a log with
// majorApiVersion 2. Entries are hashedrekord 0.0.2 (a DSSE envelope is
// logged as a hashedrekord over its PAE, as sigstore-go sends it; dsse
// 0.0.2 requests are refused, as rekor-tiles refuses them); there is no
// signed entry timestamp and no integrated time: the time of signing comes
// from a timestamp authority. The tree is the engine's, with a key of its
// own; its checkpoints are signed notes whose origin, and key name, is the
// hostname of the instance's public URL, which is what sigstore-go checks.
package rekorv2

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	pb "github.com/sigstore/rekor-tiles/v2/pkg/generated/protobuf"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/signet-dev/signet/internal/canonjson"
	"github.com/signet-dev/signet/internal/httpbody"
	"github.com/signet-dev/signet/internal/requestid"
	"github.com/signet-dev/signet/internal/sigalg"
	tlog "github.com/signet-dev/signet/log"
	"github.com/signet-dev/signet/log/note"
)

// Path is where entries are created.
const Path = "/api/v2/log/entries"

// DefaultMaxBodyBytes bounds a request body (rekor-tiles' default: 4 MiB).
const DefaultMaxBodyBytes = 4 << 20

// DefaultAlgorithms are the key and hash pairs rekor-tiles accepts by
// default: RSA PKCS#1 v1.5 2048/3072/4096, ECDSA P-256/384/521, Ed25519ph.
var DefaultAlgorithms = []protocommon.PublicKeyDetails{
	protocommon.PublicKeyDetails_PKIX_RSA_PKCS1V15_2048_SHA256,
	protocommon.PublicKeyDetails_PKIX_RSA_PKCS1V15_3072_SHA256,
	protocommon.PublicKeyDetails_PKIX_RSA_PKCS1V15_4096_SHA256,
	protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256,
	protocommon.PublicKeyDetails_PKIX_ECDSA_P384_SHA_384,
	protocommon.PublicKeyDetails_PKIX_ECDSA_P521_SHA_512,
	protocommon.PublicKeyDetails_PKIX_ED25519_PH,
}

// Config wires the personality.
type Config struct {
	// Log is the v2 log's own tree: its origin must be the public URL's
	// hostname, signed under that name.
	Log          *tlog.Log
	MaxBodyBytes int64
	Logger       *slog.Logger
}

// API serves POST /api/v2/log/entries.
type API struct {
	log        *tlog.Log
	keyID      []byte
	algorithms *signature.AlgorithmRegistryConfig
	maxBody    int64
	logger     *slog.Logger
}

// New builds the API on its log.
func New(cfg Config) (*API, error) {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	id, err := KeyID(cfg.Log.Origin(), cfg.Log.PublicKey())
	if err != nil {
		return nil, err
	}
	algs, err := signature.NewAlgorithmRegistryConfig(DefaultAlgorithms)
	if err != nil {
		return nil, err
	}
	return &API{log: cfg.Log, keyID: id, algorithms: algs, maxBody: cfg.MaxBodyBytes, logger: cfg.Logger}, nil
}

// KeyID is the v2 log's ID: the C2SP signed-note key ID of its key
// signing as origin (note.KeyID), which sigstore-go computes from the
// trusted root: SHA-256 of the PKIX DER for ECDSA, of origin, newline,
// 0x01 and the key for Ed25519 (the only kind witnesses can check). The
// checkpoint's key hint is its first four bytes (the engine's
// C2SPKeyHint). ECDSA is P-256 only: sigstore-go checks a checkpoint with
// the curve's hash (SHA-384 for P-384) and the engine signs notes over
// SHA-256.
func KeyID(origin string, pub crypto.PublicKey) ([]byte, error) {
	switch k := pub.(type) {
	case ed25519.PublicKey:
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("the Rekor v2 log key is %s: use an Ed25519 or ECDSA P-256 key", sigalg.Describe(pub))
		}
	default:
		return nil, fmt.Errorf("the Rekor v2 log key is %s: use an Ed25519 or ECDSA P-256 key", sigalg.Describe(pub))
	}
	id, err := note.KeyID(origin, pub)
	if err != nil {
		return nil, err
	}
	return id[:], nil
}

// Hook is the engine hook of the v2 log: it has no records of its own (no
// search index, no SETs), but a log with a hook has its signed checkpoint
// stored in the same transaction as each batch, which is what freezes a
// tree at a key rotation and keeps it readable after.
type Hook struct{}

// Integrated records nothing.
func (Hook) Integrated(context.Context, tlog.Batch) (tlog.Records, error) {
	return tlog.Records{}, nil
}

// LogID is the log's 32-byte ID.
func (a *API) LogID() []byte { return a.keyID }

// Routes mounts the write API.
func (a *API) Routes(r chi.Router) { r.Post(Path, a.create) }

// requestError is a request the client got wrong: 400, gRPC InvalidArgument.
type requestError struct{ msg string }

func (e *requestError) Error() string { return e.msg }

func invalid(format string, args ...any) error {
	return &requestError{msg: fmt.Sprintf(format, args...)}
}

// Canonical validates a CreateEntryRequest (protojson) and returns the
// entry to log: RFC 8785 JSON of the protojson of the hashedrekord 0.0.2
// Entry, the client's signature (with its keyDetails) echoed, byte for
// byte what rekor-tiles logs and what sigstore-go rebuilds to check the
// inclusion proof. The signature is verified over the digest first.
func (a *API) Canonical(body []byte) ([]byte, error) {
	var req pb.CreateEntryRequest
	if err := protojson.Unmarshal(body, &req); err != nil {
		return nil, invalid("the request is not a CreateEntryRequest: %v", err)
	}
	if req.GetDsseRequestV002() != nil {
		return nil, invalid("invalid type, must be hashedrekord: dsse entries are logged as hashedrekord over the envelope's PAE, as sigstore-go sends them")
	}
	hr := req.GetHashedRekordRequestV002()
	if hr == nil {
		return nil, invalid("invalid type, must be hashedrekord (hashedRekordRequestV002)")
	}
	sig := hr.GetSignature()
	switch {
	case len(sig.GetContent()) == 0:
		return nil, invalid("invalid hashedrekord request: signature.content is required")
	case sig.GetVerifier() == nil:
		return nil, invalid("invalid hashedrekord request: signature.verifier is required")
	case len(hr.GetDigest()) == 0:
		return nil, invalid("invalid hashedrekord request: digest is required")
	}
	var key crypto.PublicKey
	switch v := sig.GetVerifier(); {
	case len(v.GetPublicKey().GetRawBytes()) > 0:
		k, err := x509.ParsePKIXPublicKey(v.GetPublicKey().GetRawBytes())
		if err != nil {
			return nil, invalid("invalid hashedrekord request: verifier.publicKey.rawBytes is not a PKIX public key: %v", err)
		}
		key = k
	case len(v.GetX509Certificate().GetRawBytes()) > 0:
		c, err := x509.ParseCertificate(v.GetX509Certificate().GetRawBytes())
		if err != nil {
			return nil, invalid("invalid hashedrekord request: verifier.x509Certificate.rawBytes is not a certificate: %v", err)
		}
		key = c.PublicKey
	default:
		return nil, invalid("invalid hashedrekord request: the verifier must hold a publicKey or an x509Certificate")
	}
	details, err := signature.GetAlgorithmDetails(sig.GetVerifier().GetKeyDetails())
	if err != nil {
		return nil, invalid("invalid hashedrekord request: keyDetails %s: %v", sig.GetVerifier().GetKeyDetails(), err)
	}
	h := details.GetHashType()
	if h == crypto.Hash(0) {
		return nil, invalid("invalid hashedrekord request: keyDetails %s signs messages, not digests: use PKIX_ED25519_PH", sig.GetVerifier().GetKeyDetails())
	}
	if ok, err := a.algorithms.IsAlgorithmPermitted(key, h); err != nil || !ok {
		return nil, invalid("invalid hashedrekord request: a %s key with %s is not accepted by this log", sigalg.Describe(key), h)
	}
	if len(hr.GetDigest()) != h.Size() {
		return nil, invalid("invalid hashedrekord request: the digest has %d bytes, %s needs %d", len(hr.GetDigest()), h, h.Size())
	}
	verifier, err := signature.LoadVerifierWithOpts(key, options.WithED25519ph())
	if err != nil {
		return nil, invalid("invalid hashedrekord request: unusable key: %v", err)
	}
	if err := verifier.VerifySignature(bytes.NewReader(sig.GetContent()), nil, options.WithDigest(hr.GetDigest()), options.WithCryptoSignerOpts(h)); err != nil {
		return nil, invalid("invalid hashedrekord request: the signature does not verify against the digest with the given key: %v", err)
	}
	entry := &pb.Entry{Kind: "hashedrekord", ApiVersion: "0.0.2", Spec: &pb.Spec{Spec: &pb.Spec_HashedRekordV002{
		HashedRekordV002: &pb.HashedRekordLogEntryV002{
			Data:      &protocommon.HashOutput{Algorithm: details.GetProtoHashType(), Digest: hr.GetDigest()},
			Signature: sig,
		},
	}}}
	raw, err := protojson.Marshal(entry)
	if err != nil {
		return nil, err
	}
	return canonjson.Transform(raw)
}

// Add logs a request and returns its entry, once durable; a duplicate is
// *DuplicateError with the index of the entry already there.
func (a *API) Add(ctx context.Context, body []byte) (*protorekor.TransparencyLogEntry, error) {
	canonical, err := a.Canonical(body)
	if err != nil {
		return nil, err
	}
	res, err := a.log.Append(ctx, canonical, nil)
	if err != nil {
		return nil, err
	}
	if res.Duplicate {
		index, _, _, err := a.log.ProveInclusion(ctx, res.Leaf.Hash, 0)
		if err != nil {
			return nil, fmt.Errorf("finding the entry already logged: %w", err)
		}
		return nil, &DuplicateError{Index: index}
	}
	checkpoint, err := a.log.Checkpoint(res.Root)
	if err != nil {
		return nil, err
	}
	index := int64(res.Leaf.Index)
	return &protorekor.TransparencyLogEntry{
		LogIndex:    index,
		LogId:       &protocommon.LogId{KeyId: a.keyID},
		KindVersion: &protorekor.KindVersion{Kind: "hashedrekord", Version: "0.0.2"},
		InclusionProof: &protorekor.InclusionProof{
			LogIndex: index, RootHash: res.Root.Hash, TreeSize: int64(res.Root.Size), Hashes: res.Proof,
			Checkpoint: &protorekor.Checkpoint{Envelope: checkpoint},
		},
		CanonicalizedBody: canonical,
	}, nil
}

// DuplicateError is an entry already in the log.
type DuplicateError struct{ Index uint64 }

func (e *DuplicateError) Error() string {
	return fmt.Sprintf("an equivalent entry already exists in the transparency log with index %d", e.Index)
}

func (a *API) create(w http.ResponseWriter, r *http.Request) {
	body, err := httpbody.Read(w, r, a.maxBody)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	entry, err := a.Add(r.Context(), body)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(entry)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	w.Write(out) //nolint:errcheck // the client went away
}

// gRPC status codes, as grpc-gateway writes them in error bodies.
const (
	codeCanceled         = 1
	codeUnknown          = 2
	codeInvalidArgument  = 3
	codeDeadlineExceeded = 4
	codeAlreadyExists    = 6
	codeResourceExhaust  = 8
	codeUnavailable      = 14
)

// fail answers as rekor-tiles' gateway does: {"code", "message", "details"}.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var re *requestError
	var dup *DuplicateError
	var tooBig *http.MaxBytesError
	var broken *httpbody.ClientError
	status, code, msg := http.StatusInternalServerError, codeUnknown, "internal error while logging the entry; "+requestid.SeeLog(r.Context())
	switch {
	case errors.As(err, &re):
		status, code, msg = http.StatusBadRequest, codeInvalidArgument, re.msg
	case errors.As(err, &dup):
		w.Header().Set("X-Log-Index", strconv.FormatUint(dup.Index, 10))
		status, code, msg = http.StatusConflict, codeAlreadyExists, dup.Error()
	case errors.As(err, &tooBig):
		status, code, msg = http.StatusRequestEntityTooLarge, codeResourceExhaust, fmt.Sprintf("the request is larger than %d bytes", tooBig.Limit)
	case errors.As(err, &broken):
		status, code, msg = http.StatusBadRequest, codeInvalidArgument, broken.Error()
	case errors.Is(err, httpbody.ErrBusy):
		w.Header().Set("Retry-After", httpbody.RetryAfter)
		status, code, msg = http.StatusServiceUnavailable, codeUnavailable, err.Error()
	case errors.Is(err, tlog.ErrOverloaded):
		w.Header().Set("Retry-After", "1")
		status, code, msg = http.StatusServiceUnavailable, codeUnavailable, "the log is busy: its append queue is full; retry after a second"
	case errors.Is(err, tlog.ErrClosed):
		w.Header().Set("Retry-After", "5")
		status, code, msg = http.StatusServiceUnavailable, codeUnavailable, "the log is shutting down; retry shortly"
	case errors.Is(err, context.DeadlineExceeded):
		status, code, msg = http.StatusGatewayTimeout, codeDeadlineExceeded, "the request took longer than its deadline; the entry may be logged: retrying gives 409 with its index if so"
	case errors.Is(err, context.Canceled):
		status, code, msg = 499, codeCanceled, "the client closed the request"
	default:
		a.logger.ErrorContext(r.Context(), "Rekor v2 request failed", "path", r.URL.Path, "err", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	out, _ := json.Marshal(map[string]any{"code": code, "message": msg, "details": []any{}})
	w.Write(out) //nolint:errcheck
}
