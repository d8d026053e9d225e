package server_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/digitorus/timestamp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/signet-dev/signet/client"
	"github.com/signet-dev/signet/internal/config"
	stimestamp "github.com/signet-dev/signet/timestamp"
)

// Every certificate and timestamp a client receives already has its audit
// row when the client reads the answer: the row is committed first. (The
// probe found rows written in a batch 200 ms after the answer, and lost
// when the database refused that batch or was down.)
func TestAnsweredCertificatesAndTimestampsAreOnRecord(t *testing.T) {
	inst := newFixture(t).startDev(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, inst.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	const workers, certsEach, stampsEach = 8, 2, 10
	tokens := make([]string, workers)
	for w := range tokens {
		tokens[w] = inst.devToken(fmt.Sprintf("email=worker%d@example.com", w))
	}
	ca := client.NewCA(inst.http.URL)
	tsa := client.NewTSA(inst.http.URL + "/api/v1/timestamp")
	// stored counts a serial's row right after its answer came back.
	stored := func(table, serial string) error {
		var n int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+table+" WHERE serial = $1", serial).Scan(&n); err != nil {
			return err
		}
		if n != 1 {
			return fmt.Errorf("%s has %d rows for serial %s, answered already", table, n, serial)
		}
		return nil
	}
	errs := make(chan error, workers*(certsEach+stampsEach))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			for range certsEach {
				chain, err := ca.SigningCertificate(ctx, tokens[w], key)
				if err == nil {
					err = stored("ca_certificates", hex.EncodeToString(chain[0].SerialNumber.Bytes()))
				}
				errs <- err
			}
			for i := range stampsEach {
				digest := sha256.Sum256(fmt.Appendf(nil, "worker %d stamp %d", w, i))
				st, err := tsa.Timestamp(ctx, client.TimestampRequest{Hash: crypto.SHA256, Digest: digest[:]})
				if err == nil {
					var ts *timestamp.Timestamp
					if ts, err = timestamp.ParseResponse(st.Response); err == nil {
						err = stored("tsa_timestamps", ts.SerialNumber.Text(16))
					}
				}
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// With PostgreSQL away, the CA and the TSA refuse at once with 503 and
// Retry-After instead of answering what they cannot record (the probe saw
// 5,549 timestamps granted without a row, then 23 s of nothing granted).
func TestAuditOutageIsA503(t *testing.T) {
	// Without CT, the audit row is the only database work of a certificate.
	inst := newFixture(t).startDev(t, func(c *config.Config) { c.CA.CT = "none" })
	ctx := context.Background()
	token := inst.devToken("email=outage@example.com")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	certReq := keyRequest(t, key, "outage@example.com")
	digest := sha256.Sum256([]byte("outage"))
	stampReq, err := stimestamp.MarshalRequest(crypto.SHA256, digest[:], nil, nil, false)
	if err != nil {
		t.Fatal(err)
	}

	cfg, err := pgx.ParseConfig(inst.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	dbName := cfg.Database
	cfg.Database = "postgres"
	maint, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { maint.Close(ctx) })
	allow := func(yes bool) {
		t.Helper()
		if _, err := maint.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s ALLOW_CONNECTIONS %t", pgx.Identifier{dbName}.Sanitize(), yes)); err != nil {
			t.Fatal(err)
		}
	}
	allow(false)
	t.Cleanup(func() { allow(true) }) // before dbtest drops the database
	if _, err := maint.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", dbName); err != nil {
		t.Fatal(err)
	}

	resp, body := inst.doRaw(http.MethodPost, "/api/v1/timestamp", "application/timestamp-query", stampReq, http.StatusServiceUnavailable)
	if resp.Header.Get("Retry-After") == "" || resp.Header.Get("Content-Type") != "application/timestamp-reply" {
		t.Fatalf("TSA 503 headers %v", resp.Header)
	}
	if _, err := timestamp.ParseResponse(body); err == nil || !strings.Contains(err.Error(), "cannot record timestamps") {
		t.Fatalf("TSA 503 body: %v, want an RFC 3161 rejection saying the timestamp cannot be recorded", err)
	}
	resp, body = inst.doAuth("/api/v2/signingCert", token, certReq, http.StatusServiceUnavailable)
	if resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "cannot record certificates") {
		t.Fatalf("CA 503: Retry-After %q, body %s", resp.Header.Get("Retry-After"), body)
	}

	// Once the database is back, both answer again, on record. The pool
	// may still hand out a connection the outage broke: a few 503s are
	// expected, no other answer.
	allow(true)
	granted := false
	for range 20 {
		resp, err := http.Post(inst.http.URL+"/api/v1/timestamp", "application/timestamp-query", bytes.NewReader(stampReq))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusServiceUnavailable {
			continue
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("TSA after the outage: %d %q", resp.StatusCode, body)
		}
		ts, err := timestamp.ParseResponse(body)
		if err != nil {
			t.Fatal(err)
		}
		if n := inst.rowCount(t, "SELECT count(*) FROM tsa_timestamps WHERE serial = $1", ts.SerialNumber.Text(16)); n != 1 {
			t.Fatalf("%d audit rows for the timestamp granted after the outage", n)
		}
		granted = true
		break
	}
	if !granted {
		t.Fatal("the TSA still refuses 20 requests after the database came back")
	}
	if got := inst.metric(`signet_tsa_responses_total{outcome="audit_unavailable"}`); got < 1 {
		t.Fatalf("audit_unavailable counter %v", got)
	}
	if _, err := client.NewCA(inst.http.URL).SigningCertificate(ctx, token, key); err != nil {
		t.Fatalf("CA after the outage: %v", err)
	}
}
