package ctapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"
	ct "github.com/google/certificate-transparency-go"
	"github.com/google/certificate-transparency-go/tls"

	"github.com/signet-dev/signet/internal/httpbody"
	"github.com/signet-dev/signet/internal/httpjson"
	"github.com/signet-dev/signet/internal/requestid"
	tlog "github.com/signet-dev/signet/log"
)

// Routes mounts the RFC 6962 endpoints under /ct/v1.
func (c *CT) Routes(r chi.Router) {
	r.Post("/ct/v1/add-chain", func(w http.ResponseWriter, r *http.Request) { c.addChain(w, r, false) })
	r.Post("/ct/v1/add-pre-chain", func(w http.ResponseWriter, r *http.Request) { c.addChain(w, r, true) })
	r.Get("/ct/v1/get-sth", c.getSTH)
	r.Get("/ct/v1/get-sth-consistency", c.getSTHConsistency)
	r.Get("/ct/v1/get-proof-by-hash", c.getProofByHash)
	r.Get("/ct/v1/get-entries", c.getEntries)
	r.Get("/ct/v1/get-roots", c.getRoots)
	r.Get("/ct/v1/get-entry-and-proof", c.getEntryAndProof)
}

func writeJSON(w http.ResponseWriter, status int, v any) { httpjson.Write(w, status, v) }

// fail answers in the plain-text style of CT logs (CTFE writes the reason as
// the body) with the right status.
func (c *CT) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ce *ChainError
	var br *badRequest
	var rng *tlog.ErrBadRange
	var tooBig *http.MaxBytesError
	var broken *httpbody.ClientError
	status := http.StatusInternalServerError
	msg := "internal error; " + requestid.SeeLog(r.Context())
	switch {
	case errors.As(err, &tooBig):
		status, msg = http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", tooBig.Limit)
	case errors.As(err, &broken):
		status, msg = http.StatusBadRequest, broken.Error()
	case errors.Is(err, httpbody.ErrBusy):
		w.Header().Set("Retry-After", httpbody.RetryAfter)
		status, msg = http.StatusServiceUnavailable, err.Error()
	case errors.Is(err, context.Canceled):
		status, msg = 499, "the client closed the request"
	case errors.Is(err, context.DeadlineExceeded):
		status, msg = http.StatusGatewayTimeout, "the request took longer than its deadline"
	case errors.As(err, &ce):
		status, msg = http.StatusBadRequest, ce.Msg
	case errors.As(err, &br):
		status, msg = http.StatusBadRequest, br.msg
	case errors.As(err, &rng):
		status, msg = http.StatusBadRequest, rng.Msg
	case errors.Is(err, tlog.ErrNotFound):
		status, msg = http.StatusNotFound, "not found in the log"
	case errors.Is(err, tlog.ErrOverloaded):
		w.Header().Set("Retry-After", "1")
		status, msg = http.StatusServiceUnavailable, "the log is busy; retry after a second"
	default:
		c.cfg.Logger.ErrorContext(r.Context(), "CT request failed", "path", r.URL.Path, "err", err)
	}
	http.Error(w, msg, status)
}

type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func (c *CT) addChain(w http.ResponseWriter, r *http.Request, precert bool) {
	body, err := httpbody.Read(w, r, c.cfg.Limits.MaxBodyBytes)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	var req ct.AddChainRequest
	if err := json.Unmarshal(body, &req); err != nil {
		c.fail(w, r, &badRequest{"request body is not {\"chain\": [base64 DER, ...]}: " + err.Error()})
		return
	}
	sct, err := c.AddChain(r.Context(), req.Chain, precert)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	sig, err := tls.Marshal(sct.Signature)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ct.AddChainResponse{SCTVersion: sct.SCTVersion, ID: sct.LogID.KeyID[:], Timestamp: sct.Timestamp, Signature: sig})
}

