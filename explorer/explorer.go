// Package explorer is the auditor's web view of the instance's log: a
// landing page naming the instance and its trust material, search by
// artifact digest, email or other identity, public key, log index or entry
// UUID, and an entry page with the decoded body and signer. Pages are
// rendered on the server (no JavaScript needed to search or read); a small
// script, embedded like everything else, verifies the entry's inclusion
// proof and the checkpoint's signature in the browser against the log key
// of the served trusted root, and says what it checked.
package explorer

import (
	"context"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/signet-dev/signet/client/monitor"
	"github.com/signet-dev/signet/log/rekorapi"
	"github.com/signet-dev/signet/log/rekorapi/model"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Limits of the explorer's requests.
const (
	// PageSize is how many search results one page lists.
	PageSize = 25
	// MaxQueryBytes bounds a search (a pasted public key included).
	MaxQueryBytes = 16 << 10
)

// Config wires the explorer to the log.
type Config struct {
	Rekor *rekorapi.API
	// Name names the instance on the landing page (its hostname).
	Name string
	// TUF says whether the instance serves a TUF repository.
	TUF    bool
	Logger *slog.Logger
}

// Explorer serves / and /explorer.
type Explorer struct {
	cfg   Config
	pages *template.Template
}

// New parses the embedded templates.
func New(cfg Config) (*Explorer, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	t, err := template.New("").Funcs(template.FuncMap{
		"time": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	}).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	return &Explorer{cfg: cfg, pages: t}, nil
}

// Routes mounts the pages and their assets.
func (e *Explorer) Routes(r chi.Router) {
	static, _ := fs.Sub(staticFS, "static")
	r.Get("/", e.landing)
	r.Get("/explorer", e.search)
	r.Get("/explorer/entry/{id}", e.entry)
	r.Get("/explorer/consistency", e.consistency)
	r.Post("/explorer", e.searchUpload)
	files := http.StripPrefix("/explorer/static/", http.FileServerFS(static))
	r.Get("/explorer/static/*", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings
			return
		}
		files.ServeHTTP(w, r)
	})
}

func (e *Explorer) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Everything is this server's: no other origin is loaded or framed.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if err := e.pages.ExecuteTemplate(w, name, data); err != nil {
		e.cfg.Logger.ErrorContext(r.Context(), "rendering the explorer", "page", name, "err", err)
	}
}

type landingData struct {
	Name   string
	TUF    bool
	Info   *model.LogInfo
	Search searchData
}

func (e *Explorer) landing(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	d := landingData{Name: e.cfg.Name, TUF: e.cfg.TUF, Search: newSearchData()}
	if e.cfg.Rekor != nil {
		info, err := e.cfg.Rekor.Info(r.Context())
		if err != nil {
			e.cfg.Logger.ErrorContext(r.Context(), "explorer landing: the log's head", "err", err)
		} else {
			d.Info = &info
		}
	}
	e.render(w, r, http.StatusOK, "landing.html", d)
}

// result is one entry in a list of search results.
// consistency is the page where the browser checks that the log only grew.
func (e *Explorer) consistency(w http.ResponseWriter, r *http.Request) {
	d := landingData{Name: e.cfg.Name}
	if e.cfg.Rekor != nil {
		if info, err := e.cfg.Rekor.Info(r.Context()); err == nil {
			d.Info = &info
		} else {
			e.cfg.Logger.ErrorContext(r.Context(), "explorer consistency: the log's head", "err", err)
		}
	}
	e.render(w, r, http.StatusOK, "consistency.html", d)
}

// searchUpload is POST /explorer: a public key uploaded as a file.
func (e *Explorer) searchUpload(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxQueryBytes+4096) // the file and the form's framing
	d := newSearchData()
	if err := r.ParseMultipartForm(MaxQueryBytes + 4096); err != nil {
		d.Error = fmt.Sprintf("the upload is not a form with a key file of at most %d bytes", MaxQueryBytes)
		e.render(w, r, http.StatusRequestEntityTooLarge, "search.html", d)
		return
	}
	f, _, err := r.FormFile("keyfile")
	if err != nil {
		d.Error = "choose a public key file to upload"
		e.render(w, r, http.StatusBadRequest, "search.html", d)
		return
	}
	defer f.Close()
	key, err := io.ReadAll(io.LimitReader(f, MaxQueryBytes+1))
	if err != nil || len(key) > MaxQueryBytes {
		d.Error = fmt.Sprintf("the key file is larger than %d bytes", MaxQueryBytes)
		e.render(w, r, http.StatusRequestEntityTooLarge, "search.html", d)
		return
	}
	q := r.URL.Query()
	q.Set("key", string(key))
	q.Set("by", "key")
	r.URL.RawQuery = q.Encode()
	e.search(w, r)
}

