// Package fulcioapi serves the CA with Fulcio's REST API (the grpc-gateway
// JSON of dev.sigstore.fulcio.v2, plus the legacy v1 endpoints), so cosign
// and sigstore-go use it unchanged.
package fulcioapi

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/signet-dev/signet/ca"
	"github.com/signet-dev/signet/ca/identity"
	"github.com/signet-dev/signet/internal/audit"
	"github.com/signet-dev/signet/internal/httpbody"
	"github.com/signet-dev/signet/internal/httpjson"
	"github.com/signet-dev/signet/internal/requestid"
	"github.com/signet-dev/signet/internal/sigalg"
)

// DefaultMaxBodyBytes bounds a signing request: a token, a key and a
// signature, or a CSR, fit many times over.
const DefaultMaxBodyBytes = 64 << 10

// Config wires the API.
type Config struct {
	CA           *ca.CA
	Issuers      *identity.Pool
	Algorithms   sigalg.Set
	Audit        *audit.Writer
	MaxBodyBytes int64
	Logger       *slog.Logger
	Registerer   prometheus.Registerer
}

// API serves /api/v2/signingCert and friends.
type API struct {
	cfg    Config
	issued *prometheus.CounterVec
	// caPEMs is the CA chain in PEM, encoded once.
	caPEMs []string
}

// New builds the API.
func New(cfg Config) *API {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &API{cfg: cfg, issued: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "signet_ca_certificates_total", Help: "Certificate requests by outcome.",
	}, []string{"outcome"})}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(a.issued)
	}
	for _, c := range cfg.CA.Chain() {
		a.caPEMs = append(a.caPEMs, pemString(c.Raw))
	}
	return a
}

// Routes mounts the endpoints on r.
func (a *API) Routes(r chi.Router) {
	r.Post("/api/v2/signingCert", a.createSigningCertificate)
	r.Get("/api/v2/trustBundle", a.trustBundle)
	r.Get("/api/v2/configuration", a.configuration)
	r.Get("/api/v1/rootCert", a.rootCert)
	r.Post("/api/v1/signingCert", a.legacySigningCert)
}

// gRPC status codes, which grpc-gateway puts in the error body's code.
const (
	codeCanceled          = 1
	codeInvalidArgument   = 3
	codeDeadlineExceeded  = 4
	codeResourceExhausted = 8
	codeInternal          = 13
	codeUnavailable       = 14
	codeUnauthenticated   = 16
)

type errorBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Details []any  `json:"details"`
}

func writeJSON(w http.ResponseWriter, status int, v any) { httpjson.Write(w, status, v) }

func writeError(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, errorBody{Code: code, Message: msg, Details: []any{}})
}

// b64 is protobuf-JSON bytes: standard or URL-safe base64, padded or not.
type b64 []byte

func (b *b64) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return errors.New("bytes field must be a base64 string")
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if d, err := enc.DecodeString(s); err == nil {
			*b = d
			return nil
		}
	}
	return errors.New("bytes field is not base64")
}

type createRequest struct {
	Credentials *struct {
		OIDCIdentityToken string `json:"oidcIdentityToken"`
	} `json:"credentials"`
	PublicKeyRequest *struct {
		PublicKey *struct {
			// Any algorithm name is accepted and ignored (sigstore-go sends
			// "RSA", which is not even an enum value): the key says it all.
			Algorithm json.RawMessage `json:"algorithm"`
			Content   string          `json:"content"`
		} `json:"publicKey"`
		ProofOfPossession b64 `json:"proofOfPossession"`
	} `json:"publicKeyRequest"`
	CertificateSigningRequest b64 `json:"certificateSigningRequest"`
}

type chain struct {
	Certificates []string `json:"certificates"`
}

type signingCertificate struct {
	Detached *detached `json:"signedCertificateDetachedSct,omitempty"`
	Embedded *embedded `json:"signedCertificateEmbeddedSct,omitempty"`
}

