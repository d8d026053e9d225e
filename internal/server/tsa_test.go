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
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/signet-dev/signet/client"
	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/timestamp"
)

func (i *instance) tsaChain() []*x509.Certificate {
	i.t.Helper()
	chain, err := cryptoutils.UnmarshalCertificatesFromPEM(i.get("/api/v1/timestamp/certchain", http.StatusOK))
	if err != nil {
		i.t.Fatal(err)
	}
	return chain
}

func TestTimestampOverHTTP(t *testing.T) {
	inst := newFixture(t).startDev(t)
	ctx := context.Background()
	chain := inst.tsaChain()
	if len(chain) != 2 || chain[0].IsCA || !chain[1].IsCA {
		t.Fatalf("certchain: %d certificates, want leaf then root", len(chain))
	}
	artifact := []byte("stamp this")
	digest := sha256.Sum256(artifact)
	tsa := client.NewTSA(inst.http.URL + "/api/v1/timestamp")
	for _, opts := range []client.TimestampRequest{
		{Hash: crypto.SHA256, Digest: digest[:], Nonce: true, CertReq: true},
		{Hash: crypto.SHA256, Digest: digest[:]},
	} {
		st, err := tsa.Timestamp(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		when, err := client.VerifyTimestamp(st.Response, bytes.NewReader(artifact), chain, st.Nonce)
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(when); d < -2*time.Second || d > time.Minute {
			t.Fatalf("genTime %s is not now", when)
		}
		if _, err := client.VerifyTimestamp(st.Response, bytes.NewReader([]byte("other")), chain, st.Nonce); err == nil {
			t.Fatal("timestamp verified for another artifact")
		}
	}
	// openssl verifies a reply fetched over HTTP against the served chain.
	if _, err := exec.LookPath("openssl"); err == nil {
		dir := t.TempDir()
		data := filepath.Join(dir, "a")
		os.WriteFile(data, artifact, 0o644) //nolint:errcheck
		q, r := filepath.Join(dir, "q.tsq"), filepath.Join(dir, "r.tsr")
		if out, err := exec.Command("openssl", "ts", "-query", "-data", data, "-sha384", "-cert", "-out", q).CombinedOutput(); err != nil {
			t.Fatalf("%v %s", err, out)
		}
		query, _ := os.ReadFile(q)
		resp, body := inst.doRaw(http.MethodPost, "/api/v1/timestamp", "application/timestamp-query", query, http.StatusOK)
		if resp.Header.Get("Content-Type") != "application/timestamp-reply" {
			t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
		}
		os.WriteFile(r, body, 0o644) //nolint:errcheck
		rootPEM := filepath.Join(dir, "root.pem")
		os.WriteFile(rootPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: chain[1].Raw}), 0o644) //nolint:errcheck
		if out, err := exec.Command("openssl", "ts", "-verify", "-queryfile", q, "-in", r, "-CAfile", rootPEM).CombinedOutput(); err != nil || !strings.Contains(string(out), "Verification: OK") {
			t.Fatalf("openssl ts -verify: %v %s", err, out)
		}
	}
	// Every token is audited.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var n int
		inst.srvPool(t).QueryRow(ctx, "SELECT count(*) FROM tsa_timestamps WHERE imprint = $1 AND policy = '1.3.6.1.4.1.57264.2'", hex.EncodeToString(digest[:])).Scan(&n) //nolint:errcheck
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d audit rows for the sha256 timestamps, want 2", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestTimestampRejectionsOverHTTP(t *testing.T) {
	inst := newFixture(t).startDev(t)
	d := sha256.Sum256([]byte("x"))
	good, _ := timestamp.MarshalRequest(crypto.SHA256, d[:], nil, nil, false)
	short, _ := timestamp.MarshalRequest(crypto.SHA256, d[:10], nil, nil, false)
	policy, _ := timestamp.MarshalRequest(crypto.SHA256, d[:], asn1.ObjectIdentifier{1, 2, 3}, nil, false)
	for _, tt := range []struct {
		name, ctype string
		body        []byte
		status      int
		wantType    string
		want        string
		failBit     int
	}{
		{"DER ok", "application/timestamp-query", good, 200, "application/timestamp-reply", "", -1},
		{"JSON ok", "application/json", []byte(`{"artifactHash":"` + b64(d[:]) + `","hashAlgorithm":"sha256","nonce":1234,"certificates":true}`), 200, "application/timestamp-reply", "", -1},
		{"content type", "text/plain", good, 415, "application/json", "Content-Type", -1},
		{"truncated DER", "application/timestamp-query", good[:10], 400, "application/timestamp-reply", "not a DER TimeStampReq", int(timestamp.BadDataFormat)},
		{"wrong imprint length", "application/timestamp-query", short, 400, "application/timestamp-reply", "needs 32", int(timestamp.BadDataFormat)},
		{"unaccepted policy", "application/timestamp-query", policy, 400, "application/timestamp-reply", "policy 1.2.3 is not accepted", int(timestamp.UnacceptedPolicy)},
		{"oversized", "application/timestamp-query", bytes.Repeat([]byte{0}, 17<<10), 413, "application/json", "larger than", -1},
		{"JSON SHA-1", "application/json", []byte(`{"artifactHash":"AAAA","hashAlgorithm":"sha1"}`), 400, "application/json", "SHA-1", -1},
		{"JSON too big", "application/json", []byte(`{"x":"` + strings.Repeat("a", 2000) + `"}`), 413, "application/json", "larger than 1024", -1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := inst.doRaw(http.MethodPost, "/api/v1/timestamp", tt.ctype, tt.body, tt.status)
			if got := resp.Header.Get("Content-Type"); got != tt.wantType {
				t.Fatalf("content type %q, want %q", got, tt.wantType)
			}
			if tt.failBit >= 0 {
				var parsed struct {
					Status struct {
						Status       int
						StatusString []string `asn1:"optional,utf8"`
						FailInfo     asn1.BitString
					}
				}
				if _, err := asn1.Unmarshal(body, &parsed); err != nil || parsed.Status.Status != 2 || parsed.Status.FailInfo.At(tt.failBit) != 1 || !strings.Contains(parsed.Status.StatusString[0], tt.want) {
					t.Fatalf("rejection %+v (%v)", parsed, err)
				}
				return
			}
			if tt.want != "" && !strings.Contains(string(body), tt.want) {
				t.Fatalf("body %s lacks %q", body, tt.want)
			}
		})
	}
}