type result struct {
	UUID       string
	Index      int64
	Integrated time.Time
	Kind       string
	Signers    []string
}

type searchData struct {
	Query, Key   string
	What         string // what the query was taken for
	Error        string
	Results      []result
	Total, Page  int
	Prev, Next   string
	MaxQuery     int
	SearchedLogs bool
}

var (
	hex64    = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
	hex80    = regexp.MustCompile(`^[0-9a-fA-F]{80}$`)
	digits   = regexp.MustCompile(`^[0-9]{1,18}$`)
	hashLike = regexp.MustCompile(`^(sha256|sha1|sha512):[0-9a-fA-F]+$`)
)

// search is /explorer?q=...&key=...&page=N.
func (e *Explorer) search(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	key := strings.TrimSpace(r.URL.Query().Get("key"))
	d := newSearchData()
	d.Query, d.Key = q, key
	if q == "" && key == "" {
		e.render(w, r, http.StatusOK, "search.html", d)
		return
	}
	if len(q)+len(key) > MaxQueryBytes {
		d.Error = fmt.Sprintf("the search is longer than %d bytes", MaxQueryBytes)
		e.render(w, r, http.StatusRequestEntityTooLarge, "search.html", d)
		return
	}
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	page = max(page, 1)
	ids, what, err := e.find(r.Context(), q, key, r.URL.Query().Get("by"))
	d.What = what
	if err != nil {
		var ue *userError
		status := http.StatusInternalServerError
		if errors.As(err, &ue) {
			status = http.StatusBadRequest
			d.Error = ue.msg
		} else {
			e.cfg.Logger.ErrorContext(r.Context(), "explorer search", "err", err)
			d.Error = "the search failed on the server; try again"
		}
		e.render(w, r, status, "search.html", d)
		return
	}
	d.SearchedLogs = true
	slices.Sort(ids)
	page = min(page, len(ids)/PageSize+1) // and no overflow below
	d.Total, d.Page = len(ids), page
	from := (page - 1) * PageSize
	if from < len(ids) {
		for _, id := range ids[from:min(from+PageSize, len(ids))] {
			le, ok, err := e.cfg.Rekor.ByID(r.Context(), id)
			if err != nil {
				e.cfg.Logger.ErrorContext(r.Context(), "explorer search result", "id", id, "err", err)
				continue
			}
			if !ok {
				continue
			}
			for uuid, anon := range le {
				d.Results = append(d.Results, summarize(uuid, anon))
			}
		}
	}
	slices.SortFunc(d.Results, func(a, b result) int { return int(b.Index - a.Index) })
	link := func(p int) string {
		v := r.URL.Query()
		v.Set("page", strconv.Itoa(p))
		return "/explorer?" + v.Encode()
	}
	if page > 1 {
		d.Prev = link(page - 1)
	}
	if from+PageSize < len(ids) {
		d.Next = link(page + 1)
	}
	e.render(w, r, http.StatusOK, "search.html", d)
}

// prettyJSON indents b when it is JSON.
func prettyJSON(b []byte) (string, bool) {
	var v any
	var pretty strings.Builder
	enc := json.NewEncoder(&pretty)
	enc.SetIndent("", "  ")
	if json.Unmarshal(b, &v) != nil || enc.Encode(v) != nil {
		return "", false
	}
	return pretty.String(), true
}

// keyFormat tells a pasted or uploaded key's format by its first bytes,
// as they come out of the tools that make them; the rest is PEM (x509).
func keyFormat(key string) string {
	k := strings.TrimSpace(key)
	switch {
	case strings.HasPrefix(k, "-----BEGIN PGP"), len(k) > 0 && k[0]&0x80 != 0: // armored, or a binary packet
		return "pgp"
	case strings.HasPrefix(k, "untrusted comment:"), strings.HasPrefix(k, "RW"):
		return "minisign"
	case strings.HasPrefix(k, "ssh-"), strings.HasPrefix(k, "ecdsa-sha2-"), strings.HasPrefix(k, "sk-"):
		return "ssh"
	}
	return "x509"
}

