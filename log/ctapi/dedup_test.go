package ctapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	ct "github.com/google/certificate-transparency-go"
	ctclient "github.com/google/certificate-transparency-go/client"
	"github.com/google/certificate-transparency-go/jsonclient"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/signet-dev/signet/internal/db/dbtest"
	tlog "github.com/signet-dev/signet/log"
	"github.com/signet-dev/signet/log/pgstore"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// testCT is a CT log on a real PostgreSQL behind a real HTTP server, with a
// root it accepts chains for.
type testCT struct {
	ct       *CT
	engine   *tlog.Log
	pool     *pgxpool.Pool
	client   *ctclient.LogClient
	verifier *ct.SignatureVerifier
	root     *x509.Certificate
	rootKey  *ecdsa.PrivateKey
	serial   int64
}

func newTestCT(t *testing.T) *testCT {
	t.Helper()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	logKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// As internal/server opens the CT log's engine; its entries are named
	// otherwise than by their leaf hash, so they are queued and integrated
	// by Trillian's sequencer.
	engine, err := tlog.Open(ctx, pgstore.New(pool), tlog.Config{Name: "ct", SignerName: "ct.test", Signer: logKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(engine.Close)
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ct test root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, rootKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Log: engine, Signer: logKey, Roots: []*x509.Certificate{root}})
	if err != nil {
		t.Fatal(err)
	}
	router := chi.NewRouter()
	c.Routes(router)
	srv := httptest.NewServer(router)
	t.Cleanup(srv.Close)
	pubDER, err := x509.MarshalPKIXPublicKey(logKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	lc, err := ctclient.New(srv.URL, srv.Client(), jsonclient.Options{PublicKeyDER: pubDER})
	if err != nil {
		t.Fatal(err)
	}
	v, err := ct.NewSignatureVerifier(logKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	return &testCT{ct: c, engine: engine, pool: pool, client: lc, verifier: v, root: root, rootKey: rootKey, serial: 1}
}

// chain makes a new code-signing certificate (a precertificate: with the
// critical poison extension) under the root: [leaf, root].
func (tc *testCT) chain(t *testing.T, precert bool) []ct.ASN1Cert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tc.serial++
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(tc.serial), NotBefore: now.Add(-time.Minute), NotAfter: now.Add(10 * time.Minute),
		EmailAddresses: []string{"dedup@example.com"}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
	if precert {
		tmpl.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier(ctx509.OIDExtensionCTPoison), Critical: true, Value: asn1.NullBytes}}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tc.root, key.Public(), tc.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	return []ct.ASN1Cert{{Data: der}, {Data: tc.root.Raw}}
}

// submit posts chain to add-chain or add-pre-chain and checks the SCT
// against the log's key (the ct-go client checks it too).
func (tc *testCT) submit(t *testing.T, chain []ct.ASN1Cert, precert bool) *ct.SignedCertificateTimestamp {
	t.Helper()
	add, etype := tc.client.AddChain, ct.X509LogEntryType
	if precert {
		add, etype = tc.client.AddPreChain, ct.PrecertLogEntryType
	}
	sct, err := add(context.Background(), chain)
	if err != nil {
		t.Fatalf("submitting: %v", err)
	}
	tc.verify(t, sct, etype, chain)
	return sct
}

func (tc *testCT) verify(t *testing.T, sct *ct.SignedCertificateTimestamp, etype ct.LogEntryType, chain []ct.ASN1Cert) {
	t.Helper()
	leaf, err := ct.MerkleTreeLeafFromRawChain(chain, etype, sct.Timestamp)
	if err != nil {
		t.Fatal(err)
	}
	leaf.TimestampedEntry.Extensions = sct.Extensions
	if err := tc.verifier.VerifySCTSignature(*sct, ct.LogEntry{Leaf: *leaf}); err != nil {
		t.Fatalf("SCT with timestamp %d does not verify: %v", sct.Timestamp, err)
	}
	if sct.LogID.KeyID != tc.ct.LogID() {
		t.Fatal("the SCT names another log")
	}
}

