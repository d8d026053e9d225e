package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ct "github.com/google/certificate-transparency-go"
	ctclient "github.com/google/certificate-transparency-go/client"
	"github.com/google/certificate-transparency-go/jsonclient"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/signet-dev/signet/ca/identity"
	"github.com/signet-dev/signet/client"
	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/internal/keys"
	"github.com/signet-dev/signet/log/ctapi"
)

// certificate-transparency-go's own client talks to our CT log: STH
// signature, inclusion of every certificate the CA issued (built from the
// embedded SCT, as a monitor would), consistency, entries, roots.
func TestCTLogWithCertificateTransparencyGoClient(t *testing.T) {
	inst := newFixture(t).startDev(t)
	ctx := context.Background()
	pubDER, _ := x509.MarshalPKIXPublicKey(inst.srv.CTLog().PublicKey())
	lc, err := ctclient.New(inst.http.URL, http.DefaultClient, jsonclient.Options{PublicKeyDER: pubDER})
	if err != nil {
		t.Fatal(err)
	}
	var chains [][]*x509.Certificate
	for i := 0; i < 3; i++ {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		chain, err := client.NewCA(inst.http.URL).SigningCertificate(ctx, inst.devToken("email=ct@example.com"), key)
		if err != nil {
			t.Fatal(err)
		}
		chains = append(chains, chain)
	}
	// The SCT is a promise of inclusion within the maximum merge delay
	// (10 s): the entries must be in a signed tree head by then.
	issued := time.Now()
	var sth *ct.SignedTreeHead
	for {
		sth, err = lc.GetSTH(ctx) // verifies the STH signature
		if err != nil {
			t.Fatal(err)
		}
		if sth.TreeSize == 3 {
			break
		}
		if time.Since(issued) > ctapi.MaxMergeDelay {
			t.Fatalf("STH tree size %d %s after the SCTs, want 3 within the maximum merge delay", sth.TreeSize, time.Since(issued))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i, chain := range chains {
		leaf, err := ctx509.ParseCertificate(chain[0].Raw)
		if err != nil {
			t.Fatal(err)
		}
		issuer, _ := ctx509.ParseCertificate(chain[1].Raw)
		if len(leaf.SCTList.SCTList) != 1 {
			t.Fatalf("certificate %d embeds %d SCTs", i, len(leaf.SCTList.SCTList))
		}
		scts, err := parseEmbeddedSCTs(leaf)
		if err != nil {
			t.Fatal(err)
		}
		mtl, err := ct.MerkleTreeLeafForEmbeddedSCT([]*ctx509.Certificate{leaf, issuer}, scts[0].Timestamp)
		if err != nil {
			t.Fatal(err)
		}
		hash, _ := ct.LeafHashForLeaf(mtl)
		resp, err := lc.GetProofByHash(ctx, hash[:], sth.TreeSize)
		if err != nil {
			t.Fatalf("certificate %d not found in the CT log: %v", i, err)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(resp.LeafIndex), sth.TreeSize, hash[:], resp.AuditPath, sth.SHA256RootHash[:]); err != nil {
			t.Fatalf("inclusion of certificate %d: %v", i, err)
		}
		// The SCT's signature covers exactly that precertificate entry.
		v, _ := ct.NewSignatureVerifier(inst.srv.CTLog().PublicKey())
		if err := v.VerifySCTSignature(scts[0], ct.LogEntry{Leaf: *mtl}); err != nil {
			t.Fatalf("embedded SCT %d: %v", i, err)
		}
	}
	cons, err := lc.GetSTHConsistency(ctx, 1, sth.TreeSize)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := lc.GetEntries(ctx, 0, 2)
	if err != nil || len(entries) != 3 {
		t.Fatalf("get-entries: %d, %v", len(entries), err)
	}
	first, _ := ct.LeafHashForLeaf(&entries[0].Leaf)
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, 1, sth.TreeSize, cons, first[:], sth.SHA256RootHash[:]); err != nil {
		t.Fatalf("consistency 1 -> %d: %v", sth.TreeSize, err)
	}
	if entries[0].Leaf.TimestampedEntry.EntryType != ct.PrecertLogEntryType || entries[0].Precert == nil || len(entries[0].Chain) != 2 {
		t.Fatalf("entry 0 is not a precertificate with its chain: %+v", entries[0].Leaf.TimestampedEntry.EntryType)
	}
	eap, err := lc.GetEntryAndProof(ctx, 2, sth.TreeSize)
	if err != nil {
		t.Fatalf("get-entry-and-proof: %v", err)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, 2, sth.TreeSize, rfc6962.DefaultHasher.HashLeaf(eap.LeafInput), eap.AuditPath, sth.SHA256RootHash[:]); err != nil {
		t.Fatalf("get-entry-and-proof does not verify: %v", err)
	}
	roots, err := lc.GetAcceptedRoots(ctx)
	if err != nil || len(roots) != 1 || string(roots[0].Data) != string(chains[0][2].Raw) {
		t.Fatalf("get-roots: %d roots, %v", len(roots), err)
	}
	// A final certificate is accepted by add-chain, and its SCT verifies.
	final := []ct.ASN1Cert{{Data: chains[0][0].Raw}, {Data: chains[0][1].Raw}}
	sct, err := lc.AddChain(ctx, final)
	if err != nil {
		t.Fatal(err)
	}
	if err := lc.VerifySCTSignature(*sct, ct.X509LogEntryType, final); err != nil {
		t.Fatalf("add-chain SCT: %v", err)
	}
}

// Over HTTP, as a monitor or a CA that retries would: a chain posted again
// (one after another and many at once) to add-chain, and a precertificate
// to add-pre-chain, get the SCT of their first submission, every one of
// which verifies with certificate-transparency-go, and each adds one leaf.
func TestCTResubmittedChainsGetTheOriginalSCT(t *testing.T) {
	inst := newFixture(t).startDev(t)
	ctx := context.Background()
	pubDER, _ := x509.MarshalPKIXPublicKey(inst.srv.CTLog().PublicKey())
	lc, err := ctclient.New(inst.http.URL, http.DefaultClient, jsonclient.Options{PublicKeyDER: pubDER})
	if err != nil {
		t.Fatal(err)
	}
	verifier, _ := ct.NewSignatureVerifier(inst.srv.CTLog().PublicKey())
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	chain, err := client.NewCA(inst.http.URL).SigningCertificate(ctx, inst.devToken("email=dedup@example.com"), key)
	if err != nil {
		t.Fatal(err)
	}
	// The CA logged the certificate's precertificate: one leaf.
	conn := inst.srvPool(t)
	leaves := func() int {
		t.Helper()
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM LeafData d JOIN signet_logs l ON l.tree_id = d.TreeId WHERE l.name = 'ct'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	integrated := func(want uint64) {
		t.Helper()
		deadline := time.Now().Add(ctapi.MaxMergeDelay)
		for {
			sth, err := lc.GetSTH(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if sth.TreeSize == want {
				return
			}
			if sth.TreeSize > want || time.Now().After(deadline) {
				t.Fatalf("CT tree size %d, want %d", sth.TreeSize, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	integrated(1)

	precertT := &x509.Certificate{
		SerialNumber: big.NewInt(77), NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(10 * time.Minute),
		EmailAddresses: []string{"dedup@example.com"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier(ctx509.OIDExtensionCTPoison), Critical: true, Value: asn1.NullBytes}},
	}
	precertDER, err := x509.CreateCertificate(rand.Reader, precertT, chain[1], key.Public(), inst.caIntermediateKey(t))
	if err != nil {
		t.Fatal(err)
	}
	for i, tt := range []struct {
		name  string
		add   func(context.Context, []ct.ASN1Cert) (*ct.SignedCertificateTimestamp, error)
		etype ct.LogEntryType
		chain []ct.ASN1Cert
	}{
		{"add-chain", lc.AddChain, ct.X509LogEntryType, []ct.ASN1Cert{{Data: chain[0].Raw}, {Data: chain[1].Raw}}},
		{"add-pre-chain", lc.AddPreChain, ct.PrecertLogEntryType, []ct.ASN1Cert{{Data: precertDER}, {Data: chain[1].Raw}}},
	} {
		const sequential, concurrent = 3, 16
		scts := make([]*ct.SignedCertificateTimestamp, sequential+concurrent)
		errs := make([]error, len(scts))
		for j := range sequential {
			// A millisecond apart at least: without deduplication each
			// would be a leaf with a timestamp of its own.
			time.Sleep(2 * time.Millisecond)
			scts[j], errs[j] = tt.add(ctx, tt.chain)
		}
		var wg sync.WaitGroup
		for j := sequential; j < len(scts); j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				scts[j], errs[j] = tt.add(ctx, tt.chain)
			}()
		}
		wg.Wait()
		for j, sct := range scts {
			if errs[j] != nil {
				t.Fatalf("%s submission %d: %v", tt.name, j, errs[j])
			}
			mtl, err := ct.MerkleTreeLeafFromRawChain(tt.chain, tt.etype, sct.Timestamp)
			if err != nil {
				t.Fatal(err)
			}
			if err := verifier.VerifySCTSignature(*sct, ct.LogEntry{Leaf: *mtl}); err != nil {
				t.Fatalf("%s submission %d: SCT does not verify: %v", tt.name, j, err)
			}
			if sct.Timestamp != scts[0].Timestamp {
				t.Fatalf("%s submission %d: SCT timestamp %d, want the first one's %d", tt.name, j, sct.Timestamp, scts[0].Timestamp)
			}
		}
		if n := leaves(); n != i+2 {
			t.Fatalf("after %d submissions of one chain to %s the CT log stores %d leaves, want %d", len(scts), tt.name, n, i+2)
		}
		integrated(uint64(i + 2))
		entries, err := lc.GetEntries(ctx, int64(i+1), int64(i+1))
		if err != nil || len(entries) != 1 {
			t.Fatalf("get-entries %d: %d entries, %v", i+1, len(entries), err)
		}
		if got := entries[0].Leaf.TimestampedEntry.Timestamp; got != scts[0].Timestamp {
			t.Fatalf("%s: the logged entry has timestamp %d, the SCTs %d", tt.name, got, scts[0].Timestamp)
		}
	}
}

// parseEmbeddedSCTs decodes a certificate's embedded SCT list.
func parseEmbeddedSCTs(c *ctx509.Certificate) ([]ct.SignedCertificateTimestamp, error) {
	var out []ct.SignedCertificateTimestamp
	for _, s := range c.SCTList.SCTList {
		var sct ct.SignedCertificateTimestamp
		if _, err := ctTLSUnmarshal(s.Val, &sct); err != nil {
			return nil, err
		}
		out = append(out, sct)
	}
	return out, nil
}

func TestCTLogRefusesBadChains(t *testing.T) {
	inst := newFixture(t).startDev(t)
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	chain, err := client.NewCA(inst.http.URL).SigningCertificate(ctx, inst.devToken("email=bad@example.com"), key)
	if err != nil {
		t.Fatal(err)
	}
	// A chain to a root the log does not accept.
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	otherRootT := &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "other root"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	otherRootDER, _ := x509.CreateCertificate(rand.Reader, otherRootT, otherRootT, otherKey.Public(), otherKey)
	otherRoot, _ := x509.ParseCertificate(otherRootDER)
	leafT := &x509.Certificate{SerialNumber: big.NewInt(10), NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour), EmailAddresses: []string{"x@example.com"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}
	strangerDER, _ := x509.CreateCertificate(rand.Reader, leafT, otherRoot, key.Public(), otherKey)
	// A leaf of our intermediate allowed only for server auth.
	interKey := inst.caIntermediateKey(t)
	leafT.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	serverDER, _ := x509.CreateCertificate(rand.Reader, leafT, chain[1], key.Public(), interKey)
	b64 := func(ders ...[]byte) string {
		var parts []string
		for _, d := range ders {
			parts = append(parts, `"`+base64.StdEncoding.EncodeToString(d)+`"`)
		}
		return `{"chain":[` + strings.Join(parts, ",") + `]}`
	}
	for _, tt := range []struct {
		name, path, body, want string
	}{
		{"unknown root", "add-chain", b64(strangerDER, otherRootDER), "does not verify to an accepted root"},
		{"no poison on add-pre-chain", "add-pre-chain", b64(chain[0].Raw, chain[1].Raw), "needs a precertificate"},
		{"wrong EKU", "add-chain", b64(serverDER, chain[1].Raw), "does not verify"},
		{"garbage", "add-chain", `{"chain":["bm90IGEgY2VydA=="]}`, "does not verify"},
		{"not JSON", "add-chain", `chain`, "is not {"},
		{"empty chain", "add-chain", `{"chain":[]}`, "empty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, body := inst.doRaw(http.MethodPost, "/ct/v1/"+tt.path, "application/json", []byte(tt.body), http.StatusBadRequest)
			if !strings.Contains(string(body), tt.want) {
				t.Fatalf("body %q lacks %q", body, tt.want)
			}
		})
	}
	if _, body := inst.doRaw(http.MethodGet, "/ct/v1/get-entries?start=5&end=2", "", nil, http.StatusBadRequest); !strings.Contains(string(body), "before start") {
		t.Fatalf("get-entries with end < start: %s", body)
	}
}

// The CA can log to a remote RFC 6962 log over HTTP: here another Signet
// that runs only a CT log accepting the first one's root.
func TestCAWithRemoteCTLog(t *testing.T) {
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caChain := testCAChain(t, caKey.Public())
	chainPath := writeCerts(t, caChain...)
	rootPath := writeCerts(t, caChain[1])
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caKeyPath, ctKeyPath := filepath.Join(dir, "ca.key"), filepath.Join(dir, "ct.key")
	ctKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err := keys.WriteFile(caKeyPath, caKey, []byte("test-password")); err != nil {
		t.Fatal(err)
	}
	if err := keys.WriteFile(ctKeyPath, ctKey, []byte("test-password")); err != nil {
		t.Fatal(err)
	}
	remote := newFixture(t).start(t, func(c *config.Config) {
		c.CT.Signer = keys.FileURI(ctKeyPath, keys.PasswordSource{Env: "LOG_KEY_PASSWORD"})
		c.CT.Roots = []string{rootPath}
	})
	ctPubDER, _ := x509.MarshalPKIXPublicKey(ctKey.Public())
	ctPubPath := write("ct.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ctPubDER}))
	idp := newDevIssuerServer(t)
	inst := newFixture(t).start(t, func(c *config.Config) {
		c.CA.Signer = keys.FileURI(caKeyPath, keys.PasswordSource{Env: "LOG_KEY_PASSWORD"})
		c.CA.Chain = chainPath
		c.CA.Issuers = []identity.IssuerConfig{{URL: idp.url, Type: identity.TypeEmail}}
		c.CA.CT = remote.http.URL
		c.CA.CTPublicKey = ctPubPath
	})
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	chain, err := client.NewCA(inst.http.URL).SigningCertificate(context.Background(), idp.token(t, "remote@example.com"), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := ctx509.ParseCertificate(chain[0].Raw)
	scts, err := parseEmbeddedSCTs(leaf)
	if err != nil || len(scts) != 1 {
		t.Fatalf("embedded SCTs: %d, %v", len(scts), err)
	}
	if id := remote.srv.CTLog().LogID(); scts[0].LogID.KeyID != id {
		t.Fatal("the SCT is not from the remote CT log")
	}
	issuer, _ := ctx509.ParseCertificate(chain[1].Raw)
	mtl, _ := ct.MerkleTreeLeafForEmbeddedSCT([]*ctx509.Certificate{leaf, issuer}, scts[0].Timestamp)
	hash, _ := ct.LeafHashForLeaf(mtl)
	lc, _ := ctclient.New(remote.http.URL, http.DefaultClient, jsonclient.Options{PublicKeyDER: ctPubDER})
	deadline := time.Now().Add(ctapi.MaxMergeDelay)
	for {
		sth, err := lc.GetSTH(context.Background())
		if err == nil && sth.TreeSize > 0 {
			if _, err := lc.GetProofByHash(context.Background(), hash[:], sth.TreeSize); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the remote CT log did not integrate the precertificate within the maximum merge delay")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A new CT key at start-up is a rotation: a new CT tree signs with it, the
// old key stays in the trusted root with its window closed, and bundles
// whose SCTs came from either key verify.
func TestCTKeyRotationKeepsOldSCTsVerifiable(t *testing.T) {
	f := newFixture(t)
	dataDir := t.TempDir()
	sameDir := func(c *config.Config) { c.DataDir = dataDir }
	before := []byte("SCT from the first CT key")
	inst1 := f.startDev(t, sameDir)
	b1 := timestampedBundle(t, inst1, "before@example.com", before)
	issuer1 := inst1.srv.DevIssuer().URL()
	oldID := inst1.srv.CTLog().LogID()
	inst1.stop()

	newKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	os.Remove(filepath.Join(dataDir, "keys", "ct.pem")) //nolint:errcheck
	if err := keys.WriteFile(filepath.Join(dataDir, "keys", "ct.pem"), newKey, nil); err != nil {
		t.Fatal(err)
	}
	inst2 := f.startDev(t, sameDir)
	if inst2.srv.CTLog().LogID() == oldID {
		t.Fatal("the CT log ID did not change with its key")
	}
	after := []byte("SCT from the second CT key")
	b2 := timestampedBundle(t, inst2, "after@example.com", after)
	// A new tree: it holds only the one precertificate logged since.
	if sth, err := inst2.srv.CTLog().STH(context.Background()); err != nil || sth.TreeSize > 1 {
		t.Fatalf("the rotated CT log continued the old tree: %+v, %v", sth, err)
	}
	trJSON := inst2.get("/api/v1/trust/trusted_root.json", http.StatusOK)
	tr, err := root.NewTrustedRootFromJSON(trJSON)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.CTLogs()) != 2 {
		t.Fatalf("after a CT key rotation the trusted root has %d CT logs, want 2", len(tr.CTLogs()))
	}
	closed := 0
	for _, l := range tr.CTLogs() {
		if !l.ValidityPeriodEnd.IsZero() {
			closed++
		}
	}
	if closed != 1 {
		t.Fatalf("%d CT log windows closed, want 1", closed)
	}
	if _, err := verifyBundle(t, trJSON, b1, before, issuer1, "before@example.com"); err != nil {
		t.Fatalf("a bundle with an SCT from the retired key no longer verifies: %v", err)
	}
	if _, err := verifyBundle(t, trJSON, b2, after, inst2.srv.DevIssuer().URL(), "after@example.com"); err != nil {
		t.Fatalf("a bundle with an SCT from the new key does not verify: %v", err)
	}
	trimmed := withoutRetired(t, trJSON, "ctlogs")
	if _, err := verifyBundle(t, trimmed, b1, before, issuer1, "before@example.com"); err == nil {
		t.Fatal("the old SCT verified without the retired CT key")
	}
}
