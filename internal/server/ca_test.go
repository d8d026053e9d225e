package server_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"

	"github.com/signet-dev/signet/ca/devoidc"
	"github.com/signet-dev/signet/ca/identity"
	"github.com/signet-dev/signet/client"
	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/internal/keys"
	"github.com/signet-dev/signet/internal/keys/softhsmtest"
	"github.com/signet-dev/signet/internal/pkigen"
	"github.com/signet-dev/signet/internal/server"
)

// startDev runs the server in dev mode (generated CA, dev OIDC issuer) on
// this test's database, with its public URL known before it starts.
func (f fixture) startDev(t *testing.T, mutate ...func(*config.Config)) *instance {
	t.Helper()
	return f.startDevLogging(t, io.Discard, mutate...)
}

// startDevLogging is startDev with the server's log lines written to logs.
func (f fixture) startDevLogging(t *testing.T, logs io.Writer, mutate ...func(*config.Config)) *instance {
	t.Helper()
	hs := httptest.NewUnstartedServer(nil)
	cfg := config.Defaults()
	cfg.Hostname = testHostname
	cfg.Database.URL = f.dbURL
	cfg.DataDir = t.TempDir()
	cfg.PublicURL = "http://" + hs.Listener.Addr().String()
	for _, m := range mutate {
		m(&cfg)
	}
	srv, err := server.New(context.Background(), cfg, server.Options{Dev: true, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatalf("starting dev server: %v", err)
	}
	hs.Config.Handler = srv.Handler()
	hs.Start()
	inst := &instance{t: t, srv: srv, http: hs, dbURL: f.dbURL}
	t.Cleanup(inst.stop)
	pub, err := client.ParsePublicKeyPEM(inst.get("/api/v1/log/publicKey", http.StatusOK))
	if err != nil {
		t.Fatal(err)
	}
	inst.pub = pub
	inst.client = client.NewLog(hs.URL, client.WithLogPublicKey(pub))
	return inst
}

func (i *instance) devToken(query string) string {
	i.t.Helper()
	var out struct {
		IDToken string `json:"id_token"`
	}
	if err := json.Unmarshal(i.get("/dev/oidc/token?"+query, http.StatusOK), &out); err != nil || out.IDToken == "" {
		i.t.Fatalf("dev token: %v", err)
	}
	return out.IDToken
}

func extensionValue(c *x509.Certificate, oid asn1.ObjectIdentifier) ([]byte, bool) {
	for _, e := range c.Extensions {
		if e.Id.Equal(oid) {
			return e.Value, true
		}
	}
	return nil, false
}

func utf8Ext(t *testing.T, c *x509.Certificate, oid asn1.ObjectIdentifier) string {
	t.Helper()
	v, ok := extensionValue(c, oid)
	if !ok {
		t.Fatalf("certificate lacks extension %v", oid)
	}
	var s string
	rest, err := asn1.Unmarshal(v, &s)
	if err != nil || len(rest) != 0 || v[0] != 0x0c {
		t.Fatalf("extension %v is not a DER UTF8String: %x", oid, v)
	}
	return s
}

func TestKeylessCertificateProfileAndZlint(t *testing.T) {
	inst := newFixture(t).startDev(t)
	ctx := context.Background()
	token := inst.devToken("email=alice@example.com")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	chain, err := client.NewCA(inst.http.URL).SigningCertificate(ctx, token, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(chain) != 3 {
		t.Fatalf("chain has %d certificates, want leaf, intermediate, root", len(chain))
	}
	leaf := chain[0]
	roots := x509.NewCertPool()
	roots.AddCert(chain[2])
	inters := x509.NewCertPool()
	inters.AddCert(chain[1])
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}, CurrentTime: leaf.NotBefore}); err != nil {
		t.Fatalf("leaf does not chain to the root with codeSigning: %v", err)
	}
	issuer := inst.srv.DevIssuer().URL()
	if len(leaf.Subject.Names) != 0 || len(leaf.EmailAddresses) != 1 || leaf.EmailAddresses[0] != "alice@example.com" {
		t.Fatalf("subject %v, emails %v", leaf.Subject, leaf.EmailAddresses)
	}
	for _, e := range leaf.Extensions {
		if e.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 17}) && !e.Critical {
			t.Fatal("SAN is not critical with an empty subject")
		}
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature || len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageCodeSigning {
		t.Fatalf("KU %v EKU %v", leaf.KeyUsage, leaf.ExtKeyUsage)
	}
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d != 10*time.Minute {
		t.Fatalf("validity %s, want 10m", d)
	}
	if len(leaf.SubjectKeyId) == 0 || !bytes.Equal(leaf.AuthorityKeyId, chain[1].SubjectKeyId) {
		t.Fatal("SKID missing or AKID does not name the intermediate")
	}
	if raw, _ := extensionValue(leaf, identity.OIDIssuer); string(raw) != issuer {
		t.Fatalf("1.1 issuer %q, want raw %q", raw, issuer)
	}
	if got := utf8Ext(t, leaf, identity.OIDIssuerV2); got != issuer {
		t.Fatalf("1.8 issuer %q", got)
	}
	if got := utf8Ext(t, leaf, identity.OIDTokenSubject); got != "alice@example.com" {
		t.Fatalf("1.24 subject %q", got)
	}
	zleaf, err := zx509.ParseCertificate(leaf.Raw)
	if err != nil {
		t.Fatal(err)
	}
	res := zlint.LintCertificate(zleaf)
	if len(res.Results) < 100 {
		t.Fatalf("zlint ran only %d lints", len(res.Results))
	}
	for name, r := range res.Results {
		if r.Status == lint.Error || r.Status == lint.Fatal {
			t.Errorf("zlint %s: %v %s", name, r.Status, r.Details)
		}
	}
	// The audit record is written asynchronously; it must appear.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var identityCol, iss string
		err := inst.srvPool(t).QueryRow(ctx, "SELECT identity, issuer FROM ca_certificates WHERE serial = $1", hex.EncodeToString(leaf.SerialNumber.Bytes())).Scan(&identityCol, &iss)
		if err == nil {
			if identityCol != "alice@example.com" || iss != issuer {
				t.Fatalf("audit row %q %q", identityCol, iss)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audit record for the certificate: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A keyless signature end to end: dev token -> our certificate with an SCT
// embedded by our CT log -> our log entry -> sigstore-go verifies the bundle
// with the certificate identity and the SCT (threshold 1).
func TestSigstoreGoVerifiesKeylessBundle(t *testing.T) {
	inst := newFixture(t).startDev(t)
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	chain, err := client.NewCA(inst.http.URL).SigningCertificate(ctx, inst.devToken("email=bob@example.com"), key)
	if err != nil {
		t.Fatal(err)
	}
	leafPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: chain[0].Raw})
	artifact := []byte("keyless artifact")
	digest := sha256.Sum256(artifact)
	sig, _ := ecdsa.SignASN1(rand.Reader, key, digest[:])
	proposal, _ := client.HashedRekord("sha256", digest[:], sig, leafPEM)
	entry, err := inst.client.Upload(ctx, proposal)
	if err != nil {
		t.Fatal(err)
	}
	vm := sigstoreEntry(t, entry)
	vm.Content = &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: chain[0].Raw}}
	pb := &protobundle.Bundle{
		MediaType:            "application/vnd.dev.sigstore.bundle.v0.3+json",
		VerificationMaterial: vm,
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: digest[:]},
			Signature:     sig,
		}},
	}
	logID, _ := hex.DecodeString(entry.LogID)
	ctID := inst.srv.CTLog().LogID()
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01,
		[]root.CertificateAuthority{&root.FulcioCertificateAuthority{
			Root: chain[2], Intermediates: []*x509.Certificate{chain[1]},
			ValidityPeriodStart: time.Now().Add(-time.Hour), URI: inst.http.URL,
		}},
		map[string]*root.TransparencyLog{hex.EncodeToString(ctID[:]): {
			BaseURL: inst.http.URL, ID: ctID[:], ValidityPeriodStart: time.Now().Add(-time.Hour),
			HashFunc: crypto.SHA256, PublicKey: inst.srv.CTLog().PublicKey(), SignatureHashFunc: crypto.SHA256,
		}},
		nil,
		map[string]*root.TransparencyLog{entry.LogID: {
			BaseURL: inst.http.URL, ID: logID, ValidityPeriodStart: time.Now().Add(-time.Hour),
			HashFunc: crypto.SHA256, PublicKey: inst.pub, SignatureHashFunc: crypto.SHA256,
		}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundle.NewBundle(pb)
	if err != nil {
		t.Fatal(err)
	}
	// SCT threshold 1: the embedded SCT must verify against our CT log key.
	v, err := verify.NewVerifier(tr, verify.WithTransparencyLog(1), verify.WithIntegratedTimestamps(1), verify.WithSignedCertificateTimestamps(1))
	if err != nil {
		t.Fatal(err)
	}
	id, err := verify.NewShortCertificateIdentity(inst.srv.DevIssuer().URL(), "", "bob@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.Verify(b, verify.NewPolicy(verify.WithArtifact(bytes.NewReader(artifact)), verify.WithCertificateIdentity(id)))
	if err != nil {
		t.Fatalf("sigstore-go rejects our keyless bundle: %v", err)
	}
	if res.Signature == nil || res.Signature.Certificate == nil || res.Signature.Certificate.SubjectAlternativeName != "bob@example.com" {
		t.Fatalf("verification result %+v", res.Signature)
	}
	wrong, _ := verify.NewShortCertificateIdentity(inst.srv.DevIssuer().URL(), "", "mallory@example.com", "")
	if _, err := v.Verify(b, verify.NewPolicy(verify.WithArtifact(bytes.NewReader(artifact)), verify.WithCertificateIdentity(wrong))); err == nil {
		t.Fatal("sigstore-go accepted the bundle for another identity")
	}
}

// Every key type clients use gets a certificate, through both request forms.
func TestCertificateForEveryKeyTypeAndCSR(t *testing.T) {
	inst := newFixture(t).startDev(t)
	ctx := context.Background()
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	for name, k := range map[string]crypto.Signer{"P-384": p384, "P-521": p521, "RSA-2048": rsaKey, "Ed25519": edKey} {
		t.Run(name, func(t *testing.T) {
			chain, err := client.NewCA(inst.http.URL).SigningCertificate(ctx, inst.devToken("sub=ci-bot"), k)
			if err != nil {
				t.Fatal(err)
			}
			if len(chain[0].URIs) != 1 || chain[0].URIs[0].String() != inst.srv.DevIssuer().URL()+"/ci-bot" {
				t.Fatalf("URI SAN %v", chain[0].URIs)
			}
		})
	}
	csrDER, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ignored"}}, p384)
	csrPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER})
	body, _ := json.Marshal(map[string]any{"certificateSigningRequest": csrPEM})
	resp, data := inst.doAuth("/api/v2/signingCert", inst.devToken("email=carol@example.com"), body, http.StatusOK)
	_ = resp
	var out struct {
		Embedded struct {
			Chain struct{ Certificates []string }
		} `json:"signedCertificateEmbeddedSct"`
	}
	if err := json.Unmarshal(data, &out); err != nil || len(out.Embedded.Chain.Certificates) != 3 {
		t.Fatalf("CSR answer %s (%v)", data, err)
	}
	block, _ := pem.Decode([]byte(out.Embedded.Chain.Certificates[0]))
	leaf, _ := x509.ParseCertificate(block.Bytes)
	if !leaf.PublicKey.(*ecdsa.PublicKey).Equal(p384.Public()) || leaf.Subject.CommonName != "" {
		t.Fatal("CSR certificate has the wrong key or kept the CSR's subject")
	}
}

