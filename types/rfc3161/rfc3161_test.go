package rfc3161_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signet-dev/signet/timestamp"
	"github.com/signet-dev/signet/types"
	"github.com/signet-dev/signet/types/internal/rekorref"
	"github.com/signet-dev/signet/types/rfc3161"
)

func proposal(t testing.TB, tsr []byte) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"apiVersion": "0.0.1", "kind": "rfc3161", "spec": map[string]any{"tsr": map[string]any{"content": tsr}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// opensslTSA answers timestamp queries with openssl ts -reply, as a TSA
// run on openssl's own implementation would.
type opensslTSA struct {
	t   *testing.T
	dir string
}

func newOpensslTSA(t *testing.T) *opensslTSA {
	t.Helper()
	dir := t.TempDir()
	a := &opensslTSA{t: t, dir: dir}
	a.run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", a.path("tsa.key"), "-out", a.path("tsa.crt"),
		"-subj", "/CN=openssl test TSA", "-days", "1", "-addext", "extendedKeyUsage=critical,timeStamping", "-addext", "keyUsage=critical,digitalSignature")
	os.WriteFile(a.path("serial"), []byte("01\n"), 0o600) //nolint:errcheck
	cfg := "[ tsa ]\ndefault_tsa = tsa1\n[ tsa1 ]\nserial = " + a.path("serial") + "\ncrypto_device = builtin\nsigner_digest = sha256\n" +
		"default_policy = 1.2.3.4.1\ndigests = sha256, sha384, sha512\naccuracy = secs:1\nordering = yes\ntsa_name = yes\ness_cert_id_alg = sha256\n"
	os.WriteFile(a.path("tsa.cnf"), []byte(cfg), 0o600) //nolint:errcheck
	return a
}

func (a *opensslTSA) path(n string) string { return filepath.Join(a.dir, n) }

func (a *opensslTSA) run(args ...string) {
	a.t.Helper()
	if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
		a.t.Fatalf("openssl %v: %v\n%s", args, err, out)
	}
}

// stamp returns the response to a query for content (-sha256 or another
// digest flag), with the certificate in the token when cert is set.
func (a *opensslTSA) stamp(content []byte, digest string, cert bool) []byte {
	a.t.Helper()
	os.WriteFile(a.path("artifact"), content, 0o600) //nolint:errcheck
	query := []string{"ts", "-query", "-data", a.path("artifact"), digest, "-out", a.path("q.tsq")}
	if cert {
		query = append(query, "-cert")
	}
	a.run(query...)
	a.run("ts", "-reply", "-config", a.path("tsa.cnf"), "-queryfile", a.path("q.tsq"), "-signer", a.path("tsa.crt"), "-inkey", a.path("tsa.key"), "-out", a.path("r.tsr"))
	// openssl itself verifies what it made.
	a.run("ts", "-verify", "-queryfile", a.path("q.tsq"), "-in", a.path("r.tsr"), "-CAfile", a.path("tsa.crt"), "-untrusted", a.path("tsa.crt"))
	tsr, _ := os.ReadFile(a.path("r.tsr"))
	return tsr
}

// signetStamp is a response from Signet's own TSA.
func signetStamp(t *testing.T, content []byte) []byte {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	rootT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "root"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	rootDER, _ := x509.CreateCertificate(rand.Reader, rootT, rootT, rootKey.Public(), rootKey)
	root, _ := x509.ParseCertificate(rootDER)
	leafT := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "signet tsa"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtraExtensions: []pkix.Extension{timestamp.CriticalTimeStampingEKU()}}
	leafDER, _ := x509.CreateCertificate(rand.Reader, leafT, root, key.Public(), rootKey)
	leaf, _ := x509.ParseCertificate(leafDER)
	tsa, err := timestamp.New(timestamp.Config{Signer: key, Chain: []*x509.Certificate{leaf, root}})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	q, err := timestamp.MarshalRequest(crypto.SHA256, sum[:], nil, big.NewInt(42), true)
	if err != nil {
		t.Fatal(err)
	}
	req, err := timestamp.ParseRequest(q)
	if err != nil {
		t.Fatal(err)
	}
	tsr, _, err := tsa.Stamp(req)
	if err != nil {
		t.Fatal(err)
	}
	return tsr
}