type userError struct{ msg string }

func (e *userError) Error() string { return e.msg }

// find works out what q (or key, when its button was pressed) is and
// looks it up: a log index, an entry UUID or artifact digest (64 hex
// digits are either), a digest with its algorithm, an email, a public key.
func (e *Explorer) find(ctx context.Context, q, key, by string) ([]string, string, error) {
	if e.cfg.Rekor == nil {
		return nil, "", &userError{"this instance runs no transparency log"}
	}
	search := func(si model.SearchIndex) ([]string, error) {
		ids, err := e.cfg.Rekor.Search(ctx, si)
		if err != nil && rekorapi.IsClientError(err) {
			return nil, &userError{err.Error()}
		}
		return ids, err
	}
	switch {
	case key != "" && (by == "key" || q == ""):
		format := keyFormat(key)
		ids, err := search(model.SearchIndex{PublicKey: &model.SearchIndexPublicKey{Format: format, Content: []byte(key)}})
		return ids, "a public key (" + format + ")", err
	case digits.MatchString(q):
		index, _ := strconv.ParseInt(q, 10, 64)
		le, ok, err := e.cfg.Rekor.ByIndex(ctx, index)
		if err != nil || !ok {
			return nil, "a log index", err
		}
		var ids []string
		for id := range le {
			ids = append(ids, id)
		}
		return ids, "a log index", nil
	case hex80.MatchString(q):
		ids, err := e.byUUID(ctx, q)
		return ids, "an entry UUID", err
	case hex64.MatchString(q):
		ids, err := e.byUUID(ctx, q)
		if err != nil {
			return nil, "", err
		}
		more, err := search(model.SearchIndex{Hash: "sha256:" + strings.ToLower(q)})
		if err != nil {
			return nil, "", err
		}
		for _, id := range more {
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
		return ids, "an artifact SHA-256 or an entry UUID", nil
	case hashLike.MatchString(q):
		ids, err := search(model.SearchIndex{Hash: strings.ToLower(q)})
		return ids, "an artifact digest", err
	case strings.Contains(q, "@") && !strings.Contains(q, "://"):
		ids, err := search(model.SearchIndex{Email: q})
		return ids, "an email", err
	case strings.Contains(q, "://") && len(q) <= 512:
		// A URI SAN: a CI workflow, a SPIFFE ID.
		ids, err := search(model.SearchIndex{Subject: q})
		return ids, "an identity", err
	}
	return nil, "", &userError{"search for an artifact SHA-256 (64 hex digits, or sha256:...), an email or a URI identity, a log index, an entry UUID, or give a public key"}
}

func (e *Explorer) byUUID(ctx context.Context, id string) ([]string, error) {
	le, ok, err := e.cfg.Rekor.ByID(ctx, id)
	if err != nil && rekorapi.IsClientError(err) {
		return nil, &userError{err.Error()}
	}
	if err != nil || !ok {
		return nil, err
	}
	var ids []string
	for uuid := range le {
		ids = append(ids, uuid)
	}
	return ids, nil
}

// newSearchData is a search page's data, its form bounded.
func newSearchData() searchData { return searchData{MaxQuery: MaxQueryBytes} }

// summarize is an entry as a line of search results.
func summarize(uuid string, a model.LogEntryAnon) result {
	res := result{UUID: uuid, Index: a.LogIndex, Integrated: time.Unix(a.IntegratedTime, 0)}
	body, _ := base64.StdEncoding.DecodeString(a.Body)
	if parsed, err := monitor.Parse(body); err == nil {
		res.Kind = parsed.Kind
		for _, s := range parsed.Signers {
			res.Signers = append(res.Signers, signerName(s))
		}
	}
	return res
}

func signerName(s monitor.Signer) string {
	switch {
	case len(s.Emails) > 0:
		return strings.Join(s.Emails, ", ")
	case len(s.URIs) > 0:
		return strings.Join(s.URIs, ", ")
	case s.Subject != "":
		return s.Subject
	}
	return "key " + s.KeySHA256[:16] + "…"
}

// entryData is the entry page.
type entryData struct {
	UUID       string
	Index      int64
	Integrated time.Time
	Kind       string
	APIVersion string
	Digest     string
	Signers    []monitor.Signer
	LogID      string
	TreeSize   int64
	Checkpoint string
	Body       string // the canonical body, pretty-printed
	// Attestation is what the log stored with the entry (an intoto
	// statement, a COSE message): pretty-printed JSON, else base64.
	Attestation      string
	AttestationBytes int
	// Proof is what the script verifies, as JSON in the page.
	Proof template.JS
}

func (e *Explorer) entry(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	if !hex64.MatchString(id) && !hex80.MatchString(id) {
		d := newSearchData()
		d.Error = fmt.Sprintf("%q is not an entry UUID (64 or 80 hex digits)", id)
		e.render(w, r, http.StatusBadRequest, "search.html", d)
		return
	}
	if e.cfg.Rekor == nil {
		http.NotFound(w, r)
		return
	}
	le, ok, err := e.cfg.Rekor.ByID(r.Context(), id)
	d := newSearchData()
	switch {
	case err != nil && rekorapi.IsClientError(err):
		d.Error = err.Error()
		e.render(w, r, http.StatusBadRequest, "search.html", d)
		return
	case err != nil:
		e.cfg.Logger.ErrorContext(r.Context(), "explorer entry", "err", err)
		d.Error = "reading the entry failed on the server; try again"
		e.render(w, r, http.StatusInternalServerError, "search.html", d)
		return
	case !ok:
		d.Error = "no entry " + id + " in this log"
		e.render(w, r, http.StatusNotFound, "search.html", d)
		return
	}
	for uuid, a := range le {
		body, _ := base64.StdEncoding.DecodeString(a.Body)
		d := entryData{UUID: uuid, Index: a.LogIndex, Integrated: time.Unix(a.IntegratedTime, 0), LogID: a.LogID}
		var head struct {
			Kind       string `json:"kind"`
			APIVersion string `json:"apiVersion"`
			Spec       struct {
				Data struct {
					Hash        struct{ Algorithm, Value string } `json:"hash"`
					PayloadHash struct{ Algorithm, Value string } `json:"payloadHash"`
				} `json:"data"`
				PayloadHash struct{ Algorithm, Value string } `json:"payloadHash"`
			} `json:"spec"`
		}
		json.Unmarshal(body, &head) //nolint:errcheck // the log's own canonical JSON
		d.Kind, d.APIVersion = head.Kind, head.APIVersion
		switch {
		case head.Spec.Data.Hash.Value != "":
			d.Digest = head.Spec.Data.Hash.Algorithm + ":" + head.Spec.Data.Hash.Value
		case head.Spec.PayloadHash.Value != "":
			d.Digest = head.Spec.PayloadHash.Algorithm + ":" + head.Spec.PayloadHash.Value + " (the DSSE payload)"
		case head.Spec.Data.PayloadHash.Value != "":
			d.Digest = head.Spec.Data.PayloadHash.Algorithm + ":" + head.Spec.Data.PayloadHash.Value + " (the signed payload)"
		}
		if a.Attestation != nil {
			d.AttestationBytes = len(a.Attestation.Data)
			var ok bool
			if d.Attestation, ok = prettyJSON(a.Attestation.Data); !ok {
				d.Attestation = base64.StdEncoding.EncodeToString(a.Attestation.Data)
			}
		}
		if parsed, err := monitor.Parse(body); err == nil {
			d.Signers = parsed.Signers
		}
		d.Body, _ = prettyJSON(body)
		if p := a.Verification; p != nil && p.InclusionProof != nil {
			d.TreeSize, d.Checkpoint = p.InclusionProof.TreeSize, p.InclusionProof.Checkpoint
			proof, _ := json.Marshal(map[string]any{
				"uuid": uuid, "body": a.Body, "logID": a.LogID, "logIndex": p.InclusionProof.LogIndex, "treeSize": p.InclusionProof.TreeSize,
				"rootHash": p.InclusionProof.RootHash, "hashes": p.InclusionProof.Hashes, "checkpoint": p.InclusionProof.Checkpoint,
			})
			d.Proof = template.JS(proof) //nolint:gosec // JSON of the log's own values, in a JSON script element
		}
		e.render(w, r, http.StatusOK, "entry.html", d)
		return
	}
}