func TestSigningCertificateRejections(t *testing.T) {
	inst := newFixture(t).startDev(t, func(c *config.Config) { c.CA.MaxRequestBytes = 8 << 10 })
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	pubPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	token := inst.devToken("email=dave@example.com")
	proofOver := func(s string) []byte {
		p, _ := client.SignChallenge(key, s)
		return p
	}
	req := func(pub string, proof []byte) []byte {
		b, _ := json.Marshal(map[string]any{"publicKeyRequest": map[string]any{"publicKey": map[string]any{"algorithm": "RSA", "content": pub}, "proofOfPossession": proof}})
		return b
	}
	parts := strings.Split(token, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString(bytes.Replace(payload, []byte("dave@"), []byte("eve@@"), 1)) + "." + parts[2]
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	weakDER, _ := x509.MarshalPKIXPublicKey(rsa1024.Public())
	tests := []struct {
		name   string
		token  string
		body   []byte
		status int
		want   string
	}{
		{"ok with algorithm RSA ignored", token, req(pubPEM, proofOver("dave@example.com")), 200, ""},
		{"no token", "", req(pubPEM, proofOver("dave@example.com")), 401, "no identity token"},
		{"not a JWT", "abc", req(pubPEM, proofOver("x")), 401, "not a JWT"},
		{"forged claims", forged, req(pubPEM, proofOver("dave@example.com")), 401, "signature does not verify"},
		{"proof over sub not email", token, req(pubPEM, proofOver("someone-else")), 400, `proof of possession does not verify for subject "dave@example.com"`},
		{"garbage key", token, req("not a key", proofOver("dave@example.com")), 400, "could not be parsed"},
		{"weak RSA key", token, req(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: weakDER})), []byte{1}), 400, "1024 bits is not allowed"},
		{"no key", token, []byte(`{}`), 400, "the request has no key"},
		{"bad JSON", token, []byte(`{`), 400, "not a CreateSigningCertificateRequest"},
		{"oversized", token, bytes.Repeat([]byte(" "), 9<<10), 413, "larger than 8192"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, data := inst.doAuth("/api/v2/signingCert", tt.token, tt.body, tt.status)
			if tt.want == "" {
				return
			}
			var e struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
				Details []any  `json:"details"`
			}
			if err := json.Unmarshal(data, &e); err != nil || !strings.Contains(e.Message, tt.want) || e.Details == nil {
				t.Fatalf("error body %s, want message containing %q and details", data, tt.want)
			}
		})
	}
}