// Responses from openssl and from Signet's TSA: the leaf is Rekor 1.5's
// and the index keys Rekor's plus the message imprint.
func TestMatchesRekor(t *testing.T) {
	reg := types.NewRegistry(rfc3161.Kind())
	content := []byte("an artifact timestamped")
	s256 := sha256.Sum256(content)
	s512 := sha512.Sum512(content)
	tsa := newOpensslTSA(t)
	for name, tc := range map[string]struct {
		tsr     []byte
		imprint string
	}{
		"openssl, sha256": {tsa.stamp(content, "-sha256", true), "sha256:" + hex.EncodeToString(s256[:])},
		"openssl, sha512": {tsa.stamp(content, "-sha512", true), "sha512:" + hex.EncodeToString(s512[:])},
		"signet's TSA":    {signetStamp(t, content), "sha256:" + hex.EncodeToString(s256[:])},
	} {
		t.Run(name, func(t *testing.T) {
			e := rekorref.MatchesWithExtraKeys(t, reg, proposal(t, tc.tsr), tc.imprint)
			whole := sha256.Sum256(tc.tsr)
			if keys := e.IndexKeys(); len(keys) != 2 || keys[0] != "sha256:"+hex.EncodeToString(whole[:]) {
				t.Errorf("keys %v", keys)
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	reg := types.NewRegistry(rfc3161.Kind())
	content := []byte("artifact")
	tsa := newOpensslTSA(t)
	good := tsa.stamp(content, "-sha256", true)
	tampered := append([]byte(nil), good...)
	// The last bytes are the signature's: flip one.
	tampered[len(tampered)-3] ^= 1
	for name, tc := range map[string]struct {
		tsr  []byte
		want string
	}{
		"no certificate":  {tsa.stamp(content, "-sha256", false), "carries no certificate"},
		"a bad signature": {tampered, "timestamp token"},
		"a rejection":     {timestamp.RejectionResponse(&timestamp.Rejection{Failure: timestamp.BadAlg, Msg: "no"}), "status is 2"},
		"not DER":         {[]byte("hello"), "not a DER timestamp response"},
		"too large":       {make([]byte, rfc3161.MaxResponseBytes+1), "more than 10240"},
		"empty":           {nil, "'content' must be specified"},
	} {
		_, err := reg.ParseInsertable(context.Background(), proposal(t, tc.tsr))
		var ve *types.ValidationError
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a validation error saying %q", name, err, tc.want)
		}
		if _, _, err := rekorref.Canonicalize(proposal(t, tc.tsr)); err == nil {
			t.Errorf("%s: Rekor accepts it", name)
		}
	}
}

// Whatever bytes arrive as a timestamp response, parsing answers an entry
// or a validation error, and never panics.
func FuzzParse(f *testing.F) {
	f.Add([]byte{0x30, 0x03, 0x30, 0x01, 0x00})
	f.Add(timestamp.RejectionResponse(&timestamp.Rejection{Failure: timestamp.BadAlg, Msg: "no"}))
	// A response openssl ts -reply made (newOpensslTSA's setup).
	tsr, err := os.ReadFile("testdata/openssl.tsr")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tsr)
	reg := types.NewRegistry(rfc3161.Kind())
	f.Fuzz(func(t *testing.T, tsr []byte) {
		_, err := reg.ParseInsertable(context.Background(), proposal(t, tsr))
		var ve *types.ValidationError
		if err != nil && (!errors.As(err, &ve) || errors.Is(err, types.ErrParserPanic)) {
			t.Fatalf("not a validation error, or a parser panic: %v", err)
		}
	})
}
