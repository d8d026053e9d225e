package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"
	sgroot "github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/tuf"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/signet-dev/signet/ca/devoidc"
	"github.com/signet-dev/signet/ca/identity"
	"github.com/signet-dev/signet/client"
	"github.com/signet-dev/signet/internal/bootstrap"
	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/internal/db/dbtest"
	"github.com/signet-dev/signet/internal/keys"
	"github.com/signet-dev/signet/internal/keys/softhsmtest"
	"github.com/signet-dev/signet/internal/pkigen"
	"github.com/signet-dev/signet/internal/server"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func runAdmin(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(append([]string{"admin"}, args...))
	err := cmd.Execute()
	return out.String(), err
}

// startFromInit runs the server in production mode from the configuration
// init wrote, with an OIDC issuer added, and checks that the CA (with its CT
// log) and the TSA work with the created keys. It returns the database URL.
func startFromInit(t *testing.T, dir string) string {
	t.Helper()
	cfg, err := config.Load(filepath.Join(dir, "signet.yaml"), os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(nil)
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	idp, _ := devoidc.New("http://"+hs.Listener.Addr().String()+devoidc.Path, key)
	r := chi.NewRouter()
	idp.Routes(r)
	hs.Config.Handler = r
	hs.Start()
	t.Cleanup(hs.Close)
	cfg.Database.URL = dbtest.NewURL(t)
	cfg.CA.Issuers = []identity.IssuerConfig{{URL: idp.URL(), Type: identity.TypeEmail}}
	srvHS := httptest.NewUnstartedServer(nil)
	cfg.PublicURL = "http://" + srvHS.Listener.Addr().String()
	srv, err := server.New(context.Background(), cfg, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Getenv: os.Getenv})
	if err != nil {
		t.Fatalf("starting from the initialised configuration: %v", err)
	}
	srvHS.Config.Handler = srv.Handler()
	srvHS.Start()
	t.Cleanup(func() { srvHS.Close(); srv.Close(context.Background()) })
	tok, _ := idp.Token("ops@example.com", "")
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	chain, err := client.NewCA(srvHS.URL).SigningCertificate(context.Background(), tok, k)
	if err != nil || len(chain) != 3 {
		t.Fatalf("certificate from the initialised CA: %v", err)
	}
	d := sha256.Sum256([]byte("x"))
	st, err := client.NewTSA(srvHS.URL+"/api/v1/timestamp").Timestamp(context.Background(), client.TimestampRequest{Hash: crypto.SHA256, Digest: d[:]})
	if err != nil {
		t.Fatal(err)
	}
	tsaChain, _ := os.ReadFile(cfg.Timestamp.Chain)
	certs, _ := cryptoutils.UnmarshalCertificatesFromPEM(tsaChain)
	if _, err := client.VerifyTimestamp(st.Response, bytes.NewReader([]byte("x")), certs, nil); err != nil {
		t.Fatalf("timestamp from the initialised TSA: %v", err)
	}
	// The TUF repository is signed with the created role keys: sigstore-go's
	// client bootstrapped from its root.json gets the served trusted root.
	resp, err := http.Get(srvHS.URL + "/tuf/1.root.json")
	if err != nil {
		t.Fatal(err)
	}
	tufRoot, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	tc, err := tuf.New(tuf.DefaultOptions().WithRoot(tufRoot).WithRepositoryBaseURL(srvHS.URL + "/tuf").WithCachePath(t.TempDir()))
	if err != nil {
		t.Fatalf("TUF client on the initialised instance: %v", err)
	}
	if tr, err := sgroot.GetTrustedRoot(tc); err != nil || len(tr.FulcioCertificateAuthorities()) != 1 {
		t.Fatalf("trusted root through TUF: %v", err)
	}
	out, err := runAdmin(t, "", "trust", "show", "--server", srvHS.URL)
	if err != nil || !strings.Contains(out, "certificate authority") || !strings.Contains(out, "Example Corp intermediate") || !strings.Contains(out, "CT log") {
		t.Fatalf("trust show: %v\n%s", err, out)
	}
	return cfg.Database.URL
}