type detached struct {
	Chain chain `json:"chain"`
	// SignedCertificateTimestamp is empty until a CT log is configured.
	SignedCertificateTimestamp b64out `json:"signedCertificateTimestamp"`
}

type embedded struct {
	Chain chain `json:"chain"`
}

// b64out marshals as standard base64 and as "" when empty (protojson emits
// unpopulated fields).
type b64out []byte

func (b b64out) MarshalJSON() ([]byte, error) {
	return json.Marshal(base64.StdEncoding.EncodeToString(b))
}

func pemString(der []byte) string {
	return strings.TrimSpace(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
}

// chainPEMs is the leaf (if any) and the CA chain, in PEM.
func (a *API) chainPEMs(leaf []byte) []string {
	out := make([]string, 0, len(a.caPEMs)+1)
	if leaf != nil {
		out = append(out, pemString(leaf))
	}
	return append(out, a.caPEMs...)
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// issue runs authentication, proof of possession and signing; it writes
// the error response itself and returns nil on failure.
func (a *API) issue(w http.ResponseWriter, r *http.Request, token string, pubFrom func(*identity.Principal) (crypto.PublicKey, error)) []byte {
	if token == "" {
		a.issued.WithLabelValues("unauthenticated").Inc()
		writeError(w, http.StatusUnauthorized, codeUnauthenticated, "no identity token: send it as Authorization: Bearer <token> (or credentials.oidcIdentityToken)")
		return nil
	}
	p, err := a.cfg.Issuers.Authenticate(r.Context(), token)
	if err != nil {
		// A genuine token whose claims cannot be certified is a bad request
		// (400, as Fulcio's InvalidArgument); a token not accepted is 401.
		if a.badClaims(w, err) {
			return nil
		}
		var ae *identity.AuthError
		var busy *identity.BusyError
		switch {
		case errors.As(err, &busy):
			a.issued.WithLabelValues("busy").Inc()
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, codeUnavailable, busy.Msg)
		case errors.As(err, &ae):
			a.issued.WithLabelValues("unauthenticated").Inc()
			writeError(w, http.StatusUnauthorized, codeUnauthenticated, ae.Msg)
		case errors.Is(err, context.Canceled):
			// The client left while its issuer was being contacted: no
			// one reads the answer, and it is not a server fault.
			a.issued.WithLabelValues("canceled").Inc()
			writeError(w, 499, codeCanceled, "the request was canceled while its identity token was being verified")
		case errors.Is(err, context.DeadlineExceeded):
			a.issued.WithLabelValues("timeout").Inc()
			writeError(w, http.StatusGatewayTimeout, codeDeadlineExceeded, "the identity provider did not answer within the request's deadline; retry")
		default:
			a.fail(w, r, err)
		}
		return nil
	}
	pub, err := pubFrom(p)
	if err != nil {
		var re *ca.RequestError
		if errors.As(err, &re) {
			a.issued.WithLabelValues("bad_request").Inc()
			writeError(w, http.StatusBadRequest, codeInvalidArgument, re.Msg)
			return nil
		}
		a.fail(w, r, err)
		return nil
	}
	issued, err := a.cfg.CA.Issue(r.Context(), p, pub)
	if err != nil {
		if !a.badClaims(w, err) {
			a.fail(w, r, err)
		}
		return nil
	}
	// The certificate is answered only once its audit row is committed: a
	// certificate the CA hands out is always on record.
	if a.cfg.Audit != nil {
		t := issued.Template
		fp := sha256.Sum256(t.RawSubjectPublicKeyInfo)
		if err := a.cfg.Audit.Write(r.Context(), []any{hex.EncodeToString(t.SerialNumber.Bytes()), t.NotBefore, t.NotAfter, p.Identity(), p.Issuer, p.Subject, hex.EncodeToString(fp[:])}); err != nil {
			a.auditFailed(w, r, err)
			return nil
		}
	}
	a.issued.WithLabelValues("issued").Inc()
	return issued.DER
}

// auditFailed answers a certificate whose audit row was not committed: 503
// with Retry-After when the database is busy or away (the client may
// retry), 500 otherwise. The certificate is not sent.
func (a *API) auditFailed(w http.ResponseWriter, r *http.Request, err error) {
	secs, temporary := audit.RetryAfter(err)
	if !temporary {
		a.issued.WithLabelValues("audit_failed").Inc()
		a.cfg.Logger.ErrorContext(r.Context(), "recording a certificate in the audit table failed", "err", err)
		writeError(w, http.StatusInternalServerError, codeInternal, "the CA could not record the certificate; "+requestid.SeeLog(r.Context()))
		return
	}
	a.issued.WithLabelValues("audit_unavailable").Inc()
	w.Header().Set("Retry-After", fmt.Sprint(secs))
	msg := fmt.Sprintf("the CA cannot record certificates in its database right now; retry after %d seconds", secs)
	if errors.Is(err, audit.ErrBusy) {
		msg = fmt.Sprintf("the CA is busy: too many certificates wait to be recorded; retry after %d second", secs)
	}
	writeError(w, http.StatusServiceUnavailable, codeUnavailable, msg)
}

// badClaims answers 400 if err is an identity that cannot go into a
// certificate (*identity.ClaimError: its message names the claim).
func (a *API) badClaims(w http.ResponseWriter, err error) bool {
	var ce *identity.ClaimError
	if !errors.As(err, &ce) {
		return false
	}
	a.issued.WithLabelValues("bad_request").Inc()
	writeError(w, http.StatusBadRequest, codeInvalidArgument, ce.Error())
	return true
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	a.issued.WithLabelValues("error").Inc()
	a.cfg.Logger.ErrorContext(r.Context(), "certificate request failed", "err", err)
	writeError(w, http.StatusInternalServerError, codeInternal, "error communicating with CA backend; "+requestid.SeeLog(r.Context()))
}

func (a *API) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := httpbody.Read(w, r, a.cfg.MaxBodyBytes)
	if err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			a.issued.WithLabelValues("too_large").Inc()
			writeError(w, http.StatusRequestEntityTooLarge, codeResourceExhausted, fmt.Sprintf("request body larger than %d bytes", a.cfg.MaxBodyBytes))
		case errors.Is(err, httpbody.ErrBusy):
			a.issued.WithLabelValues("busy").Inc()
			w.Header().Set("Retry-After", httpbody.RetryAfter)
			writeError(w, http.StatusServiceUnavailable, codeUnavailable, err.Error())
		default: // *httpbody.ClientError: the client stopped mid-body
			a.issued.WithLabelValues("bad_request").Inc()
			writeError(w, http.StatusBadRequest, codeInvalidArgument, err.Error())
		}
		return nil, false
	}
	return body, true
}

