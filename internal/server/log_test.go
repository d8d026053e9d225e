package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/trillian/storage/storagepb"
	"github.com/jackc/pgx/v5"
	ssldsse "github.com/secure-systems-lab/go-securesystemslib/dsse"
	"google.golang.org/protobuf/proto"

	"github.com/signet-dev/signet/client"
	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/log/rekorapi"
	"github.com/signet-dev/signet/log/rekorapi/model"
)

// Every kind refuses a proposal it cannot verify with a 400 naming the
// kind, before anything is appended.
func TestEveryKindRefusesWithoutWriting(t *testing.T) {
	inst := newFixture(t).start(t)
	before := inst.treeSize()
	for _, kv := range [][2]string{
		{"hashedrekord", "0.0.1"}, {"dsse", "0.0.1"}, {"rekord", "0.0.1"}, {"rfc3161", "0.0.1"}, {"cose", "0.0.1"}, {"intoto", "0.0.1"},
		{"intoto", "0.0.2"}, {"tuf", "0.0.1"}, {"alpine", "0.0.1"}, {"helm", "0.0.1"}, {"rpm", "0.0.1"}, {"jar", "0.0.1"},
	} {
		body := []byte(`{"kind":"` + kv[0] + `","apiVersion":"` + kv[1] + `","spec":{}}`)
		_, msg := inst.post("/api/v1/log/entries", body, http.StatusBadRequest)
		if !bytes.Contains(msg, []byte(kv[0])) {
			t.Errorf("%s %s: %s, want a message naming the kind", kv[0], kv[1], msg)
		}
	}
	if after := inst.treeSize(); after != before {
		t.Fatalf("the tree grew from %d to %d on refused entries", before, after)
	}
}

// A statement listing more subjects than an entry may have search keys is
// refused, not written as thousands of index rows.
func TestSearchKeysAreBounded(t *testing.T) {
	inst := newFixture(t).start(t)
	s := newSigner(t)
	subjects := make([]map[string]any, rekorapi.MaxIndexKeys)
	for i := range subjects {
		sum := sha256.Sum256([]byte(fmt.Sprint(i)))
		subjects[i] = map[string]any{"name": fmt.Sprint(i), "digest": map[string]string{"sha256": hex.EncodeToString(sum[:])}}
	}
	statement, _ := json.Marshal(map[string]any{"_type": "https://in-toto.io/Statement/v1", "subject": subjects, "predicateType": "x", "predicate": map[string]any{}})
	es, err := ssldsse.NewEnvelopeSigner(adapter{s})
	if err != nil {
		t.Fatal(err)
	}
	env, err := es.SignPayload(context.Background(), "application/vnd.in-toto+json", statement)
	if err != nil {
		t.Fatal(err)
	}
	envJSON, _ := json.Marshal(env)
	p, _ := client.DSSE(envJSON, s.pubPEM)
	before := inst.treeSize()
	_, msg := inst.post("/api/v1/log/entries", p, http.StatusBadRequest)
	if !bytes.Contains(msg, []byte("more than 1024")) {
		t.Errorf("%s", msg)
	}
	if inst.treeSize() != before {
		t.Error("the log grew")
	}
}