func TestTrustBundleConfigurationAndRootCert(t *testing.T) {
	inst := newFixture(t).startDev(t)
	var tb struct {
		Chains []struct{ Certificates []string } `json:"chains"`
	}
	json.Unmarshal(inst.get("/api/v2/trustBundle", http.StatusOK), &tb) //nolint:errcheck
	if len(tb.Chains) != 1 || len(tb.Chains[0].Certificates) != 2 {
		t.Fatalf("trust bundle %+v", tb)
	}
	var cfg struct {
		Issuers []map[string]any `json:"issuers"`
	}
	json.Unmarshal(inst.get("/api/v2/configuration", http.StatusOK), &cfg) //nolint:errcheck
	if len(cfg.Issuers) != 1 || cfg.Issuers[0]["issuerUrl"] != inst.srv.DevIssuer().URL() || cfg.Issuers[0]["audience"] != "sigstore" {
		t.Fatalf("configuration %+v", cfg)
	}
	rootPEM := inst.get("/api/v1/rootCert", http.StatusOK)
	if n := strings.Count(string(rootPEM), "BEGIN CERTIFICATE"); n != 2 {
		t.Fatalf("rootCert has %d certificates", n)
	}
	// Legacy v1: 201 with the PEM chain.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	proof, _ := client.SignChallenge(key, "erin@example.com")
	body, _ := json.Marshal(map[string]any{"publicKey": map[string]any{"content": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), "algorithm": "ecdsa"}, "signedEmailAddress": proof})
	resp, data := inst.doAuth("/api/v1/signingCert", inst.devToken("email=erin@example.com"), body, http.StatusCreated)
	if resp.Header.Get("Content-Type") != "application/pem-certificate-chain" || strings.Count(string(data), "BEGIN CERTIFICATE") != 3 {
		t.Fatalf("legacy answer %s %s", resp.Header.Get("Content-Type"), data)
	}
}