func TestAdminInitWithFiles(t *testing.T) {
	t.Setenv(passwordEnv, "ceremony-password")
	dir := filepath.Join(t.TempDir(), "etc")
	if out, err := runAdmin(t, "n\n", "init", "--dir", dir, "--organization", "Example Corp"); err == nil || !strings.Contains(err.Error(), "nothing was created") {
		t.Fatalf("declined init: %v\n%s", err, out)
	}
	out, err := runAdmin(t, "y\n", "init", "--dir", dir, "--organization", "Example Corp", "--hostname", "signet.example.com")
	if err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	for _, f := range []string{"log.pem", "ct.pem", "ca-root.pem", "ca.pem", "tsa-root.pem", "tsa.pem", "tuf-root.pem", "tuf-timestamp.pem"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || !strings.Contains(string(data), "ENCRYPTED PRIVATE KEY") {
			t.Fatalf("%s is not an encrypted key: %v", f, err)
		}
	}
	if _, err := runAdmin(t, "", "init", "--dir", dir, "--yes"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second init over the same directory: %v", err)
	}
	startFromInit(t, dir)
}

// An init container's run: the password made into a file, keys encrypted
// with it and named with password-file=, later runs with --once doing
// nothing, a partial directory still refused, and a rotated key encrypted
// from the same file.
func TestAdminInitWithPasswordFileOnce(t *testing.T) {
	t.Setenv(passwordEnv, "")
	dir := filepath.Join(t.TempDir(), "signet")
	pwFile := filepath.Join(dir, "secrets", "key-password")
	args := []string{"init", "--dir", dir, "--yes", "--once", "--password-file", pwFile, "--hostname", "signet.example.com"}
	out, err := runAdmin(t, "", args...)
	if err != nil || !strings.Contains(out, "made at random and written to "+pwFile) {
		t.Fatalf("init --password-file: %v\n%s", err, out)
	}
	fi, err := os.Stat(pwFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("password file: %v %v", fi, err)
	}
	pw, _ := os.ReadFile(pwFile)
	if len(pw) != 44 || pw[43] != '\n' {
		t.Fatalf("password file holds %q, want 43 base64url characters and a newline", pw)
	}
	cfgPath := filepath.Join(dir, "signet.yaml")
	cfg, err := config.Load(cfgPath, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if want := "file://" + filepath.Join(dir, "log.pem") + "?password-file=" + pwFile; cfg.Log.Signer != want {
		t.Fatalf("log.signer = %q, want %q", cfg.Log.Signer, want)
	}
	if _, err := keys.Open(cfg.TUF.SnapshotSigner, keys.Options{Getenv: func(string) string { return "" }}); err != nil {
		t.Fatalf("opening a key with its password file: %v", err)
	}
	logKey, _ := os.ReadFile(filepath.Join(dir, "log.pem"))

	out, err = runAdmin(t, "", args...)
	if err != nil || !strings.Contains(out, "nothing to do") {
		t.Fatalf("second init --once: %v\n%s", err, out)
	}
	if again, _ := os.ReadFile(pwFile); string(again) != string(pw) {
		t.Fatal("the second run changed the password file")
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "log.pem")); string(again) != string(logKey) {
		t.Fatal("the second run changed log.pem")
	}
	without := slices.DeleteFunc(slices.Clone(args), func(a string) bool { return a == "--once" })
	if _, err := runAdmin(t, "", without...); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second init without --once: %v", err)
	}
	// The root keys moved offline, as the ceremony says: still nothing to do.
	for _, f := range []string{"ca-root.pem", "tsa-root.pem", "tuf-root.pem"} {
		if err := os.Rename(filepath.Join(dir, f), filepath.Join(t.TempDir(), f)); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := runAdmin(t, "", args...); err != nil || !strings.Contains(out, "nothing to do") {
		t.Fatalf("--once with the root keys offline: %v\n%s", err, out)
	}
	// An init that did not finish (no marker) is refused, naming what is there.
	partial := filepath.Join(t.TempDir(), "partial")
	if err := os.MkdirAll(partial, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(partial, "log.pem"), logKey, 0o600); err != nil {
		t.Fatal(err)
	}
	partialArgs := []string{"init", "--dir", partial, "--yes", "--once", "--password-file", pwFile}
	if _, err := runAdmin(t, "", partialArgs...); err == nil || !strings.Contains(err.Error(), filepath.Join(partial, "log.pem")+" already exists but no init finished there") {
		t.Fatalf("--once over an unfinished init: %v", err)
	}

	t.Setenv("DATABASE_URL", "")
	t.Setenv("SIGNET_DATABASE_URL", "")
	if _, err := runAdmin(t, "", "rotate", "--config", cfgPath, "--yes", "log"); err == nil || !strings.Contains(err.Error(), "set DATABASE_URL") {
		t.Fatalf("rotate log without a database to record it in: %v", err)
	}
	t.Setenv("DATABASE_URL", dbtest.NewURL(t))
	if out, err := runAdmin(t, "", "rotate", "--config", cfgPath, "--yes", "log"); err != nil {
		t.Fatalf("rotate log: %v\n%s", err, out)
	}
	cfg, _ = config.Load(cfgPath, func(string) string { return "" })
	if !strings.HasSuffix(cfg.Log.Signer, "?password-file="+pwFile) || strings.Contains(cfg.Log.Signer, "/log.pem") {
		t.Fatalf("rotated log.signer %q is not a new file encrypted from the password file", cfg.Log.Signer)
	}
	if _, err := keys.Open(cfg.Log.Signer, keys.Options{Getenv: func(string) string { return "" }}); err != nil {
		t.Fatalf("opening the rotated key: %v", err)
	}
}