func TestBadInputIsRefusedAndTheLogDoesNotGrow(t *testing.T) {
	inst := newFixture(t).start(t, func(c *config.Config) { c.Log.MaxRequestBytes = 64 << 10 })
	s := newSigner(t)
	good, _, _ := s.hashedRekord(t, []byte("good"), nil)
	if _, err := inst.client.Upload(context.Background(), good); err != nil {
		t.Fatal(err)
	}
	before := inst.treeSize()

	var spec map[string]any
	json.Unmarshal(good, &spec) //nolint:errcheck
	mutate := func(f func(m map[string]any)) []byte {
		var m map[string]any
		json.Unmarshal(good, &m) //nolint:errcheck
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	hashOf := func(m map[string]any) map[string]any {
		return m["spec"].(map[string]any)["data"].(map[string]any)["hash"].(map[string]any)
	}
	otherSig := newSigner(t)
	wrongKey, _, _ := s.hashedRekord(t, []byte("x"), otherSig.pubPEM)
	elevenUUIDs := make([]string, 11)
	for i := range elevenUUIDs {
		elevenUUIDs[i] = strings.Repeat("a", 64)
	}
	eleven, _ := json.Marshal(model.SearchLogQuery{EntryUUIDs: elevenUUIDs})

	tests := []struct {
		name       string
		method     string
		path       string
		body       []byte
		wantStatus int
		wantMsg    string
	}{
		{"malformed JSON", "POST", "/api/v1/log/entries", []byte(`{"kind":`), 400, "proposed entry"},
		{"unknown kind", "POST", "/api/v1/log/entries", []byte(`{"kind":"nope","apiVersion":"0.0.1","spec":{}}`), 400, `entry kind "nope" is not supported`},
		{"unknown version", "POST", "/api/v1/log/entries", mutate(func(m map[string]any) { m["apiVersion"] = "9.9.9" }), 400, `apiVersion "9.9.9" is not supported`},
		{"missing spec", "POST", "/api/v1/log/entries", []byte(`{"kind":"hashedrekord","apiVersion":"0.0.1"}`), 400, "spec is required"},
		{"unknown field", "POST", "/api/v1/log/entries", mutate(func(m map[string]any) { m["spec"].(map[string]any)["extra"] = 1 }), 400, "unknown field"},
		{"wrong signature", "POST", "/api/v1/log/entries", wrongKey, 400, "signature does not verify"},
		{"hash too short", "POST", "/api/v1/log/entries", mutate(func(m map[string]any) { hashOf(m)["value"] = "abcd" }), 400, "has 4 hex characters, sha256 needs 64"},
		{"sha384 length for sha256", "POST", "/api/v1/log/entries", mutate(func(m map[string]any) { hashOf(m)["algorithm"] = "sha384" }), 400, "sha384 needs 96"},
		{"unknown hash algorithm", "POST", "/api/v1/log/entries", mutate(func(m map[string]any) { hashOf(m)["algorithm"] = "md5" }), 400, `"md5" is not one of`},
		{"garbage key", "POST", "/api/v1/log/entries", mutate(func(m map[string]any) {
			m["spec"].(map[string]any)["signature"].(map[string]any)["publicKey"] = map[string]any{"content": base64.StdEncoding.EncodeToString([]byte("nope"))}
		}), 400, "not PEM"},
		{"oversized body", "POST", "/api/v1/log/entries", bytes.Repeat([]byte("x"), 65<<10), 413, "Limit set to 65536"},
		{"dsse with no verifiers", "POST", "/api/v1/log/entries", []byte(`{"kind":"dsse","apiVersion":"0.0.1","spec":{"proposedContent":{"envelope":"{}","verifiers":[]}}}`), 400, "verifiers needs at least one"},
		{"11 search items", "POST", "/api/v1/log/entries/retrieve", eleven, 422, "more than max allowed 10"},
		{"non-hex UUID", "GET", "/api/v1/log/entries/" + strings.Repeat("z", 64), nil, 422, "should match"},
		{"short UUID", "GET", "/api/v1/log/entries/abc", nil, 422, "should match"},
		{"80-hex with tree 0", "GET", "/api/v1/log/entries/" + strings.Repeat("0", 80), nil, 400, "invalid tree ID"},
		{"missing logIndex", "GET", "/api/v1/log/entries", nil, 422, "logIndex in query is required"},
		{"negative logIndex", "GET", "/api/v1/log/entries?logIndex=-1", nil, 422, "greater than or equal to 0"},
		{"lastSize beyond the tree", "GET", "/api/v1/log/proof?lastSize=99", nil, 400, "greater than what is currently observable(1)"},
		{"firstSize after lastSize", "GET", "/api/v1/log/proof?firstSize=2&lastSize=1", nil, 400, "firstSize(2) must be less than lastSize(1)"},
		{"unknown treeID", "GET", "/api/v1/log/publicKey?treeID=12345", nil, 400, "tree 12345 is not served"},
		{"search without criteria", "POST", "/api/v1/index/retrieve", []byte(`{}`), 400, "at least one of"},
		{"search bad hash", "POST", "/api/v1/index/retrieve", []byte(`{"hash":"sha256:xyz"}`), 422, "hash in body"},
		{"search bad operator", "POST", "/api/v1/index/retrieve", []byte(`{"hash":"sha1:` + strings.Repeat("a", 40) + `","operator":"xor"}`), 422, "operator"},
		{"search gpg key", "POST", "/api/v1/index/retrieve", []byte(`{"publicKey":{"format":"gpg","content":"AA=="}}`), 400, "not indexed"},
		{"search by a pgp key that is none", "POST", "/api/v1/index/retrieve", []byte(`{"publicKey":{"format":"pgp","content":"AA=="}}`), 400, "publicKey.content: reading the PGP key"},
		{"unknown endpoint", "GET", "/api/v1/nope", nil, 404, "no such endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body []byte
			if tt.method == "POST" {
				body = tt.body
			}
			_, data := inst.do(tt.method, tt.path, body, tt.wantStatus)
			var e model.Error
			if err := json.Unmarshal(data, &e); err != nil {
				t.Fatalf("error body %q is not {code,message}: %v", data, err)
			}
			if e.Code != tt.wantStatus || !strings.Contains(e.Message, tt.wantMsg) {
				t.Fatalf("got %d %q, want %d containing %q", e.Code, e.Message, tt.wantStatus, tt.wantMsg)
			}
		})
	}
	if after := inst.treeSize(); after != before {
		t.Fatalf("tree grew from %d to %d on bad input", before, after)
	}
}

