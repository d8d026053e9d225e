package server_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cttls "github.com/google/certificate-transparency-go/tls"
	"github.com/jackc/pgx/v5"
	ssldsse "github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/signet-dev/signet/client"
	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/internal/db/dbtest"
	"github.com/signet-dev/signet/internal/keys"
	"github.com/signet-dev/signet/internal/server"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

const testHostname = "signet.test"

// instance is a running server on a real PostgreSQL, reachable over HTTP.
type instance struct {
	t      *testing.T
	srv    *server.Server
	http   *httptest.Server
	client *client.Log
	pub    crypto.PublicKey
	dbURL  string
	once   sync.Once
}

type fixture struct {
	dbURL   string
	keyPath string
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "log.pem")
	if err := keys.WriteFile(path, key, []byte("test-password")); err != nil {
		t.Fatal(err)
	}
	return fixture{dbURL: dbtest.NewURL(t), keyPath: path}
}

// start runs the server the way `signet-server run` does: production mode,
// an encrypted key file, an external database.
func (f fixture) start(t *testing.T, mutate ...func(*config.Config)) *instance {
	t.Helper()
	srv, err := f.newServer(mutate...)
	if err != nil {
		t.Fatalf("starting server: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	inst := &instance{t: t, srv: srv, http: hs, dbURL: f.dbURL}
	t.Cleanup(inst.stop)
	pemBytes := inst.get("/api/v1/log/publicKey", http.StatusOK)
	pub, err := client.ParsePublicKeyPEM(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	inst.pub = pub
	inst.client = client.NewLog(hs.URL, client.WithLogPublicKey(pub))
	return inst
}

// newServer is start without HTTP, for tests of start-up itself.
func (f fixture) newServer(mutate ...func(*config.Config)) (*server.Server, error) {
	cfg := config.Defaults()
	cfg.Hostname = testHostname
	cfg.Database.URL = f.dbURL
	cfg.Log.Signer = keys.FileURI(f.keyPath, keys.PasswordSource{Env: "LOG_KEY_PASSWORD"})
	for _, m := range mutate {
		m(&cfg)
	}
	env := map[string]string{"LOG_KEY_PASSWORD": "test-password"}
	return server.New(context.Background(), cfg, server.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Getenv: func(k string) string { return env[k] },
	})
}

// stop is idempotent: tests that restart stop explicitly, and the cleanup
// stops again.
func (i *instance) stop() {
	i.once.Do(func() {
		i.http.Close()
		i.srv.Close(context.Background())
	})
}

func (i *instance) do(method, path string, body []byte, wantStatus int) (*http.Response, []byte) {
	i.t.Helper()
	contentType := ""
	if body != nil {
		contentType = "application/json"
	}
	return i.doRaw(method, path, contentType, body, wantStatus)
}

func (i *instance) get(path string, wantStatus int) []byte {
	i.t.Helper()
	_, b := i.do(http.MethodGet, path, nil, wantStatus)
	return b
}

func (i *instance) post(path string, body []byte, wantStatus int) (*http.Response, []byte) {
	i.t.Helper()
	return i.do(http.MethodPost, path, body, wantStatus)
}

func (i *instance) treeSize() int64 {
	i.t.Helper()
	info, _, err := i.client.Info(context.Background())
	if err != nil {
		i.t.Fatal(err)
	}
	return info.TreeSize
}

// signer is a client key.
type signer struct {
	key    *ecdsa.PrivateKey
	pubPEM []byte
}

func newSigner(t *testing.T) *signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(k.Public())
	return &signer{key: k, pubPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})}
}

// certificate issues a self-signed code-signing certificate for email.
func (s *signer) certificate(t *testing.T, email string) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(10 * time.Minute),
		EmailAddresses: []string{email}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, s.key.Public(), s.key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func (s *signer) signDigest(t *testing.T, digest []byte) []byte {
	t.Helper()
	sig, err := ecdsa.SignASN1(rand.Reader, s.key, digest)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// hashedRekord signs artifact and builds the proposed entry.
func (s *signer) hashedRekord(t *testing.T, artifact, verifierPEM []byte) (json.RawMessage, []byte, []byte) {
	t.Helper()
	digest := sha256.Sum256(artifact)
	sig := s.signDigest(t, digest[:])
	if verifierPEM == nil {
		verifierPEM = s.pubPEM
	}
	p, err := client.HashedRekord("sha256", digest[:], sig, verifierPEM)
	if err != nil {
		t.Fatal(err)
	}
	return p, digest[:], sig
}

type adapter struct{ s *signer }

func (a adapter) Sign(_ context.Context, data []byte) ([]byte, error) {
	d := sha256.Sum256(data)
	return ecdsa.SignASN1(rand.Reader, a.s.key, d[:])
}
func (a adapter) KeyID() (string, error) { return "", nil }

// dsse signs an in-toto statement about artifact and builds the proposed entry.
func (s *signer) dsse(t *testing.T, artifact []byte) (json.RawMessage, *ssldsse.Envelope) {
	t.Helper()
	digest := sha256.Sum256(artifact)
	statement, _ := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []map[string]any{{"name": "artifact", "digest": map[string]string{"sha256": hex.EncodeToString(digest[:])}}},
		"predicateType": "https://example.com/test/v1",
		"predicate":     map[string]any{"materials": []map[string]any{{"digest": map[string]string{"sha1": strings.Repeat("ab", 20)}}}},
	})
	es, err := ssldsse.NewEnvelopeSigner(adapter{s})
	if err != nil {
		t.Fatal(err)
	}
	env, err := es.SignPayload(context.Background(), "application/vnd.in-toto+json", statement)
	if err != nil {
		t.Fatal(err)
	}
	envJSON, _ := json.Marshal(env)
	p, err := client.DSSE(envJSON, s.pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	return p, env
}

func sha256Sum(b []byte) []byte {
	d := sha256.Sum256(b)
	return d[:]
}

func startErr(cfg config.Config) (*server.Server, error) {
	srv, err := server.New(context.Background(), cfg, server.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Getenv: func(string) string { return "test-password" },
	})
	if err == nil {
		srv.Close(context.Background())
	}
	return srv, err
}

func (i *instance) doAuth(path, token string, body []byte, wantStatus int) (*http.Response, []byte) {
	i.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, i.http.URL+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return i.send(req, wantStatus)
}

func (i *instance) srvPool(t *testing.T) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), i.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func (i *instance) doRaw(method, path, contentType string, body []byte, wantStatus int) (*http.Response, []byte) {
	i.t.Helper()
	req, err := http.NewRequest(method, i.http.URL+path, bytes.NewReader(body))
	if err != nil {
		i.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return i.send(req, wantStatus)
}

// send does req and fails the test unless the answer has wantStatus.
func (i *instance) send(req *http.Request, wantStatus int) (*http.Response, []byte) {
	i.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		i.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		i.t.Fatalf("%s %s: status %d, want %d; body %q", req.Method, req.URL.Path, resp.StatusCode, wantStatus, data)
	}
	return resp, data
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func ctTLSUnmarshal(b []byte, v any) ([]byte, error) { return cttls.Unmarshal(b, v) }