func TestAdminInitInPKCS11Token(t *testing.T) {
	tk := softhsmtest.Setup(t)
	dir := filepath.Join(t.TempDir(), "etc")
	base := strings.Replace(tk.URI("x"), ";object=x", "", 1)
	if out, err := runAdmin(t, "", "init", "--dir", dir, "--yes", "--organization", "Example Corp", "--pkcs11", base); err != nil {
		t.Fatalf("init --pkcs11: %v\n%s", err, out)
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, "*.pem")); len(matches) != 2 {
		t.Fatalf("with --pkcs11 only the two chains should be files, found %v", matches)
	}
	t.Setenv("DATABASE_URL", startFromInit(t, dir)) // the rotation is recorded there
	// Rotating makes the new key and certificate in the same token.
	rootURI, _ := bootstrap.TokenObject(base, "signet-ca-root")
	if out, err := runAdmin(t, "", "rotate", "--config", filepath.Join(dir, "signet.yaml"), "--yes", "--root-key", rootURI, "ca"); err != nil {
		t.Fatalf("rotate ca in the token: %v\n%s", err, out)
	}
	cfg, _ := config.Load(filepath.Join(dir, "signet.yaml"), os.Getenv)
	if !strings.Contains(cfg.CA.Signer, ";object=signet-ca-2") {
		t.Fatalf("rotated CA signer %q is not a new object in the token", cfg.CA.Signer)
	}
	startFromInit(t, dir)
}

// signCSR plays the corporate PKI: it issues what the request asks for,
// extensions included, under root.
func signCSR(t *testing.T, csrPath string, root *x509.Certificate, rootKey crypto.Signer) []*x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(csrPath)
	if err != nil {
		t.Fatal(err)
	}
	// Real openssl must accept our request too.
	if out, err := exec.Command("openssl", "req", "-in", csrPath, "-noout", "-verify").CombinedOutput(); err != nil {
		t.Fatalf("openssl req -verify %s: %v\n%s", csrPath, err, out)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		t.Fatalf("%s is not a PEM certificate request", csrPath)
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil || req.CheckSignature() != nil {
		t.Fatalf("request %s: %v", csrPath, err)
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: req.Subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0),
		ExtraExtensions: req.Extensions,
	}, root, req.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return []*x509.Certificate{cert, root}
}