func TestDuplicateGets409WithLocationOfTheExistingEntry(t *testing.T) {
	inst := newFixture(t).start(t)
	p, _, _ := newSigner(t).hashedRekord(t, []byte("dup"), nil)
	resp, body := inst.post("/api/v1/log/entries", p, http.StatusCreated)
	etag := resp.Header.Get("ETag")
	var created model.LogEntry
	json.Unmarshal(body, &created) //nolint:errcheck
	if _, ok := created[etag]; !ok || len(etag) != 80 {
		t.Fatalf("ETag %q is not the 80-hex key of the body", etag)
	}
	if loc := resp.Header.Get("Location"); loc != "/api/v1/log/entries/"+etag {
		t.Fatalf("Location %q", loc)
	}
	resp, body = inst.post("/api/v1/log/entries", p, http.StatusConflict)
	var e model.Error
	json.Unmarshal(body, &e) //nolint:errcheck
	if e.Message != "an equivalent entry already exists in the transparency log with UUID "+etag {
		t.Fatalf("409 message %q", e.Message)
	}
	if loc := resp.Header.Get("Location"); loc != "/api/v1/log/entries/"+etag {
		t.Fatalf("409 Location %q, want the existing entry", loc)
	}
	got := inst.get("/api/v1/log/entries/"+etag, http.StatusOK)
	var fetched model.LogEntry
	json.Unmarshal(got, &fetched) //nolint:errcheck
	if fetched[etag].Body != created[etag].Body {
		t.Fatal("the 409 Location does not lead to the same entry")
	}
	// The client library turns the 409 into the existing, verified entry.
	e2, err := inst.client.Upload(context.Background(), p)
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 409 || e2 == nil || e2.ID != etag {
		t.Fatalf("client upload of duplicate: entry %v err %v", e2, err)
	}
	if size := inst.treeSize(); size != 1 {
		t.Fatalf("tree size %d after a duplicate, want 1", size)
	}
}

