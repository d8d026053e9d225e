// Package tsaapi serves the timestamp authority over HTTP with the paths
// and behaviour of Sigstore's timestamp authority, so cosign and
// sigstore-go use it unchanged.
package tsaapi

import (
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/signet-dev/signet/internal/audit"
	"github.com/signet-dev/signet/internal/httpbody"
	"github.com/signet-dev/signet/internal/httpjson"
	"github.com/signet-dev/signet/internal/requestid"
	"github.com/signet-dev/signet/internal/sigalg"
	"github.com/signet-dev/signet/timestamp"
)

// Limits bound a request.
type Limits struct {
	// MaxBodyBytes bounds a DER request (413 above).
	MaxBodyBytes int64
}

// DefaultLimits: a TimeStampReq is a few hundred bytes; JSON requests are
// held to 1 KiB as in the reference.
var DefaultLimits = Limits{MaxBodyBytes: 16 << 10}

const maxJSONBytes = 1024

// Config wires the API.
type Config struct {
	Authority  *timestamp.Authority
	Audit      *audit.Writer
	Limits     Limits
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// API serves /api/v1/timestamp.
type API struct {
	cfg    Config
	issued *prometheus.CounterVec
	chain  []byte
}

// New builds the API.
func New(cfg Config) *API {
	if cfg.Limits.MaxBodyBytes <= 0 {
		cfg.Limits = DefaultLimits
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &API{cfg: cfg, issued: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "signet_tsa_responses_total", Help: "Time-stamp requests by outcome.",
	}, []string{"outcome"})}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(a.issued)
	}
	for _, c := range cfg.Authority.Chain() {
		a.chain = append(a.chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return a
}

// Routes mounts the endpoints.
func (a *API) Routes(r chi.Router) {
	r.Post("/api/v1/timestamp", a.timestamp)
	r.Get("/api/v1/timestamp/certchain", a.certChain)
}

func (a *API) certChain(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/pem-certificate-chain")
	w.Header().Set("Cache-Control", "max-age=86400")
	w.Write(a.chain) //nolint:errcheck
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	httpjson.WriteError(w, status, msg)
}

// jsonRequest is the reference TSA's JSON form.
type jsonRequest struct {
	ArtifactHash  []byte   `json:"artifactHash"`
	HashAlgorithm string   `json:"hashAlgorithm"`
	Nonce         *big.Int `json:"nonce"`
	Certificates  bool     `json:"certificates"`
	TSAPolicyOID  string   `json:"tsaPolicyOID"`
}

func (a *API) timestamp(w http.ResponseWriter, r *http.Request) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/timestamp-query" && mt != "application/json") {
		a.issued.WithLabelValues("bad_content_type").Inc()
		writeJSONError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q is not supported: send application/timestamp-query (DER) or application/json", r.Header.Get("Content-Type")))
		return
	}
	isJSON := mt == "application/json"
	limit := a.cfg.Limits.MaxBodyBytes
	if isJSON {
		limit = maxJSONBytes
	}
	body, err := httpbody.Read(w, r, limit)
	if err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			a.issued.WithLabelValues("too_large").Inc()
			writeJSONError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", limit))
		case errors.Is(err, httpbody.ErrBusy):
			a.issued.WithLabelValues("busy").Inc()
			w.Header().Set("Retry-After", httpbody.RetryAfter)
			writeJSONError(w, http.StatusServiceUnavailable, err.Error())
		default: // *httpbody.ClientError: the client stopped mid-body
			a.issued.WithLabelValues("bad_request").Inc()
			writeJSONError(w, http.StatusBadRequest, err.Error())
		}
		return
	}
	var req *timestamp.Request
	if isJSON {
		req, err = parseJSON(body)
	} else {
		req, err = timestamp.ParseRequest(body)
	}
	var issued *timestamp.Issued
	if err == nil {
		issued, err = a.cfg.Authority.Prepare(req)
	}
	var rej *timestamp.Rejection
	switch {
	case errors.As(err, &rej):
		a.issued.WithLabelValues("rejected_" + rej.Failure.String()).Inc()
		if isJSON {
			writeJSONError(w, http.StatusBadRequest, rej.Msg)
			return
		}
		// An RFC 3161 client gets an RFC 3161 answer: status rejection
		// with the failure bit, the reason in statusString.
		w.Header().Set("Content-Type", "application/timestamp-reply")
		w.WriteHeader(http.StatusBadRequest)
		w.Write(timestamp.RejectionResponse(rej)) //nolint:errcheck
		return
	case err != nil:
		a.signFailed(w, r, isJSON, err)
		return
	}
	// The token is answered only once its audit row is committed: a
	// timestamp the TSA hands out is always on record. The row commits
	// while the token is signed (a commit waits mostly for the database,
	// signing for the CPU); if signing then fails, the row stands for a
	// serial never handed out, and the log says so.
	var recorded *audit.Pending
	if a.cfg.Audit != nil {
		recorded = a.cfg.Audit.Start(r.Context(), []any{issued.Serial.Text(16), issued.GenTime,
			strings.ToLower(strings.ReplaceAll(issued.Hash.String(), "-", "")), hex.EncodeToString(issued.Digest), issued.Policy.String()})
		if err := recorded.Err(); err != nil {
			// Refused at once (a full queue, shutting down): nothing is
			// signed, so an overloaded TSA spends no signature on it.
			a.auditFailed(w, r, isJSON, err)
			return
		}
	}
	resp, err := a.cfg.Authority.Sign(req, issued)
	if err != nil {
		if recorded != nil {
			err = fmt.Errorf("%w (serial %s may have an audit row; no token was issued for it)", err, issued.Serial.Text(16))
		}
		a.signFailed(w, r, isJSON, err)
		return
	}
	if recorded != nil {
		if err := recorded.Wait(); err != nil {
			a.auditFailed(w, r, isJSON, err)
			return
		}
	}
	a.issued.WithLabelValues("granted").Inc()
	w.Header().Set("Content-Type", "application/timestamp-reply")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(resp) //nolint:errcheck
}