func (c *CT) getSTH(w http.ResponseWriter, r *http.Request) {
	sth, err := c.STH(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	sig, err := tls.Marshal(sth.TreeHeadSignature)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ct.GetSTHResponse{TreeSize: sth.TreeSize, Timestamp: sth.Timestamp, SHA256RootHash: sth.SHA256RootHash[:], TreeHeadSignature: sig})
}

func uintParam(r *http.Request, name string) (uint64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, &badRequest{fmt.Sprintf("parameter %s is required", name)}
	}
	v, err := strconv.ParseUint(s, 10, 63)
	if err != nil {
		return 0, &badRequest{fmt.Sprintf("parameter %s=%q is not a non-negative integer", name, s)}
	}
	return v, nil
}

func (c *CT) getSTHConsistency(w http.ResponseWriter, r *http.Request) {
	first, err := uintParam(r, "first")
	if err != nil {
		c.fail(w, r, err)
		return
	}
	second, err := uintParam(r, "second")
	if err != nil {
		c.fail(w, r, err)
		return
	}
	hashes, _, err := c.cfg.Log.ConsistencyProof(r.Context(), first, second)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if hashes == nil {
		hashes = [][]byte{}
	}
	writeJSON(w, http.StatusOK, ct.GetSTHConsistencyResponse{Consistency: hashes})
}

func (c *CT) getProofByHash(w http.ResponseWriter, r *http.Request) {
	hash, err := base64.StdEncoding.DecodeString(r.URL.Query().Get("hash"))
	if err != nil || len(hash) != 32 {
		c.fail(w, r, &badRequest{"parameter hash must be base64 of a 32-byte leaf hash"})
		return
	}
	size, err := uintParam(r, "tree_size")
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if size == 0 {
		c.fail(w, r, &badRequest{"tree_size must be at least 1"})
		return
	}
	index, path, _, err := c.cfg.Log.ProveInclusion(r.Context(), hash, size)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if path == nil {
		path = [][]byte{}
	}
	writeJSON(w, http.StatusOK, ct.GetProofByHashResponse{LeafIndex: int64(index), AuditPath: path})
}

func (c *CT) getEntries(w http.ResponseWriter, r *http.Request) {
	start, err := uintParam(r, "start")
	if err != nil {
		c.fail(w, r, err)
		return
	}
	end, err := uintParam(r, "end")
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if end < start {
		c.fail(w, r, &badRequest{fmt.Sprintf("end %d is before start %d", end, start)})
		return
	}
	count := min(end-start+1, uint64(c.cfg.Limits.MaxGetEntries))
	leaves, err := c.cfg.Log.LeavesByRange(r.Context(), start, count)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if len(leaves) == 0 {
		c.fail(w, r, &badRequest{fmt.Sprintf("start %d is beyond the tree", start)})
		return
	}
	out := ct.GetEntriesResponse{Entries: make([]ct.LeafEntry, len(leaves))}
	for i, l := range leaves {
		out.Entries[i] = ct.LeafEntry{LeafInput: l.Value, ExtraData: l.Extra}
	}
	writeJSON(w, http.StatusOK, out)
}

func (c *CT) getRoots(w http.ResponseWriter, _ *http.Request) {
	out := ct.GetRootsResponse{}
	for _, r := range c.cfg.Roots {
		out.Certificates = append(out.Certificates, base64.StdEncoding.EncodeToString(r.Raw))
	}
	writeJSON(w, http.StatusOK, out)
}

func (c *CT) getEntryAndProof(w http.ResponseWriter, r *http.Request) {
	index, err := uintParam(r, "leaf_index")
	if err != nil {
		c.fail(w, r, err)
		return
	}
	size, err := uintParam(r, "tree_size")
	if err != nil {
		c.fail(w, r, err)
		return
	}
	leaf, path, err := c.cfg.Log.ProveIndex(r.Context(), index, size)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if path == nil {
		path = [][]byte{}
	}
	writeJSON(w, http.StatusOK, ct.GetEntryAndProofResponse{LeafInput: leaf.Value, ExtraData: leaf.Extra, AuditPath: path})
}
