package rekorapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"slices"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/signet-dev/signet/internal/httpbody"
	"github.com/signet-dev/signet/internal/httpjson"
	"github.com/signet-dev/signet/internal/requestid"
	tlog "github.com/signet-dev/signet/log"
	"github.com/signet-dev/signet/log/rekorapi/model"
	"github.com/signet-dev/signet/types"
	"github.com/signet-dev/signet/types/rekord"
	"github.com/signet-dev/signet/types/tuf"
)

// Routes mounts the Rekor v1 endpoints on r.
func (a *API) Routes(r chi.Router) {
	r.Post("/api/v1/log/entries", a.createLogEntry)
	a.ReadRoutes(r)
}

// ReadRoutes mounts the endpoints that only read the log: all of them but
// the append, which a replica that does not lead serves from the database.
func (a *API) ReadRoutes(r chi.Router) {
	r.Get("/api/v1/log", a.getLogInfo)
	r.Get("/api/v1/log/publicKey", a.getPublicKey)
	r.Get("/api/v1/log/proof", a.getLogProof)
	r.Get("/api/v1/log/entries", a.getLogEntryByIndex)
	r.Get("/api/v1/log/entries/{entryUUID}", a.getLogEntryByUUID)
	r.Post("/api/v1/log/entries/retrieve", a.searchLogQuery)
	r.Post("/api/v1/index/retrieve", a.searchIndex)
}

// writeJSON answers v as JSON (entries through model.LogEntry.AppendJSON,
// the same bytes as encoding/json), with its length: an entry with its
// proof is longer than net/http's buffer and was otherwise sent chunked.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var body []byte
	switch v := v.(type) {
	case model.LogEntry:
		body = append(v.AppendJSON(make([]byte, 0, 4096)), '\n')
	case []model.LogEntry:
		if v == nil {
			body = []byte("null\n")
			break
		}
		body = append(make([]byte, 0, 4096*len(v)+3), '[')
		for i, e := range v {
			if i > 0 {
				body = append(body, ',')
			}
			body = e.AppendJSON(body)
		}
		body = append(body, ']', '\n')
	default:
		httpjson.Write(w, status, v)
		return
	}
	httpjson.WriteBody(w, status, body)
}

func writeError(w http.ResponseWriter, status int, msg string) { httpjson.WriteError(w, status, msg) }

func noCache(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-cache, no-store, must-revalidate")
}

// fail maps an error to Rekor's status codes and a message that says what
// went wrong, without internals for 5xx.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ve *types.ValidationError
	var br *badRequest
	var un *unprocessable
	var tooBig *http.MaxBytesError
	var broken *httpbody.ClientError
	var tooMany *tooManyResults
	var rng *tlog.ErrBadRange
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("Request Entity Too Large. Limit set to %d", tooBig.Limit))
	case errors.As(err, &broken):
		writeError(w, http.StatusBadRequest, broken.Error())
	case errors.Is(err, httpbody.ErrBusy):
		w.Header().Set("Retry-After", httpbody.RetryAfter)
		writeError(w, http.StatusServiceUnavailable, err.Error())
	case errors.As(err, &ve):
		writeError(w, http.StatusBadRequest, "error processing entry: "+ve.Error())
	case errors.As(err, &br):
		writeError(w, http.StatusBadRequest, br.msg)
	case errors.As(err, &un):
		writeError(w, http.StatusUnprocessableEntity, un.msg)
	case errors.As(err, &rng):
		writeError(w, http.StatusBadRequest, rng.Msg)
	case errors.As(err, &tooMany):
		writeError(w, http.StatusUnprocessableEntity, tooMany.Error())
	case errors.Is(err, tlog.ErrOverloaded):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "the log is busy: its append queue is full; retry after a second")
	case errors.Is(err, tlog.ErrClosed):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "the log is shutting down; retry shortly")
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusGatewayTimeout, "the request took longer than its deadline; if it was an append, search for the entry before retrying")
	case errors.Is(err, context.Canceled):
		writeError(w, 499, "the client closed the request")
	default:
		a.logger.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error while serving the request; "+requestid.SeeLog(r.Context()))
	}
}

func (a *API) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	return httpbody.Read(w, r, a.limits.MaxBodyBytes)
}