// signFailed answers a request the TSA could not sign: a server fault.
func (a *API) signFailed(w http.ResponseWriter, r *http.Request, isJSON bool, err error) {
	a.issued.WithLabelValues("error").Inc()
	a.cfg.Logger.ErrorContext(r.Context(), "time-stamping failed", "err", err)
	if isJSON {
		writeJSONError(w, http.StatusInternalServerError, "error generating timestamp response; "+requestid.SeeLog(r.Context()))
		return
	}
	w.Header().Set("Content-Type", "application/timestamp-reply")
	w.WriteHeader(http.StatusInternalServerError)
	w.Write(timestamp.RejectionResponse(&timestamp.Rejection{Failure: timestamp.SystemFailure, Msg: "the TSA could not sign; " + requestid.SeeLog(r.Context())})) //nolint:errcheck
}

// auditFailed answers a timestamp whose audit row was not committed: 503
// with Retry-After when the database is busy or away (the client may retry),
// 500 otherwise. The token is not sent.
func (a *API) auditFailed(w http.ResponseWriter, r *http.Request, isJSON bool, err error) {
	status, msg := http.StatusInternalServerError, "the TSA could not record the timestamp; "+requestid.SeeLog(r.Context())
	if secs, temporary := audit.RetryAfter(err); temporary {
		a.issued.WithLabelValues("audit_unavailable").Inc()
		status = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		msg = fmt.Sprintf("the TSA cannot record timestamps in its database right now; retry after %d seconds", secs)
		if errors.Is(err, audit.ErrBusy) {
			msg = fmt.Sprintf("the TSA is busy: too many timestamps wait to be recorded; retry after %d second", secs)
		}
	} else {
		a.issued.WithLabelValues("audit_failed").Inc()
		a.cfg.Logger.ErrorContext(r.Context(), "recording a timestamp in the audit table failed", "err", err)
	}
	if isJSON {
		writeJSONError(w, status, msg)
		return
	}
	w.Header().Set("Content-Type", "application/timestamp-reply")
	w.WriteHeader(status)
	w.Write(timestamp.RejectionResponse(&timestamp.Rejection{Failure: timestamp.SystemFailure, Msg: msg})) //nolint:errcheck
}

func parseJSON(body []byte) (*timestamp.Request, error) {
	var jr jsonRequest
	if err := json.Unmarshal(body, &jr); err != nil {
		return nil, &timestamp.Rejection{Failure: timestamp.BadDataFormat, Msg: "request body is not a JSON time-stamp request: " + err.Error()}
	}
	h, ok := sigalg.HashByName(strings.ToLower(jr.HashAlgorithm))
	if !ok {
		if strings.EqualFold(jr.HashAlgorithm, "sha1") {
			return nil, &timestamp.Rejection{Failure: timestamp.BadAlg, Msg: "SHA-1 message imprints are refused: use sha256, sha384 or sha512"}
		}
		return nil, &timestamp.Rejection{Failure: timestamp.BadAlg, Msg: fmt.Sprintf("hashAlgorithm %q is not supported: use sha256, sha384 or sha512", jr.HashAlgorithm)}
	}
	var policy asn1.ObjectIdentifier
	if jr.TSAPolicyOID != "" {
		for _, part := range strings.Split(jr.TSAPolicyOID, ".") {
			var n int
			if _, err := fmt.Sscanf(part, "%d", &n); err != nil || n < 0 || fmt.Sprint(n) != part {
				return nil, &timestamp.Rejection{Failure: timestamp.BadRequest, Msg: fmt.Sprintf("tsaPolicyOID %q is not a dotted object identifier", jr.TSAPolicyOID)}
			}
			policy = append(policy, n)
		}
	}
	der, err := timestamp.MarshalRequest(h, jr.ArtifactHash, policy, jr.Nonce, jr.Certificates)
	if err != nil {
		return nil, &timestamp.Rejection{Failure: timestamp.BadRequest, Msg: err.Error()}
	}
	return timestamp.ParseRequest(der)
}