func TestConcurrentAppendsIncludingDuplicatesInOneBatch(t *testing.T) {
	inst := newFixture(t).start(t)
	const n = 40
	proposals := make([][]byte, n)
	for i := range proposals {
		p, _, _ := newSigner(t).hashedRekord(t, []byte(fmt.Sprint("artifact ", i)), nil)
		proposals[i] = p
	}
	type result struct {
		status int
		id     string
	}
	results := make(chan result, 2*n)
	for i := 0; i < 2*n; i++ {
		go func(p []byte) {
			resp, err := http.Post(inst.http.URL+"/api/v1/log/entries", "application/json", bytes.NewReader(p))
			if err != nil {
				results <- result{status: -1}
				return
			}
			resp.Body.Close()
			id := resp.Header.Get("ETag")
			if id == "" {
				loc := resp.Header.Get("Location")
				id = loc[strings.LastIndex(loc, "/")+1:]
			}
			results <- result{resp.StatusCode, id}
		}(proposals[i%n])
	}
	created := map[string]bool{}
	conflicts := 0
	for i := 0; i < 2*n; i++ {
		r := <-results
		switch r.status {
		case 201:
			if created[r.id] {
				t.Fatalf("entry %s created twice", r.id)
			}
			created[r.id] = true
		case 409:
			conflicts++
		default:
			t.Fatalf("status %d", r.status)
		}
	}
	if len(created) != n || conflicts != n {
		t.Fatalf("%d created, %d conflicts; want %d each", len(created), conflicts, n)
	}
	if size := inst.treeSize(); size != n {
		t.Fatalf("tree size %d, want %d", size, n)
	}
	// Every entry is at a distinct index with a valid proof.
	seen := map[int64]bool{}
	for id := range created {
		e, err := inst.client.GetByUUID(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if seen[e.LogIndex] {
			t.Fatalf("index %d used twice", e.LogIndex)
		}
		seen[e.LogIndex] = true
	}
}

func TestSearchIndex(t *testing.T) {
	inst := newFixture(t).start(t)
	ctx := context.Background()
	alice := newSigner(t)
	certPEM := alice.certificate(t, "Alice@Example.com")
	artifact := []byte("searchable artifact")
	pKey, digest, _ := alice.hashedRekord(t, artifact, nil)
	pCert, _, _ := alice.hashedRekord(t, []byte("signed with a certificate"), certPEM)
	pDSSE, _ := alice.dsse(t, artifact)
	var ids []string
	for _, p := range [][]byte{pKey, pCert, pDSSE} {
		e, err := inst.client.Upload(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	other, _, _ := newSigner(t).hashedRekord(t, []byte("unrelated"), nil)
	if _, err := inst.client.Upload(ctx, other); err != nil {
		t.Fatal(err)
	}
	hexDigest := hex.EncodeToString(digest)
	tests := []struct {
		name string
		q    model.SearchIndex
		want []string
	}{
		{"artifact hash with prefix", model.SearchIndex{Hash: "sha256:" + hexDigest}, []string{ids[0], ids[2]}},
		{"artifact hash bare upper-case", model.SearchIndex{Hash: strings.ToUpper(hexDigest)}, []string{ids[0], ids[2]}},
		{"public key finds hashedrekord and dsse", model.SearchIndex{PublicKey: &model.SearchIndexPublicKey{Format: "x509", Content: alice.pubPEM}}, []string{ids[0], ids[2]}},
		{"certificate key", model.SearchIndex{PublicKey: &model.SearchIndexPublicKey{Format: "x509", Content: certPEM}}, []string{ids[1]}},
		{"email case-insensitive", model.SearchIndex{Email: "alice@EXAMPLE.com"}, []string{ids[1]}},
		{"subject", model.SearchIndex{Subject: "ALICE@example.com"}, []string{ids[1]}},
		{"or", model.SearchIndex{Email: "alice@example.com", Hash: hexDigest}, []string{ids[0], ids[1], ids[2]}},
		{"and", model.SearchIndex{Hash: hexDigest, PublicKey: &model.SearchIndexPublicKey{Format: "x509", Content: alice.pubPEM}, Operator: "and"}, []string{ids[0], ids[2]}},
		{"and with no overlap", model.SearchIndex{Email: "alice@example.com", Hash: hexDigest, Operator: "and"}, []string{}},
		{"in-toto material digest", model.SearchIndex{Hash: "sha1:" + strings.Repeat("ab", 20)}, []string{ids[2]}},
		{"nothing", model.SearchIndex{Email: "nobody@example.com"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := inst.client.Search(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			sort.Strings(got)
			want := append([]string{}, tt.want...)
			sort.Strings(want)
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
}

func TestRetrieveByUUIDIndexAndEntry(t *testing.T) {
	inst := newFixture(t).start(t)
	ctx := context.Background()
	s := newSigner(t)
	p0, _, _ := s.hashedRekord(t, []byte("zero"), nil)
	p1, _ := s.dsse(t, []byte("one"))
	p2, _, _ := s.hashedRekord(t, []byte("two"), nil)
	var es []*client.Entry
	for _, p := range [][]byte{p0, p1, p2} {
		e, err := inst.client.Upload(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
	}
	zero := int64(0)
	got, err := inst.client.Retrieve(ctx, model.SearchLogQuery{
		EntryUUIDs: []string{es[1].ID[16:], strings.Repeat("f", 64)},
		LogIndexes: []*int64{&zero},
		Entries:    []json.RawMessage{p2},
	})
	if err != nil {
		t.Fatal(err)
	}
	var gotIDs []string
	for _, e := range got {
		gotIDs = append(gotIDs, e.ID)
	}
	want := []string{es[1].ID, es[0].ID, es[2].ID}
	if strings.Join(gotIDs, ",") != strings.Join(want, ",") {
		t.Fatalf("retrieve returned %v, want %v", gotIDs, want)
	}
	// Lookups by index and by 64-hex UUID agree with the upload.
	byIdx, err := inst.client.GetByIndex(ctx, 2)
	if err != nil || byIdx.ID != es[2].ID {
		t.Fatalf("GetByIndex(2) = %v, %v", byIdx, err)
	}
	if _, err := inst.client.GetByIndex(ctx, 3); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("GetByIndex beyond the tree: %v, want not found", err)
	}
	if body := inst.get("/api/v1/log/entries/"+strings.Repeat("a", 64), http.StatusNotFound); len(body) != 0 {
		t.Fatalf("404 body %q, want empty", body)
	}
}

// Stopping and starting on the same database continues the same tree; the
// old checkpoint is consistent with the new one, and old entries are found.
func TestRestartContinuesTheTree(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	first := f.start(t)
	s := newSigner(t)
	var olds []*client.Entry
	for i := 0; i < 5; i++ {
		p, _, _ := s.hashedRekord(t, []byte(fmt.Sprint("before restart ", i)), nil)
		e, err := first.client.Upload(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		olds = append(olds, e)
	}
	info1, cp1, err := first.client.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first.stop()

	second := f.start(t)
	info2, _, err := second.client.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info2.TreeID != info1.TreeID || info2.TreeSize != 5 || info2.RootHash != info1.RootHash {
		t.Fatalf("after restart: tree %s size %d root %s; before: tree %s size 5 root %s", info2.TreeID, info2.TreeSize, info2.RootHash, info1.TreeID, info1.RootHash)
	}
	p, _, _ := s.hashedRekord(t, []byte("after restart"), nil)
	e, err := second.client.Upload(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if e.LogIndex != 5 {
		t.Fatalf("first entry after restart at index %d, want 5", e.LogIndex)
	}
	_, cp3, err := second.client.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := second.client.Consistency(ctx, cp1.Size, cp3.Size, cp1.RootHash, cp3.RootHash); err != nil {
		t.Fatalf("old checkpoint not consistent with the new one: %v", err)
	}
	// A consistency check against a forged old root must fail.
	if err := second.client.Consistency(ctx, cp1.Size, cp3.Size, make([]byte, 32), cp3.RootHash); err == nil {
		t.Fatal("consistency verified against a wrong old root")
	}
	for _, old := range olds {
		byID, err := second.client.GetByUUID(ctx, old.ID)
		if err != nil || byID.Body != old.Body {
			t.Fatalf("entry %s after restart: %v", old.ID, err)
		}
		byIdx, err := second.client.GetByIndex(ctx, old.LogIndex)
		if err != nil || byIdx.ID != old.ID {
			t.Fatalf("index %d after restart: %v", old.LogIndex, err)
		}
	}
	body, _ := base64.StdEncoding.DecodeString(olds[0].Body)
	var leaf struct {
		Spec struct {
			Data struct {
				Hash struct{ Value string } `json:"hash"`
			} `json:"data"`
		} `json:"spec"`
	}
	json.Unmarshal(body, &leaf) //nolint:errcheck
	ids, err := second.client.Search(ctx, model.SearchIndex{Hash: leaf.Spec.Data.Hash.Value})
	if err != nil || len(ids) != 1 || ids[0] != olds[0].ID {
		t.Fatalf("search after restart = %v, %v", ids, err)
	}
}

// An entry integrated just before a crash, whose index rows were never
// written, is indexed at the next start from the keys stored beside it.
func TestIndexCatchesUpAfterACrash(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	first := f.start(t)
	s := newSigner(t)
	var entries []*client.Entry
	for i := 0; i < 3; i++ {
		p, _, _ := s.hashedRekord(t, []byte(fmt.Sprint("crash ", i)), nil)
		e, err := first.client.Upload(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, e)
	}
	first.stop()
	// The state a crash between integration and indexing leaves behind:
	// leaves 1 and 2 integrated, index and watermark only cover leaf 0.
	conn, err := pgx.Connect(ctx, f.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DELETE FROM search_index WHERE leaf_hash <> $1", mustHex(t, entries[0].ID[16:])); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "UPDATE search_index_watermark SET indexed_size = 1"); err != nil {
		t.Fatal(err)
	}
	pubSearch := model.SearchIndex{PublicKey: &model.SearchIndexPublicKey{Format: "x509", Content: s.pubPEM}}

	second := f.start(t)
	ids, err := second.client.Search(ctx, pubSearch)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 3 {
		t.Fatalf("after restart the key finds %d entries, want 3 (index not caught up)", len(ids))
	}
	var wm int64
	if err := conn.QueryRow(ctx, "SELECT indexed_size FROM search_index_watermark").Scan(&wm); err != nil || wm != 3 {
		t.Fatalf("watermark %d (%v), want 3", wm, err)
	}
}

func TestEntryTypesLimitInsertionButNotReads(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := newSigner(t)
	both := f.start(t)
	pd, _ := s.dsse(t, []byte("dsse before"))
	stored, err := both.client.Upload(ctx, pd)
	if err != nil {
		t.Fatal(err)
	}
	both.stop()
	onlyHR := f.start(t, func(c *config.Config) { c.Log.EntryTypes = []string{"hashedrekord"} })
	pd2, _ := s.dsse(t, []byte("dsse after"))
	_, body := onlyHR.post("/api/v1/log/entries", pd2, http.StatusBadRequest)
	if !strings.Contains(string(body), `entry kind \"dsse\" is not enabled for insertion`) {
		t.Fatalf("body %s", body)
	}
	if _, err := onlyHR.client.GetByUUID(ctx, stored.ID); err != nil {
		t.Fatalf("reading an existing dsse entry: %v", err)
	}
	got, err := onlyHR.client.Retrieve(ctx, model.SearchLogQuery{Entries: []json.RawMessage{pd}})
	if err != nil || len(got) != 1 || got[0].ID != stored.ID {
		t.Fatalf("search by dsse entry: %v %v", got, err)
	}
}

func TestConfigErrorsStopStartUp(t *testing.T) {
	f := newFixture(t)
	for _, tt := range []struct {
		name   string
		mutate func(*config.Config)
		want   string
	}{
		{"unknown entry type", func(c *config.Config) { c.Log.EntryTypes = []string{"debian"} }, `entry type "debian" is not known`},
		{"memory key outside dev", func(c *config.Config) { c.Log.Signer = "memory:" }, "only allowed in dev mode"},
		{"no database", func(c *config.Config) { c.Database.URL = "" }, "database.url"},
		{"tiny body limit", func(c *config.Config) { c.Log.MaxRequestBytes = 10 }, "max_request_bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Defaults()
			cfg.Hostname = testHostname
			cfg.Database.URL = f.dbURL
			cfg.Log.Signer = "file://" + f.keyPath + "?password-env=P"
			tt.mutate(&cfg)
			_, err := startErr(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("start error %v, want containing %q", err, tt.want)
			}
		})
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The client's offline verification must catch every kind of tampering.
func TestClientVerificationCatchesTampering(t *testing.T) {
	inst := newFixture(t).start(t)
	ctx := context.Background()
	s := newSigner(t)
	for i := 0; i < 2; i++ {
		p, _, _ := s.hashedRekord(t, []byte(fmt.Sprint("pad ", i)), nil)
		if _, err := inst.client.Upload(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	p, _, _ := s.hashedRekord(t, []byte("verify me"), nil)
	good, err := inst.client.Upload(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.VerifyEntry(good, inst.pub); err != nil {
		t.Fatalf("untampered entry: %v", err)
	}
	clone := func() *client.Entry {
		b, _ := json.Marshal(good.LogEntryAnon)
		e := &client.Entry{ID: good.ID}
		json.Unmarshal(b, &e.LogEntryAnon) //nolint:errcheck
		return e
	}
	otherBody, _ := base64.StdEncoding.DecodeString(good.Body)
	otherBody = bytes.Replace(otherBody, []byte(`"sha256"`), []byte(`"sha512"`), 1)
	tests := []struct {
		name   string
		mutate func(e *client.Entry)
		want   string
	}{
		{"body", func(e *client.Entry) { e.Body = base64.StdEncoding.EncodeToString(otherBody) }, "does not end in the body's leaf hash"},
		{"integrated time", func(e *client.Entry) { e.IntegratedTime++ }, "signed entry timestamp does not verify"},
		{"log index", func(e *client.Entry) { e.LogIndex++ }, "signed entry timestamp does not verify"},
		{"proof hash", func(e *client.Entry) { e.Verification.InclusionProof.Hashes[0] = strings.Repeat("0", 64) }, "inclusion proof"},
		{"proof index", func(e *client.Entry) { e.Verification.InclusionProof.LogIndex = 0 }, "inclusion proof"},
		{"checkpoint", func(e *client.Entry) {
			e.Verification.InclusionProof.Checkpoint = strings.Replace(e.Verification.InclusionProof.Checkpoint, "\n3\n", "\n4\n", 1)
		}, "checkpoint"},
		{"root", func(e *client.Entry) { e.Verification.InclusionProof.RootHash = strings.Repeat("1", 64) }, "do not match the checkpoint"},
		{"log ID", func(e *client.Entry) { e.LogID = strings.Repeat("a", 64) }, "not the log key's ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := clone()
			tt.mutate(e)
			if err := client.VerifyEntry(e, inst.pub); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("tampered %s: %v, want error containing %q", tt.name, err, tt.want)
			}
		})
	}
	if err := client.VerifyEntry(clone(), newSigner(t).key.Public()); err == nil {
		t.Fatal("verified with the wrong log key")
	}
}

// A tile altered while the server was down stops start-up with a message
// naming what disagrees: nothing is served from a tree whose proofs would
// not verify, and nothing is appended to it. Altered with its stored
// internal nodes dropped, the tile is consistent in itself but does not
// hash to the stored tree head; altered alone, it contradicts its own
// internal nodes.
func TestAlteredTilesStopStartUp(t *testing.T) {
	for _, tt := range []struct {
		name         string
		dropInternal bool
		want         []string
	}{
		{"tile disagrees with the root", true, []string{"storage is inconsistent", "size 4"}},
		{"tile disagrees with itself", false, []string{"tile 00000000000000: stored internal node", "is not the hash of the"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			first := f.start(t)
			s := newSigner(t)
			for i := 0; i < 4; i++ {
				p, _, _ := s.hashedRekord(t, []byte(fmt.Sprint("entry ", i)), nil)
				if _, err := first.client.Upload(ctx, p); err != nil {
					t.Fatal(err)
				}
			}
			tree := first.srv.Log().TreeID()
			first.stop()
			conn := first.srvPool(t)
			var raw []byte
			if err := conn.QueryRow(ctx, "SELECT Nodes FROM Subtree WHERE TreeId = $1 AND SubtreeId = $2", tree, make([]byte, 7)).Scan(&raw); err != nil {
				t.Fatalf("reading the bottom tile: %v", err)
			}
			var tile storagepb.SubtreeProto
			if err := proto.Unmarshal(raw, &tile); err != nil || len(tile.Leaves) != 4 || len(tile.InternalNodes) == 0 {
				t.Fatalf("the bottom tile holds %d nodes and %d internal ones (%v), want 4 and some", len(tile.Leaves), len(tile.InternalNodes), err)
			}
			// Bottom node 0 (the key is its suffix: 8 bits, index 0).
			if _, ok := tile.Leaves["CAA="]; !ok {
				t.Fatalf("the bottom tile has no node 0: keys %v", slices.Collect(maps.Keys(tile.Leaves)))
			}
			tile.Leaves["CAA="] = make([]byte, 32)
			if tt.dropInternal {
				tile.InternalNodes = nil
			}
			if raw, err := proto.Marshal(&tile); err != nil {
				t.Fatal(err)
			} else if tag, err := conn.Exec(ctx, "UPDATE Subtree SET Nodes = $1 WHERE TreeId = $2 AND SubtreeId = $3", raw, tree, make([]byte, 7)); err != nil || tag.RowsAffected() != 1 {
				t.Fatalf("altering the bottom tile: %v", err)
			}
			srv, err := f.newServer()
			if err == nil {
				srv.Close(ctx)
				t.Fatal("started on an altered tile")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("start-up error %q does not say %q", err, w)
				}
			}
		})
	}
}

// The bulk import (signet-bench --fill) writes what the API writes: each
// imported entry reads back with a proof, checkpoint and SET that verify,
// is found by search, and appends carry on after it; an invalid entry fails
// the whole import with nothing written.
func TestImportWritesWhatTheAPIWrites(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	inst := f.start(t)
	s := newSigner(t)
	p, _, _ := s.hashedRekord(t, []byte("appended first"), nil)
	if _, err := inst.client.Upload(ctx, p); err != nil {
		t.Fatal(err)
	}
	var bodies [][]byte
	for i := range 40 {
		p, _, _ := s.hashedRekord(t, []byte(fmt.Sprint("imported ", i)), nil)
		bodies = append(bodies, p)
	}
	root, err := inst.srv.Rekor().Import(ctx, bodies)
	if err != nil || root.Size != 41 {
		t.Fatalf("import: size %d, %v; want 41", root.Size, err)
	}
	for i := range 40 {
		e, err := inst.client.GetByIndex(ctx, int64(1+i)) // verifies proof, checkpoint and SET
		if err != nil {
			t.Fatalf("imported entry %d: %v", i, err)
		}
		sum := sha256.Sum256([]byte(fmt.Sprint("imported ", i)))
		ids, err := inst.client.Search(ctx, model.SearchIndex{Hash: "sha256:" + hex.EncodeToString(sum[:])})
		if err != nil || len(ids) != 1 || ids[0] != e.ID {
			t.Fatalf("search for imported entry %d: %v %v, want [%s]", i, ids, err, e.ID)
		}
	}
	p, _, _ = s.hashedRekord(t, []byte("appended after"), nil)
	if e, err := inst.client.Upload(ctx, p); err != nil || e.LogIndex != 41 {
		t.Fatalf("append after the import: %+v, %v", e, err)
	}
	bad, _, _ := s.hashedRekord(t, []byte("bad"), nil)
	bad = bytes.Replace(bad, []byte(`"kind"`), []byte(`"kind_"`), 1)
	good, _, _ := s.hashedRekord(t, []byte("good"), nil)
	if _, err := inst.srv.Rekor().Import(ctx, [][]byte{good, bad}); err == nil || !strings.Contains(err.Error(), "entry 1 of 2") {
		t.Fatalf("an import with an invalid entry: %v, want an error naming entry 1", err)
	}
	if info, _, err := inst.client.Info(ctx); err != nil || info.TreeSize != 42 {
		t.Fatalf("tree size after a failed import %d (%v), want 42", info.TreeSize, err)
	}
}