func (a *API) getLogInfo(w http.ResponseWriter, r *http.Request) {
	noCache(w)
	info, err := a.info(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

// shardFor picks the tree named by the treeID query parameter (default:
// the active one).
func (a *API) shardFor(r *http.Request) (*shard, error) {
	t := r.URL.Query().Get("treeID")
	if t == "" {
		return a.active, nil
	}
	id, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		return nil, &badRequest{fmt.Sprintf("treeID %q is not a decimal tree ID", t)}
	}
	sh := a.shardByTree(id)
	if sh == nil {
		return nil, &badRequest{fmt.Sprintf("tree %d is not served by this log (active tree: %d)", id, a.active.tree.TreeID())}
	}
	return sh, nil
}

func (a *API) getPublicKey(w http.ResponseWriter, r *http.Request) {
	noCache(w)
	sh, err := a.shardFor(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Write(sh.pubPEM) //nolint:errcheck
}

// queryInt parses an integer query parameter with go-openapi's rules:
// a missing required one or a bad value is 422.
func queryInt(r *http.Request, name string, required bool, def, minimum int64) (int64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		if required {
			return 0, &unprocessable{fmt.Sprintf("%s in query is required", name)}
		}
		return def, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, &unprocessable{fmt.Sprintf("%s in query must be of type int64: %q", name, s)}
	}
	if v < minimum {
		return 0, &unprocessable{fmt.Sprintf("%s in query should be greater than or equal to %d", name, minimum)}
	}
	return v, nil
}

func (a *API) getLogProof(w http.ResponseWriter, r *http.Request) {
	noCache(w)
	first, err := queryInt(r, "firstSize", false, 1, 1)
	if err == nil {
		var last int64
		last, err = queryInt(r, "lastSize", true, 0, 1)
		var sh *shard
		if err == nil {
			sh, err = a.shardFor(r)
		}
		if err == nil {
			var hashes [][]byte
			var latest tlog.Root
			hashes, latest, err = sh.tree.ConsistencyProof(r.Context(), uint64(first), uint64(last))
			if err == nil {
				out := model.ConsistencyProof{Hashes: make([]string, len(hashes)), RootHash: hex.EncodeToString(latest.Hash)}
				for i, h := range hashes {
					out.Hashes[i] = hex.EncodeToString(h)
				}
				writeJSON(w, http.StatusOK, out)
				return
			}
		}
	}
	a.fail(w, r, err)
}

func (a *API) createLogEntry(w http.ResponseWriter, r *http.Request) {
	body, err := a.readBody(w, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	entry, id, dup, err := a.Add(r.Context(), body)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	location := strings.TrimSuffix(r.URL.Path, "/") + "/" + id
	w.Header().Set("Location", location)
	if dup {
		writeError(w, http.StatusConflict, "an equivalent entry already exists in the transparency log with UUID "+id)
		return
	}
	w.Header().Set("ETag", id)
	writeJSON(w, http.StatusCreated, entry)
}

func (a *API) getLogEntryByIndex(w http.ResponseWriter, r *http.Request) {
	noCache(w)
	idx, err := queryInt(r, "logIndex", true, 0, 0)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	entry, ok, err := a.byIndex(r.Context(), idx)
	a.writeEntry(w, r, entry, ok, err)
}

func (a *API) getLogEntryByUUID(w http.ResponseWriter, r *http.Request) {
	noCache(w)
	id := chi.URLParam(r, "entryUUID")
	entry, ok, err := a.byID(r.Context(), id)
	a.writeEntry(w, r, entry, ok, err)
}

func (a *API) writeEntry(w http.ResponseWriter, r *http.Request, entry model.LogEntry, ok bool, err error) {
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if !ok {
		w.WriteHeader(http.StatusNotFound) // Rekor's 404 has no body
		return
	}
	writeJSON(w, http.StatusOK, entry)
}

func (a *API) searchLogQuery(w http.ResponseWriter, r *http.Request) {
	body, err := a.readBody(w, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var q model.SearchLogQuery
	if err := decodeJSON(body, &q); err != nil {
		a.fail(w, r, err)
		return
	}
	if n := len(q.EntryUUIDs) + len(q.LogIndexes) + len(q.Entries); n > maxSearchItems {
		a.fail(w, r, &unprocessable{fmt.Sprintf("more than max allowed %d entries in request (got %d)", maxSearchItems, n)})
		return
	}
	ctx := r.Context()
	out := []model.LogEntry{}
	seen := map[string]bool{}
	add := func(e model.LogEntry) {
		for id := range e {
			if !seen[id] {
				seen[id] = true
				out = append(out, e)
			}
		}
	}
	for _, id := range q.EntryUUIDs {
		e, ok, err := a.byID(ctx, id)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		if ok {
			add(e)
		}
	}
	for i, idx := range q.LogIndexes {
		if idx == nil || *idx < 0 {
			a.fail(w, r, &unprocessable{fmt.Sprintf("logIndexes.%d in body should be greater than or equal to 0", i)})
			return
		}
		e, ok, err := a.byIndex(ctx, *idx)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		if ok {
			add(e)
		}
	}
	for _, raw := range q.Entries {
		parsed, err := a.types.Parse(ctx, raw)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		e, ok, err := a.byID(ctx, hex.EncodeToString(tlog.LeafHash(parsed.Canonical())))
		if err != nil {
			a.fail(w, r, err)
			return
		}
		if ok {
			add(e)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) searchIndex(w http.ResponseWriter, r *http.Request) {
	body, err := a.readBody(w, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var q model.SearchIndex
	if err := decodeJSON(body, &q); err != nil {
		a.fail(w, r, err)
		return
	}
	out, err := a.Search(r.Context(), q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// Search is /api/v1/index/retrieve: the IDs of the entries q finds, at
// most the configured limit (more is an error saying so).
func (a *API) Search(ctx context.Context, q model.SearchIndex) ([]string, error) {
	criteria, err := searchCriteria(q)
	if err != nil {
		return nil, err
	}
	var result map[string]bool
	for i, keys := range criteria {
		ids, err := lookup(ctx, a.log, keys, a.limits.MaxSearchResults)
		if err != nil {
			return nil, err
		}
		switch {
		case i == 0:
			result = ids
		case q.Operator == "and":
			for id := range result {
				if !ids[id] {
					delete(result, id)
				}
			}
		default:
			for id := range ids {
				result[id] = true
			}
		}
	}
	if len(result) > a.limits.MaxSearchResults {
		return nil, &tooManyResults{limit: a.limits.MaxSearchResults}
	}
	out := make([]string, 0, len(result))
	for id := range result {
		out = append(out, id)
	}
	return out, nil
}

// searchCriteria turns a SearchIndex into one list of alternative keys per
// criterion, lower-cased as they are stored.
func searchCriteria(q model.SearchIndex) ([][]string, error) {
	if q.Operator != "" && q.Operator != "and" && q.Operator != "or" {
		return nil, &unprocessable{fmt.Sprintf("operator in body should be one of [and or], got %q", q.Operator)}
	}
	var criteria [][]string
	if q.Hash != "" {
		key, err := hashKey(q.Hash)
		if err != nil {
			return nil, err
		}
		criteria = append(criteria, []string{key})
	}
	if q.PublicKey != nil {
		formats := append(slices.Clone(rekord.Formats), "tuf")
		if !slices.Contains(formats, q.PublicKey.Format) {
			return nil, &badRequest{fmt.Sprintf("publicKey.format %q is not indexed by this log (supported: %s)", q.PublicKey.Format, strings.Join(formats, ", "))}
		}
		if q.PublicKey.URL != "" {
			return nil, &badRequest{"publicKey.url is not supported; send the key as publicKey.content"}
		}
		if len(q.PublicKey.Content) == 0 {
			return nil, &badRequest{"publicKey.content is required"}
		}
		// Every kind indexes a key as the hex SHA-256 of its canonical form,
		// which rekord's formats define (x509's is hashedrekord's and
		// dsse's too).
		var canon []byte
		var err error
		if q.PublicKey.Format == "tuf" {
			canon, err = tuf.CanonicalRoot(q.PublicKey.Content)
		} else {
			canon, err = rekord.CanonicalKey(q.PublicKey.Format, q.PublicKey.Content)
		}
		if err != nil {
			return nil, &badRequest{"publicKey.content: " + err.Error()}
		}
		sum := sha256.Sum256(canon)
		h := hexLower(sum[:])
		// hashedrekord and rekord index the bare hex, dsse "sha256:<hex>":
		// find both.
		criteria = append(criteria, []string{h, "sha256:" + h})
	}
	if q.Email != "" {
		if _, err := mail.ParseAddress(q.Email); err != nil || strings.ContainsAny(q.Email, " <>") {
			return nil, &unprocessable{fmt.Sprintf("email in body must be of type email: %q", q.Email)}
		}
		criteria = append(criteria, []string{strings.ToLower(q.Email)})
	}
	if q.Subject != "" {
		if len(q.Subject) > 512 {
			return nil, &unprocessable{"subject in body should be at most 512 chars long"}
		}
		criteria = append(criteria, []string{strings.ToLower(q.Subject)})
	}
	if len(criteria) == 0 {
		return nil, &badRequest{"give at least one of hash, publicKey, email or subject to search"}
	}
	return criteria, nil
}

// hashKey normalises a hash query to "<alg>:<hex>", inferring the algorithm
// from the length when no prefix is given.
func hashKey(h string) (string, error) {
	h = strings.ToLower(h)
	alg, value, ok := strings.Cut(h, ":")
	if !ok {
		value = h
		switch len(h) {
		case 40:
			alg = "sha1"
		case 64:
			alg = "sha256"
		case 96:
			alg = "sha384"
		case 128:
			alg = "sha512"
		}
	}
	want := map[string]int{"sha1": 40, "sha256": 64, "sha384": 96, "sha512": 128}[alg]
	if want == 0 || len(value) != want {
		return "", &unprocessable{fmt.Sprintf("hash in body should be sha1, sha256, sha384 or sha512 hex (optionally prefixed \"<alg>:\"), got %q", h)}
	}
	if _, err := hex.DecodeString(value); err != nil {
		return "", &unprocessable{fmt.Sprintf("hash in body is not hex: %q", h)}
	}
	return alg + ":" + value, nil
}