// The CA's issuing key lives in a PKCS#11 token (SoftHSM2); the chain comes
// from a PEM file; the server runs in production mode.
func TestCAWithPKCS11Signer(t *testing.T) {
	tk := softhsmtest.Setup(t)
	uri := tk.URI("ca-intermediate")
	hsmKey, err := keys.GeneratePKCS11Key(uri, elliptic.P256(), keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	caChain := testCAChain(t, hsmKey.Public())
	rootDER := caChain[1].Raw
	chainPath := writeCerts(t, caChain...)

	chain, inst, idp := issueWithCAKey(t, uri, chainPath, "hsm@example.com")
	if err := chain[0].CheckSignatureFrom(chain[1]); err != nil || !chain[1].PublicKey.(*ecdsa.PublicKey).Equal(hsmKey.Public()) {
		t.Fatalf("leaf not signed by the HSM key: %v", err)
	}
	// A chain that does not belong to the token's key stops start-up (of
	// the next server: one writes to a database at a time).
	inst.stop()
	otherChain := filepath.Join(t.TempDir(), "other.pem")
	os.WriteFile(otherChain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER}), 0o644) //nolint:errcheck
	cfg := config.Defaults()
	cfg.Hostname = testHostname
	cfg.Database.URL = inst.dbURL
	cfg.Components.Log = new(bool)
	cfg.CA.Signer, cfg.CA.Chain = uri, otherChain
	cfg.CA.Issuers = []identity.IssuerConfig{{URL: idp.url, Type: identity.TypeEmail}}
	cfg.CA.CT = "none"
	if _, err := startErr(cfg); err == nil || !strings.Contains(err.Error(), "does not match the issuing certificate") {
		t.Fatalf("mismatched chain: %v", err)
	}
}