func TestAdminInitWithExternalCA(t *testing.T) {
	t.Setenv(passwordEnv, "ceremony-password")
	dir := filepath.Join(t.TempDir(), "etc")
	out, err := runAdmin(t, "", "init", "--dir", dir, "--yes", "--external-ca", "--organization", "Example Corp")
	if err != nil {
		t.Fatalf("init --external-ca: %v\n%s", err, out)
	}
	for f, want := range map[string]bool{"ca.csr": true, "tsa.csr": true, "ca.pem": true, "ca-root.pem": false, "tsa-root.pem": false, "ca-chain.pem": false} {
		if _, err := os.Stat(filepath.Join(dir, f)); (err == nil) != want {
			t.Errorf("%s exists = %v, want %v", f, err == nil, want)
		}
	}
	corpKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	corpRoot, err := pkigen.Root(pkigen.Names{Organization: "Corp", Prefix: "Corp"}, "root", corpKey, 10)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, chain []*x509.Certificate) string {
		p := filepath.Join(t.TempDir(), name)
		os.WriteFile(p, pkigen.PEM(chain), 0o644) //nolint:errcheck
		return p
	}
	caChain := write("ca.pem", signCSR(t, filepath.Join(dir, "ca.csr"), corpRoot, corpKey))
	tsaChain := write("tsa.pem", signCSR(t, filepath.Join(dir, "tsa.csr"), corpRoot, corpKey))
	cfg := filepath.Join(dir, "signet.yaml")

	// A chain for another key is refused and nothing is written.
	if out, err := runAdmin(t, "", "import-chain", "--config", cfg, "ca", tsaChain); err == nil || !strings.Contains(err.Error(), "does not fit the ca") {
		t.Fatalf("importing the TSA chain as the CA's: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "ca-chain.pem")); err == nil {
		t.Fatal("a refused chain was written")
	}
	for comp, chain := range map[string]string{"ca": caChain, "tsa": tsaChain} {
		if out, err := runAdmin(t, "", "import-chain", "--config", cfg, comp, chain); err != nil || !strings.Contains(out, "chain OK") {
			t.Fatalf("import-chain %s: %v\n%s", comp, err, out)
		}
	}
	// Replacing an installed chain asks first.
	if _, err := runAdmin(t, "n\n", "import-chain", "--config", cfg, "ca", caChain); err == nil || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("declined replacement: %v", err)
	}
	startFromInit(t, dir)
}

func TestAdminRotateCAAndTSA(t *testing.T) {
	t.Setenv(passwordEnv, "ceremony-password")
	dir := filepath.Join(t.TempDir(), "etc")
	if out, err := runAdmin(t, "", "init", "--dir", dir, "--yes", "--organization", "Example Corp"); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	cfgPath := filepath.Join(dir, "signet.yaml")
	before, _ := config.Load(cfgPath, os.Getenv)
	rootKey := func(name string) string {
		return keys.FileURI(filepath.Join(dir, name), keys.PasswordSource{Env: passwordEnv})
	}

	t.Setenv("DATABASE_URL", dbtest.NewURL(t)) // where rotations are recorded
	if _, err := runAdmin(t, "", "rotate", "--config", cfgPath, "--root-key", rootKey("tsa-root.pem"), "ca"); err == nil || !strings.Contains(err.Error(), "not the key of the chain's root") {
		t.Fatalf("rotating the CA with the TSA root: %v", err)
	}
	if _, err := runAdmin(t, "n\n", "rotate", "--config", cfgPath, "--root-key", rootKey("ca-root.pem"), "ca"); err == nil || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("declined rotation: %v", err)
	}
	for comp, root := range map[string]string{"ca": "ca-root.pem", "tsa": "tsa-root.pem"} {
		if out, err := runAdmin(t, "", "rotate", "--config", cfgPath, "--yes", "--root-key", rootKey(root), comp); err != nil {
			t.Fatalf("rotate %s: %v\n%s", comp, err, out)
		}
	}
	for _, comp := range []string{"ct", "log"} {
		if out, err := runAdmin(t, "", "rotate", "--config", cfgPath, "--yes", comp); err != nil {
			t.Fatalf("rotate %s: %v\n%s", comp, err, out)
		}
	}
	after, err := config.Load(cfgPath, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	if after.CA.Signer == before.CA.Signer || after.CA.Chain == before.CA.Chain || after.Timestamp.Signer == before.Timestamp.Signer || after.Timestamp.Chain == before.Timestamp.Chain {
		t.Fatalf("config not pointed at the new keys: %+v / %+v", after.CA, after.Timestamp)
	}
	for name, uris := range map[string][2]string{"ct": {before.CT.Signer, after.CT.Signer}, "log": {before.Log.Signer, after.Log.Signer}} {
		if uris[1] == uris[0] || !strings.HasSuffix(strings.SplitN(uris[1], "?", 2)[0], ".pem") {
			t.Fatalf("%s.signer after rotation: %q", name, uris[1])
		}
	}
	if after.TUF != before.TUF {
		t.Fatal("rotation changed unrelated settings")
	}
	if raw, _ := os.ReadFile(cfgPath); !strings.Contains(string(raw), "# Every key: docs/configuration.md") {
		t.Fatal("rotation dropped the config's comments")
	}
	// Same root, new issuing certificate.
	oldChain, _ := os.ReadFile(before.CA.Chain)
	newChain, _ := os.ReadFile(after.CA.Chain)
	oc, _ := cryptoutils.UnmarshalCertificatesFromPEM(oldChain)
	nc, _ := cryptoutils.UnmarshalCertificatesFromPEM(newChain)
	if len(nc) != 2 || !nc[1].Equal(oc[1]) || nc[0].Equal(oc[0]) {
		t.Fatal("the rotated CA chain should have a new intermediate under the old root")
	}
	dbURL := startFromInit(t, dir)

	// A new TUF root key: root.json version 2 in the instance's database.
	t.Setenv("DATABASE_URL", dbURL)
	newRoot := filepath.Join(dir, "tuf-root-2.pem")
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err := keys.WriteFile(newRoot, k, []byte("ceremony-password")); err != nil {
		t.Fatal(err)
	}
	out, err := runAdmin(t, "", "rotate", "--config", cfgPath, "--yes", "--root-key", rootKey("tuf-root.pem"), "--new-root-key", keys.FileURI(newRoot, keys.PasswordSource{Env: passwordEnv}), "tuf-root")
	if err != nil || !strings.Contains(out, "root.json version 2") {
		t.Fatalf("rotate tuf-root: %v\n%s", err, out)
	}
	if _, err := runAdmin(t, "", "rotate", "--config", cfgPath, "--yes", "--root-key", rootKey("tuf-root.pem"), "tuf-root"); err == nil || !strings.Contains(err.Error(), "not a root key") {
		t.Fatalf("the retired TUF root key rotated again: %v", err)
	}
}