// timestampedBundle signs artifact keyless as email on inst: our CA
// certificate with its SCT, our log entry, a timestamp from our TSA
// (requested as sigstore-go does: no nonce, no certificate).
func timestampedBundle(t *testing.T, inst *instance, email string, artifact []byte) *bundle.Bundle {
	t.Helper()
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	chain, err := client.NewCA(inst.http.URL).SigningCertificate(ctx, inst.devToken("email="+email), key)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(artifact)
	sig, _ := ecdsa.SignASN1(rand.Reader, key, digest[:])
	sigDigest := sha256.Sum256(sig)
	st, err := client.NewTSA(inst.http.URL+"/api/v1/timestamp").Timestamp(ctx, client.TimestampRequest{Hash: crypto.SHA256, Digest: sigDigest[:]})
	if err != nil {
		t.Fatal(err)
	}
	proposal, _ := client.HashedRekord("sha256", digest[:], sig, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: chain[0].Raw}))
	entry, err := inst.client.Upload(ctx, proposal)
	if err != nil {
		t.Fatal(err)
	}
	vm := sigstoreEntry(t, entry)
	vm.Content = &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: chain[0].Raw}}
	vm.TimestampVerificationData = &protobundle.TimestampVerificationData{Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: st.Response}}}
	b, err := bundle.NewBundle(&protobundle.Bundle{
		MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json", VerificationMaterial: vm,
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: digest[:]}, Signature: sig,
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// verifyBundle runs sigstore-go with nothing but trustedRoot, requiring a
// TSA timestamp, a log entry and an SCT.
func verifyBundle(t *testing.T, trustedRoot []byte, b *bundle.Bundle, artifact []byte, issuer, email string) (*verify.VerificationResult, error) {
	t.Helper()
	tr, err := root.NewTrustedRootFromJSON(trustedRoot)
	if err != nil {
		t.Fatalf("sigstore-go cannot parse our trusted_root.json: %v", err)
	}
	v, err := verify.NewVerifier(tr, verify.WithSignedTimestamps(1), verify.WithTransparencyLog(1), verify.WithSignedCertificateTimestamps(1))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := verify.NewShortCertificateIdentity(issuer, "", email, "")
	return v.Verify(b, verify.NewPolicy(verify.WithArtifact(bytes.NewReader(artifact)), verify.WithCertificateIdentity(id)))
}

// withoutRetired drops the first (oldest, retired) item of each list of a
// trusted root, to show that what verifies needs it.
func withoutRetired(t *testing.T, trustedRoot []byte, lists ...string) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(trustedRoot, &doc); err != nil {
		t.Fatal(err)
	}
	for _, l := range lists {
		doc[l] = doc[l].([]any)[1:]
	}
	out, _ := json.Marshal(doc)
	return out
}