// idpServer is an OIDC issuer over real HTTP (the dev issuer's code, served
// by httptest), so the CA goes through discovery and JWKS.
type idpServer struct {
	url    string
	issuer *devoidc.Issuer
}

func newDevIssuerServer(t *testing.T) *idpServer {
	t.Helper()
	hs := httptest.NewUnstartedServer(nil)
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	iss, err := devoidc.New("http://"+hs.Listener.Addr().String()+devoidc.Path, key)
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	iss.Routes(r)
	hs.Config.Handler = r
	hs.Start()
	t.Cleanup(hs.Close)
	return &idpServer{url: iss.URL(), issuer: iss}
}

func (s *idpServer) token(t *testing.T, email string) string {
	t.Helper()
	tok, err := s.issuer.Token(email, "")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// caIntermediateKey reads the dev CA's issuing key from the data directory.
func (i *instance) caIntermediateKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	s, err := keys.Open(keys.FileURI(filepath.Join(i.srv.DataDir(), "keys", "ca.pem"), keys.PasswordSource{}), keys.Options{Dev: true})
	if err != nil {
		t.Fatal(err)
	}
	return s.(*ecdsa.PrivateKey)
}

// The issuing certificate can live in the token beside its key; the chain
// file then holds only what is above it.
func TestCAWithIssuingCertificateInToken(t *testing.T) {
	tk := softhsmtest.Setup(t)
	uri := tk.URI("ca-with-cert")
	hsmKey, err := keys.GeneratePKCS11Key(uri, elliptic.P256(), keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	caChain := testCAChain(t, hsmKey.Public())
	inter, root := caChain[0], caChain[1]
	if err := keys.ImportCertificate(uri, inter, keys.Options{}); err != nil {
		t.Fatal(err)
	}
	rootPath := writeCerts(t, root)
	chain, _, _ := issueWithCAKey(t, uri, rootPath, "token@example.com")
	if len(chain) != 3 || !chain[1].Equal(inter) || !chain[2].Equal(root) {
		t.Fatalf("chain has %d certificates; want leaf, the token's intermediate, the root", len(chain))
	}
}

// testCAChain makes [intermediate for pub, root] with a throwaway root key.
func testCAChain(t *testing.T, pub crypto.PublicKey) []*x509.Certificate {
	t.Helper()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	chain, err := pkigen.CAChain(pkigen.Names{Organization: "signet test", Prefix: "signet test"}, rootKey, pub)
	if err != nil {
		t.Fatal(err)
	}
	return chain
}

// writeCerts writes certificates to a PEM file and returns its path.
func writeCerts(t *testing.T, certs ...*x509.Certificate) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "certs.pem")
	if err := os.WriteFile(path, pkigen.PEM(certs), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// issueWithCAKey starts a CA with the signer URI and chain file (no CT),
// trusting an OIDC issuer it discovers over HTTP as in production, and
// returns the chain issued for a fresh key and a token for email, with the
// instance and the issuer.
func issueWithCAKey(t *testing.T, signerURI, chainPath, email string) ([]*x509.Certificate, *instance, *idpServer) {
	t.Helper()
	idp := newDevIssuerServer(t)
	inst := newFixture(t).start(t, func(c *config.Config) {
		c.CA.Signer = signerURI
		c.CA.Chain = chainPath
		c.CA.Issuers = []identity.IssuerConfig{{URL: idp.url, Type: identity.TypeEmail}}
		c.CA.CT = "none"
	})
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	chain, err := client.NewCA(inst.http.URL).SigningCertificate(context.Background(), idp.token(t, email), key)
	if err != nil {
		t.Fatal(err)
	}
	return chain, inst, idp
}