func (a *API) createSigningCertificate(w http.ResponseWriter, r *http.Request) {
	body, ok := a.readBody(w, r)
	if !ok {
		return
	}
	var req createRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, codeInvalidArgument, "request body is not a CreateSigningCertificateRequest: "+err.Error())
		return
	}
	token := ""
	if req.Credentials != nil {
		token = req.Credentials.OIDCIdentityToken
	}
	if token == "" {
		token = bearer(r)
	}
	cert := a.issue(w, r, token, func(p *identity.Principal) (crypto.PublicKey, error) {
		switch {
		case len(req.CertificateSigningRequest) > 0 && req.PublicKeyRequest != nil:
			return nil, &ca.RequestError{Msg: "send either publicKeyRequest or certificateSigningRequest, not both"}
		case len(req.CertificateSigningRequest) > 0:
			return ca.ParseCSR(req.CertificateSigningRequest, a.cfg.Algorithms)
		case req.PublicKeyRequest != nil && req.PublicKeyRequest.PublicKey != nil:
			pub, err := ca.ParsePublicKey([]byte(req.PublicKeyRequest.PublicKey.Content))
			if err != nil {
				return nil, err
			}
			return pub, ca.VerifyProof(pub, p.Challenges, req.PublicKeyRequest.ProofOfPossession, a.cfg.Algorithms)
		default:
			return nil, &ca.RequestError{Msg: "the request has no key: send publicKeyRequest {publicKey, proofOfPossession} or certificateSigningRequest"}
		}
	})
	if cert == nil {
		return
	}
	if a.cfg.CA.EmbedsSCTs() {
		writeJSON(w, http.StatusOK, signingCertificate{Embedded: &embedded{Chain: chain{Certificates: a.chainPEMs(cert)}}})
		return
	}
	// Without a CT log the SCT is detached and empty, as Fulcio without CT answers.
	writeJSON(w, http.StatusOK, signingCertificate{Detached: &detached{Chain: chain{Certificates: a.chainPEMs(cert)}}})
}