// stored counts the leaves the tree holds or has queued. A submission is
// answered only once its leaf is durably queued, so this is exact as soon
// as the submissions return.
func (tc *testCT) stored(t *testing.T) int {
	t.Helper()
	var n int
	if err := tc.pool.QueryRow(context.Background(), "SELECT count(*) FROM LeafData WHERE TreeId = $1", tc.engine.TreeID()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// integrated waits (at most the maximum merge delay) until the tree holds
// want leaves and nothing is queued, then returns its entries' timestamps
// in index order.
func (tc *testCT) integrated(t *testing.T, want uint64) []uint64 {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(MaxMergeDelay)
	for {
		root, err := tc.engine.Latest(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var queued int
		if err := tc.pool.QueryRow(ctx, "SELECT count(*) FROM Unsequenced WHERE TreeId = $1", tc.engine.TreeID()).Scan(&queued); err != nil {
			t.Fatal(err)
		}
		if root.Size == want && queued == 0 {
			break
		}
		if root.Size > want {
			t.Fatalf("tree size %d, want %d", root.Size, want)
		}
		if time.Now().After(deadline) {
			t.Fatalf("tree size %d with %d queued after the maximum merge delay, want %d", root.Size, queued, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	entries, err := tc.client.GetEntries(ctx, 0, int64(want)-1)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]uint64, len(entries))
	for i, e := range entries {
		out[i] = e.Leaf.TimestampedEntry.Timestamp
	}
	return out
}

// An entry submitted again, one after another or many at once, before and
// after its leaf is integrated, gets the SCT it got first (its timestamp)
// and adds no leaf; another entry still gets a leaf of its own.
func TestResubmittedChainGetsTheOriginalSCT(t *testing.T) {
	for _, tt := range []struct {
		name    string
		precert bool
	}{
		{"add-chain", false},
		{"add-pre-chain", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tc := newTestCT(t)
			etype := ct.X509LogEntryType
			if tt.precert {
				etype = ct.PrecertLogEntryType
			}
			a := tc.chain(t, tt.precert)
			first := tc.submit(t, a, tt.precert)
			// One after another: each submission is a millisecond or more
			// apart, so a log that did not deduplicate would make leaves
			// with new timestamps.
			for i := range 4 {
				time.Sleep(2 * time.Millisecond)
				if sct := tc.submit(t, a, tt.precert); sct.Timestamp != first.Timestamp {
					t.Fatalf("resubmission %d: SCT timestamp %d, want the original %d", i+1, sct.Timestamp, first.Timestamp)
				}
			}
			if n := tc.stored(t); n != 1 {
				t.Fatalf("5 submissions of one chain stored %d leaves, want 1", n)
			}

			// Another chain is another entry.
			time.Sleep(2 * time.Millisecond)
			b := tc.chain(t, tt.precert)
			other := tc.submit(t, b, tt.precert)
			if other.Timestamp == first.Timestamp {
				t.Fatalf("a different chain got the first chain's timestamp %d", other.Timestamp)
			}

			// Many at once: one leaf, one timestamp for all.
			c := tc.chain(t, tt.precert)
			const concurrent = 24
			scts := make([]*ct.SignedCertificateTimestamp, concurrent)
			errs := make([]error, concurrent)
			var wg sync.WaitGroup
			for i := range concurrent {
				wg.Add(1)
				go func() {
					defer wg.Done()
					add := tc.client.AddChain
					if tt.precert {
						add = tc.client.AddPreChain
					}
					scts[i], errs[i] = add(context.Background(), c)
				}()
			}
			wg.Wait()
			for i := range concurrent {
				if errs[i] != nil {
					t.Fatalf("concurrent submission %d: %v", i, errs[i])
				}
				tc.verify(t, scts[i], etype, c)
				if scts[i].Timestamp != scts[0].Timestamp {
					t.Fatalf("concurrent submissions got timestamps %d and %d, want one", scts[0].Timestamp, scts[i].Timestamp)
				}
			}
			if n := tc.stored(t); n != 3 {
				t.Fatalf("3 distinct chains stored %d leaves, want 3", n)
			}

			// Integrated: the tree holds the three entries with the
			// timestamps their SCTs carry.
			got := tc.integrated(t, 3)
			want := map[uint64]bool{first.Timestamp: true, other.Timestamp: true, scts[0].Timestamp: true}
			for i, ts := range got {
				if !want[ts] {
					t.Fatalf("entry %d has timestamp %d, which no SCT carries (SCTs: %d, %d, %d)", i, ts, first.Timestamp, other.Timestamp, scts[0].Timestamp)
				}
				delete(want, ts)
			}

			// Once integrated, a resubmission still gets the original SCT.
			time.Sleep(2 * time.Millisecond)
			if sct := tc.submit(t, a, tt.precert); sct.Timestamp != first.Timestamp {
				t.Fatalf("resubmission after integration: SCT timestamp %d, want the original %d", sct.Timestamp, first.Timestamp)
			}
			if n := tc.stored(t); n != 3 {
				t.Fatalf("a resubmission after integration stored a leaf: %d, want 3", n)
			}
		})
	}
}

// The in-process CA's path and add-pre-chain find one entry the same way:
// a precertificate the CA logged, posted again to add-pre-chain, gets the
// CA's SCT, and the CA logging it twice makes one leaf.
func TestLoggedPrecertificateIsTheSameEntryOnEveryPath(t *testing.T) {
	tc := newTestCT(t)
	ctx := context.Background()
	chain := tc.chain(t, true)
	precert, err := x509.ParseCertificate(chain[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	tbs, err := ctx509.BuildPrecertTBS(precert.RawTBSCertificate, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := Precert{DER: chain[0].Data, Chain: [][]byte{tc.root.Raw}, TBS: tbs, IssuerKeyHash: sha256.Sum256(tc.root.RawSubjectPublicKeyInfo)}
	first, err := tc.ct.LogPrecertificate(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	tc.verify(t, first, ct.PrecertLogEntryType, chain)
	time.Sleep(2 * time.Millisecond)
	again, err := tc.ct.LogPrecertificate(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if again.Timestamp != first.Timestamp {
		t.Fatalf("the CA logging one precertificate twice got timestamps %d and %d", first.Timestamp, again.Timestamp)
	}
	time.Sleep(2 * time.Millisecond)
	if posted := tc.submit(t, chain, true); posted.Timestamp != first.Timestamp {
		t.Fatalf("add-pre-chain of the CA's precertificate: timestamp %d, want the CA's %d", posted.Timestamp, first.Timestamp)
	}
	if n := tc.stored(t); n != 1 {
		t.Fatalf("one precertificate stored %d leaves, want 1", n)
	}
	if got := tc.integrated(t, 1); got[0] != first.Timestamp {
		t.Fatalf("the entry's timestamp is %d, the SCT's %d", got[0], first.Timestamp)
	}
}

// Leaves that differ only in their timestamp are one entry; a difference
// anywhere else is another entry, and a stored leaf of another entry is
// refused rather than answered with an SCT that would not cover it.
func TestEntryIdentityIgnoresOnlyTheTimestamp(t *testing.T) {
	hash := [32]byte{1, 2, 3}
	leaf := func(ts uint64, tbs string) []byte {
		b, err := encodePrecertLeaf(hash, []byte(tbs), ts)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	base := leaf(1000, "tbs")
	for _, tt := range []struct {
		name     string
		stored   []byte
		same     bool
		wantTime uint64
	}{
		{"same leaf", leaf(1000, "tbs"), true, 1000},
		{"earlier timestamp", leaf(5, "tbs"), true, 5},
		{"later timestamp", leaf(1<<40, "tbs"), true, 1 << 40},
		{"other TBS, same length", leaf(1000, "tbx"), false, 0},
		{"other TBS, longer", leaf(1000, "tbs!"), false, 0},
		{"x509 entry type", append(append([]byte{}, base[:10]...), append([]byte{0, 0}, base[12:]...)...), false, 0},
		{"other version byte", append([]byte{1}, base[1:]...), false, 0},
		{"truncated", base[:len(base)-1], false, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if same := string(entryIdentity(tt.stored)) == string(entryIdentity(base)); same != tt.same {
				t.Fatalf("same identity: %v, want %v", same, tt.same)
			}
			ts, err := storedTimestamp(base, tt.stored)
			if !tt.same {
				if err == nil {
					t.Fatalf("a stored leaf of another entry was taken, timestamp %d", ts)
				}
				return
			}
			if err != nil || ts != tt.wantTime {
				t.Fatalf("storedTimestamp = %d, %v; want %d", ts, err, tt.wantTime)
			}
		})
	}
}