// A production server that starts with a log key other than its tree's
// refuses, saying how to rotate on purpose; admin rotate records the
// rotation, and the next start carries it out (the old tree frozen and
// still served, a new tree for the new key).
func TestKeyAndChainChangesNeedAdminRotate(t *testing.T) {
	t.Setenv(passwordEnv, "ceremony-password")
	dir := filepath.Join(t.TempDir(), "etc")
	if out, err := runAdmin(t, "", "init", "--dir", dir, "--yes"); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	cfgPath := filepath.Join(dir, "signet.yaml")
	t.Setenv("DATABASE_URL", dbtest.NewURL(t))
	start := func() (*server.Server, error) {
		cfg, err := config.Load(cfgPath, os.Getenv)
		if err != nil {
			t.Fatal(err)
		}
		cfg.CA.Issuers = []identity.IssuerConfig{{URL: "https://issuer.example.com", Type: identity.TypeEmail}}
		cfg.PublicURL = "http://127.0.0.1:1"
		return server.New(context.Background(), cfg, server.Options{Logger: slog.New(slog.DiscardHandler), Getenv: os.Getenv})
	}
	srv, err := start()
	if err != nil {
		t.Fatal(err)
	}
	firstTree := srv.Log().TreeID()
	srv.Close(context.Background())

	// Another key in log.pem's place: refused, with the command to use.
	logPEM := filepath.Join(dir, "log.pem")
	orig, _ := os.ReadFile(logPEM)
	os.Remove(logPEM) //nolint:errcheck
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err := keys.WriteFile(logPEM, other, []byte("ceremony-password")); err != nil {
		t.Fatal(err)
	}
	if _, err := start(); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("is not the key tree %d of log rekor was created with", firstTree)) ||
		!strings.Contains(err.Error(), "signet-server admin rotate --config FILE log") {
		t.Fatalf("a changed key without admin rotate: %v", err)
	}
	os.WriteFile(logPEM, orig, 0o600) //nolint:errcheck
	if srv, err = start(); err != nil || srv.Log().TreeID() != firstTree {
		t.Fatalf("the original key again: %v", err)
	}
	srv.Close(context.Background())

	conn, err := pgx.Connect(context.Background(), os.Getenv("DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	openRequests := func() int {
		t.Helper()
		var n int
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM signet_rotation_requests WHERE done_at IS NULL").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Asked twice: only the second key may rotate the log.
	if out, err := runAdmin(t, "", "rotate", "--config", cfgPath, "--yes", "log"); err != nil || !strings.Contains(out, "records the rotation") {
		t.Fatalf("rotate log: %v\n%s", err, out)
	}
	given, _ := config.Load(cfgPath, func(string) string { return "" })
	givenUp := given.Log.Signer
	if out, err := runAdmin(t, "", "rotate", "--config", cfgPath, "--yes", "log"); err != nil {
		t.Fatalf("rotate log again: %v\n%s", err, out)
	}
	if n := openRequests(); n != 1 {
		t.Fatalf("%d rotation requests open after asking twice, want 1", n)
	}
	srv, err = start()
	if err != nil {
		t.Fatalf("the start after admin rotate: %v", err)
	}
	if srv.Log().TreeID() == firstTree || len(srv.Log().Retired()) != 1 || srv.Log().Retired()[0].TreeID() != firstTree {
		t.Fatalf("after the rotation: tree %d, retired %d trees", srv.Log().TreeID(), len(srv.Log().Retired()))
	}
	srv.Close(context.Background())
	if n := openRequests(); n != 0 {
		t.Fatalf("%d rotation requests still open after the rotation", n)
	}
	// Asked for, then withdrawn: refused at the start.
	current, _ := config.Load(cfgPath, func(string) string { return "" })
	if out, err := runAdmin(t, "", "rotate", "--config", cfgPath, "--yes", "log"); err != nil {
		t.Fatalf("rotate log: %v\n%s", err, out)
	}
	if out, err := runAdmin(t, "", "rotate", "--config", cfgPath, "--cancel", "log"); err != nil || !strings.Contains(out, "Withdrew the log rotation") || openRequests() != 0 {
		t.Fatalf("rotate --cancel log: %v\n%s", err, out)
	}
	if _, err := start(); err == nil || !strings.Contains(err.Error(), "admin rotate --config FILE log") {
		t.Fatalf("a start with a withdrawn rotation: %v", err)
	}
	if err := setConfigValues(cfgPath, "log", map[string]string{"signer": current.Log.Signer}); err != nil {
		t.Fatal(err)
	}
	// The key given up, brought back by a stray variable: refused.
	t.Setenv("SIGNET_LOG_SIGNER", givenUp)
	if _, err := start(); err == nil || !strings.Contains(err.Error(), "admin rotate --config FILE log") {
		t.Fatalf("a start with the key asked for and given up: %v", err)
	}
	// ... and rotate refuses to rewrite a setting the environment overrides.
	if _, err := runAdmin(t, "", "rotate", "--config", cfgPath, "--yes", "log"); err == nil || !strings.Contains(err.Error(), "SIGNET_LOG_SIGNER set in the environment overrides the file") {
		t.Fatalf("rotate log under SIGNET_LOG_SIGNER: %v", err)
	}
	t.Setenv("SIGNET_LOG_SIGNER", "")
	// A key made elsewhere (openssl, an HSM's tools): --key records it.
	mine := filepath.Join(t.TempDir(), "mine.pem")
	if out, err := exec.Command("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-aes-256-cbc", "-pass", "pass:ceremony-password", "-out", mine).CombinedOutput(); err != nil {
		t.Fatalf("openssl genpkey: %v\n%s", err, out)
	}
	mineURI := keys.FileURI(mine, keys.PasswordSource{Env: passwordEnv})
	if out, err := runAdmin(t, "", "rotate", "--config", cfgPath, "--yes", "--key", mineURI, "log"); err != nil || !strings.Contains(out, "takes the transparency log key") {
		t.Fatalf("rotate --key: %v\n%s", err, out)
	}
	if srv, err = start(); err != nil || len(srv.Log().Retired()) != 2 {
		t.Fatalf("the start with the key given by --key: %v", err)
	}
	srv.Close(context.Background())

	// Chains: admin rotate records the new one, which the next start takes
	// (the old one kept in the trusted root); a chain nobody asked for is
	// refused, naming the commands.
	rootKey := func(name string) string {
		return keys.FileURI(filepath.Join(dir, name), keys.PasswordSource{Env: passwordEnv})
	}
	if out, err := runAdmin(t, "", "rotate", "--config", cfgPath, "--yes", "--root-key", rootKey("ca-root.pem"), "ca"); err != nil {
		t.Fatalf("rotate ca: %v\n%s", err, out)
	}
	if srv, err = start(); err != nil {
		t.Fatalf("the start after admin rotate ca: %v", err)
	}
	srv.Close(context.Background())
	if out, err := runAdmin(t, "", "rotate", "--config", cfgPath, "--yes", "--root-key", rootKey("tsa-root.pem"), "tsa"); err != nil {
		t.Fatalf("rotate tsa: %v\n%s", err, out)
	}
	if _, err := conn.Exec(context.Background(), "DELETE FROM signet_rotation_requests WHERE what = 'tsa-chain'"); err != nil {
		t.Fatal(err)
	}
	if _, err := start(); err == nil || !strings.Contains(err.Error(), "the configured tsa chain") || !strings.Contains(err.Error(), "admin rotate --config FILE --root-key URI tsa") {
		t.Fatalf("a TSA chain not asked for: %v", err)
	}
}

// The Rekor v2 log's key changes on purpose only: a start with another key
// is refused naming admin rotate log-v2, which records the rotation and
// points log.v2.signer at a new key; the next start freezes the old tree
// and opens a new one.
func TestAdminRotateLogV2(t *testing.T) {
	t.Setenv(passwordEnv, "ceremony-password")
	dir := filepath.Join(t.TempDir(), "etc")
	if out, err := runAdmin(t, "", "init", "--dir", dir, "--yes"); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	cfgPath := filepath.Join(dir, "signet.yaml")
	v2Key := filepath.Join(dir, "log-v2.pem")
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err := keys.WriteFile(v2Key, k, []byte("ceremony-password")); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(cfgPath)
	withV2 := strings.Replace(string(raw), "log:\n", "log:\n  v2:\n    enabled: true\n    signer: \""+keys.FileURI(v2Key, keys.PasswordSource{Env: passwordEnv})+"\"\n", 1)
	if withV2 == string(raw) {
		t.Fatalf("no log: section in\n%s", raw)
	}
	os.WriteFile(cfgPath, []byte(withV2), 0o600) //nolint:errcheck
	t.Setenv("DATABASE_URL", dbtest.NewURL(t))
	start := func() (*server.Server, error) {
		cfg, err := config.Load(cfgPath, os.Getenv)
		if err != nil {
			t.Fatal(err)
		}
		cfg.CA.Issuers = []identity.IssuerConfig{{URL: "https://issuer.example.com", Type: identity.TypeEmail}}
		cfg.PublicURL = "http://127.0.0.1:1"
		return server.New(context.Background(), cfg, server.Options{Logger: slog.New(slog.DiscardHandler), Getenv: os.Getenv})
	}
	srv, err := start()
	if err != nil {
		t.Fatal(err)
	}
	first := srv.LogV2().TreeID()
	srv.Close(context.Background())

	orig, _ := os.ReadFile(v2Key)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	os.Remove(v2Key) //nolint:errcheck
	if err := keys.WriteFile(v2Key, other, []byte("ceremony-password")); err != nil {
		t.Fatal(err)
	}
	if _, err := start(); err == nil || !strings.Contains(err.Error(), "admin rotate --config FILE log-v2") || !strings.Contains(err.Error(), "log.v2.signer") {
		t.Fatalf("a changed v2 key without admin rotate: %v", err)
	}
	os.WriteFile(v2Key, orig, 0o600) //nolint:errcheck

	if out, err := runAdmin(t, "", "rotate", "--config", cfgPath, "--yes", "log-v2"); err != nil || !strings.Contains(out, "Rekor v2 log") {
		t.Fatalf("rotate log-v2: %v\n%s", err, out)
	}
	rotated, _ := config.Load(cfgPath, func(string) string { return "" })
	if rotated.Log.V2.Signer == keys.FileURI(v2Key, keys.PasswordSource{Env: passwordEnv}) || !rotated.Log.V2.Enabled {
		t.Fatalf("log.v2 after rotate: %+v", rotated.Log.V2)
	}
	srv, err = start()
	if err != nil {
		t.Fatalf("the start after admin rotate log-v2: %v", err)
	}
	defer srv.Close(context.Background())
	if srv.LogV2().TreeID() == first || len(srv.LogV2().Retired()) != 1 || srv.LogV2().Retired()[0].TreeID() != first {
		t.Fatalf("after the rotation: tree %d, retired %d", srv.LogV2().TreeID(), len(srv.LogV2().Retired()))
	}
}