type legacyRequest struct {
	PublicKey *struct {
		Algorithm json.RawMessage `json:"algorithm"`
		Content   b64             `json:"content"`
	} `json:"publicKey"`
	SignedEmailAddress        b64 `json:"signedEmailAddress"`
	CertificateSigningRequest b64 `json:"certificateSigningRequest"`
}

func (a *API) legacySigningCert(w http.ResponseWriter, r *http.Request) {
	body, ok := a.readBody(w, r)
	if !ok {
		return
	}
	var req legacyRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, codeInvalidArgument, "request body is not a v1 CertificateRequest: "+err.Error())
		return
	}
	cert := a.issue(w, r, bearer(r), func(p *identity.Principal) (crypto.PublicKey, error) {
		if len(req.CertificateSigningRequest) > 0 {
			return ca.ParseCSR(req.CertificateSigningRequest, a.cfg.Algorithms)
		}
		if req.PublicKey == nil {
			return nil, &ca.RequestError{Msg: "the request has no key: send publicKey and signedEmailAddress, or certificateSigningRequest"}
		}
		pub, err := ca.ParsePublicKey(req.PublicKey.Content)
		if err != nil {
			return nil, err
		}
		return pub, ca.VerifyProof(pub, p.Challenges, req.SignedEmailAddress, a.cfg.Algorithms)
	})
	if cert == nil {
		return
	}
	w.Header().Set("Content-Type", "application/pem-certificate-chain")
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, strings.Join(a.chainPEMs(cert), "\n")+"\n") //nolint:errcheck
}

func (a *API) trustBundle(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"chains": []chain{{Certificates: a.chainPEMs(nil)}}})
}

func (a *API) rootCert(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/pem-certificate-chain")
	io.WriteString(w, strings.Join(a.chainPEMs(nil), "\n")+"\n") //nolint:errcheck
}

type issuerInfo struct {
	IssuerURL             string `json:"issuerUrl,omitempty"`
	WildcardIssuerURL     string `json:"wildcardIssuerUrl,omitempty"`
	Audience              string `json:"audience"`
	ChallengeClaim        string `json:"challengeClaim"`
	SPIFFETrustDomain     string `json:"spiffeTrustDomain"`
	IssuerType            string `json:"issuerType"`
	SubjectDomain         string `json:"subjectDomain"`
	SkipEmailVerification bool   `json:"skipEmailVerification"`
}

func (a *API) configuration(w http.ResponseWriter, _ *http.Request) {
	out := []issuerInfo{}
	for _, c := range a.cfg.Issuers.Issuers() {
		claim := "sub"
		if c.Type == identity.TypeEmail {
			claim = "email"
		}
		out = append(out, issuerInfo{
			IssuerURL: c.URL, WildcardIssuerURL: c.WildcardURL, Audience: c.ClientID, ChallengeClaim: claim,
			SPIFFETrustDomain: c.SPIFFETrustDomain, IssuerType: string(c.Type), SubjectDomain: c.SubjectDomain,
			SkipEmailVerification: c.SkipEmailVerification,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"issuers": out})
}