// sigstore-go verifies a keyless bundle end to end with nothing but the
// trusted_root.json we serve.
func TestSigstoreGoVerifiesTimestampedBundle(t *testing.T) {
	inst := newFixture(t).startDev(t)
	artifact := []byte("timestamped artifact")
	b := timestampedBundle(t, inst, "tess@example.com", artifact)
	res, err := verifyBundle(t, inst.get("/api/v1/trust/trusted_root.json", http.StatusOK), b, artifact, inst.srv.DevIssuer().URL(), "tess@example.com")
	if err != nil {
		t.Fatalf("sigstore-go rejects the timestamped bundle: %v", err)
	}
	if len(res.VerifiedTimestamps) != 1 || res.VerifiedTimestamps[0].Type != "TimestampAuthority" {
		t.Fatalf("verified timestamps %+v, want one from the TSA", res.VerifiedTimestamps)
	}
}

// Restarting with a new CA and TSA chain (memory: signers make new ones at
// every start) is a rotation: the trusted root then lists both chains, the
// old one's window closed, and bundles signed before and after verify.
func TestRotatedCAAndTSAKeepVerifying(t *testing.T) {
	f := newFixture(t)
	dataDir := t.TempDir()
	memory := func(c *config.Config) {
		c.CA.Signer, c.Timestamp.Signer, c.DataDir = "memory:", "memory:", dataDir
	}
	before := []byte("signed before the rotation")
	inst1 := f.startDev(t, memory)
	b1 := timestampedBundle(t, inst1, "before@example.com", before)
	issuer1 := inst1.srv.DevIssuer().URL()
	inst1.stop()

	inst2 := f.startDev(t, memory)
	after := []byte("signed after the rotation")
	b2 := timestampedBundle(t, inst2, "after@example.com", after)
	trJSON := inst2.get("/api/v1/trust/trusted_root.json", http.StatusOK)
	tr, err := root.NewTrustedRootFromJSON(trJSON)
	if err != nil {
		t.Fatal(err)
	}
	type window struct{ start, end time.Time }
	windows := map[string][]window{}
	for _, ca := range tr.FulcioCertificateAuthorities() {
		c := ca.(*root.FulcioCertificateAuthority)
		windows["CA"] = append(windows["CA"], window{c.ValidityPeriodStart, c.ValidityPeriodEnd})
	}
	for _, ta := range tr.TimestampingAuthorities() {
		c := ta.(*root.SigstoreTimestampingAuthority)
		windows["TSA"] = append(windows["TSA"], window{c.ValidityPeriodStart, c.ValidityPeriodEnd})
	}
	for what, list := range windows {
		if len(list) != 2 {
			t.Fatalf("after one rotation the trusted root has %d %ss, want 2", len(list), what)
		}
		old, cur := list[0], list[1]
		if old.end.IsZero() || !cur.end.IsZero() || !cur.start.After(old.start) {
			t.Errorf("%s windows: old %v-%v, current %v-%v", what, old.start, old.end, cur.start, cur.end)
		}
	}
	if _, err := verifyBundle(t, trJSON, b1, before, issuer1, "before@example.com"); err != nil {
		t.Fatalf("a bundle from before the rotation no longer verifies: %v", err)
	}
	if _, err := verifyBundle(t, trJSON, b2, after, inst2.srv.DevIssuer().URL(), "after@example.com"); err != nil {
		t.Fatalf("a bundle from after the rotation does not verify: %v", err)
	}
	// Without the retired chain the old bundle would not verify: the
	// history is what keeps it valid.
	trimmed := withoutRetired(t, inst2.get("/api/v1/trust/trusted_root.json", http.StatusOK), "certificateAuthorities", "timestampAuthorities")
	if _, err := verifyBundle(t, trimmed, b1, before, issuer1, "before@example.com"); err == nil {
		t.Fatal("the old bundle verified without the retired chains")
	}
}

// memory: signers in dev mode get a chain made at start.
func TestMemorySignersInDevMode(t *testing.T) {
	inst := newFixture(t).startDev(t, func(c *config.Config) {
		c.CA.Signer = "memory:"
		c.Timestamp.Signer = "memory:"
	})
	ctx := context.Background()
	chain := inst.tsaChain()
	d := sha256.Sum256([]byte("m"))
	st, err := client.NewTSA(inst.http.URL+"/api/v1/timestamp").Timestamp(ctx, client.TimestampRequest{Hash: crypto.SHA256, Digest: d[:], Nonce: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.VerifyTimestamp(st.Response, bytes.NewReader([]byte("m")), chain, st.Nonce); err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	certs, err := client.NewCA(inst.http.URL).SigningCertificate(ctx, inst.devToken("email=m@example.com"), key)
	if err != nil || len(certs) != 3 {
		t.Fatalf("memory CA: %v", err)
	}
	if _, err := os.Stat(filepath.Join(inst.srv.DataDir(), "keys", "tsa-chain.pem")); err == nil {
		t.Fatal("a memory: TSA wrote a chain to the data directory")
	}
}
