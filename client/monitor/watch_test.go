package monitor

import (
	"bytes"
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
	"math/big"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"golang.org/x/crypto/ssh"
)

// workflowCert is a certificate as Fulcio issues one for a GitHub workflow:
// a URI SAN, the issuer and the source repository in extensions.
func workflowCert(t *testing.T) (pemBytes []byte, keySHA256 string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	utf8 := func(s string) []byte { b, _ := asn1.MarshalWithParams(s, "utf8"); return b }
	san, _ := url.Parse("https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main")
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{}, URIs: []*url.URL{san},
		NotBefore: time.Now(), NotAfter: time.Now().Add(10 * time.Minute),
		ExtraExtensions: []pkix.Extension{
			{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}, Value: utf8("https://token.actions.githubusercontent.com")},
			{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 12}, Value: utf8("https://github.com/acme/app")},
			{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 14}, Value: utf8("refs/tags/v1.2.0")},
			{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 20}, Value: utf8("push")},
		},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(key.Public())
	sum := sha256.Sum256(spki)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), hex.EncodeToString(sum[:])
}

func body(t *testing.T, kind string, verifiers ...[]byte) []byte {
	t.Helper()
	var spec map[string]any
	switch kind {
	case "hashedrekord":
		spec = map[string]any{"signature": map[string]any{"content": "c2ln", "publicKey": map[string]any{"content": base64.StdEncoding.EncodeToString(verifiers[0])}}}
	case "dsse":
		var sigs []any
		for _, v := range verifiers {
			sigs = append(sigs, map[string]any{"signature": "c2ln", "verifier": base64.StdEncoding.EncodeToString(v)})
		}
		spec = map[string]any{"signatures": sigs}
	}
	b, _ := json.Marshal(map[string]any{"apiVersion": "0.0.1", "kind": kind, "spec": spec})
	return b
}

func TestParseAndMatch(t *testing.T) {
	certPEM, certKey := workflowCert(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(key.Public())
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki})
	sum := sha256.Sum256(spki)
	keySHA := hex.EncodeToString(sum[:])

	// A Rekor v2 entry (hashedrekord 0.0.2): the verifier in DER, a key
	// or a certificate.
	certBlock, _ := pem.Decode(certPEM)
	for verifier, want := range map[string]string{
		`{"publicKey":{"rawBytes":"` + base64.StdEncoding.EncodeToString(spki) + `"},"keyDetails":"PKIX_ECDSA_P256_SHA_256"}`:                  keySHA,
		`{"x509Certificate":{"rawBytes":"` + base64.StdEncoding.EncodeToString(certBlock.Bytes) + `"},"keyDetails":"PKIX_ECDSA_P256_SHA_256"}`: certKey,
	} {
		v2 := `{"apiVersion":"0.0.2","kind":"hashedrekord","spec":{"hashedRekordV002":{"data":{"algorithm":"SHA2_256","digest":"AA=="},"signature":{"content":"AA==","verifier":` + verifier + `}}}}`
		e, err := Parse([]byte(v2))
		if err != nil || len(e.Signers) != 1 || e.Signers[0].KeySHA256 != want || e.Kind != "hashedrekord" {
			t.Fatalf("Parse of a v2 entry: %+v %v", e, err)
		}
	}

	e, err := Parse(body(t, "dsse", keyPEM, certPEM))
	if err != nil || len(e.Signers) != 2 {
		t.Fatalf("Parse dsse: %+v %v", e, err)
	}
	if s := e.Signers[1]; s.KeySHA256 != certKey || s.Issuer != "https://token.actions.githubusercontent.com" || s.Repository != "https://github.com/acme/app" || !strings.HasPrefix(s.URIs[0], "https://github.com/acme/app/") ||
		s.Workflow == nil || s.Workflow.Ref != "refs/tags/v1.2.0" || s.Workflow.Trigger != "push" {
		t.Errorf("certificate signer %+v", s)
	}
	if e.Signers[0].KeySHA256 != keySHA {
		t.Errorf("key signer %+v, want fingerprint %s", e.Signers[0], keySHA)
	}
	cases := []struct {
		name  string
		watch Watch
		want  []Match
	}{
		{"key", Watch{KeySHA256: []string{keySHA}}, []Match{{"key_sha256", keySHA}}},
		{"key in upper case", Watch{KeySHA256: []string{strings.ToUpper(keySHA)}}, []Match{{"key_sha256", keySHA}}},
		{"issuer", Watch{Issuers: []string{"https://token.actions.githubusercontent.com"}}, []Match{{"oidc_issuer", "https://token.actions.githubusercontent.com"}}},
		{"repository", Watch{Repositories: []string{"https://github.com/acme/app"}}, []Match{{"source_repository", "https://github.com/acme/app"}}},
		{"SAN regexp", Watch{SANRegexps: []string{`^https://github\.com/acme/`}}, []Match{{"san_regexp", e.Signers[1].URIs[0]}}},
		{"nothing", Watch{Emails: []string{"alice@example.com"}, Repositories: []string{"https://github.com/acme/other"}}, nil},
	}
	for _, c := range cases {
		m, err := c.watch.Compile()
		if err != nil {
			t.Fatal(err)
		}
		got := m.Match(e)
		if len(got) != len(c.want) || len(got) > 0 && got[0] != c.want[0] {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if e, err := Parse(body(t, "hashedrekord", certPEM)); err != nil || len(e.Signers) != 1 || e.Signers[0].KeySHA256 != certKey {
		t.Errorf("Parse hashedrekord: %+v %v", e, err)
	}
	// rekord: an x509 key as hashedrekord's; an SSH key by its PKIX form's
	// fingerprint, so one key_sha256 watches the key whatever it signs.
	rekord := func(format string, key []byte) []byte {
		return []byte(`{"kind":"rekord","apiVersion":"0.0.1","spec":{"data":{},"signature":{"format":"` + format + `","content":"c2ln","publicKey":{"content":"` + base64.StdEncoding.EncodeToString(key) + `"}}}}`)
	}
	if e, err := Parse(rekord("x509", certPEM)); err != nil || len(e.Signers) != 1 || e.Signers[0].KeySHA256 != certKey || e.Signers[0].Repository != "https://github.com/acme/app" {
		t.Errorf("Parse rekord x509: %+v %v", e, err)
	}
	sshPub, err := ssh.NewPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if e, err := Parse(rekord("ssh", ssh.MarshalAuthorizedKey(sshPub))); err != nil || len(e.Signers) != 1 || e.Signers[0].KeySHA256 != keySHA {
		t.Errorf("Parse rekord ssh: %+v %v, want fingerprint %s", e, err, keySHA)
	}
	// pgp: the user IDs' emails, and the PKIX fingerprint of an RSA or
	// NIST ECDSA primary key.
	for name, cfg := range map[string]*packet.Config{
		"rsa":   {Algorithm: packet.PubKeyAlgoRSA, RSABits: 2048},
		"ecdsa": {Algorithm: packet.PubKeyAlgoECDSA, Curve: packet.CurveNistP256},
	} {
		ent, err := openpgp.NewEntity("Release", "", "release@example.com", cfg)
		if err != nil {
			t.Fatal(err)
		}
		var armored bytes.Buffer
		w, _ := armor.Encode(&armored, openpgp.PublicKeyType, nil)
		if err := ent.Serialize(w); err != nil {
			t.Fatal(err)
		}
		w.Close() //nolint:errcheck
		e, err := Parse(rekord("pgp", armored.Bytes()))
		if err != nil || len(e.Signers) != 1 || !slices.Equal(e.Signers[0].Emails, []string{"release@example.com"}) || len(e.Signers[0].KeySHA256) != 64 {
			t.Fatalf("Parse rekord pgp (%s): %+v %v", name, e, err)
		}
		if rk, ok := ent.PrimaryKey.PublicKey.(*rsa.PublicKey); ok {
			spki, _ := x509.MarshalPKIXPublicKey(rk)
			if sum := sha256.Sum256(spki); e.Signers[0].KeySHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("pgp RSA key fingerprint %s, want %x", e.Signers[0].KeySHA256, sum)
			}
		}
		if m, _ := (Watch{Emails: []string{"Release@example.com"}}).Compile(); len(m.Match(e)) != 1 {
			t.Errorf("a watched email does not match the PGP key's user ID (%s)", name)
		}
	}
	if _, err := Parse(rekord("pgp", []byte("a PGP key"))); err == nil {
		t.Error("Parse accepted a rekord with a broken PGP key")
	}
	// cose and intoto: the keys their leaves keep.
	b64 := base64.StdEncoding.EncodeToString
	for name, body := range map[string]string{
		"cose":         `{"kind":"cose","apiVersion":"0.0.1","spec":{"data":{},"publicKey":"` + b64(certPEM) + `"}}`,
		"intoto 0.0.1": `{"kind":"intoto","apiVersion":"0.0.1","spec":{"content":{},"publicKey":"` + b64(certPEM) + `"}}`,
		"intoto 0.0.2": `{"kind":"intoto","apiVersion":"0.0.2","spec":{"content":{"envelope":{"payloadType":"x","signatures":[{"sig":"AA==","publicKey":"` + b64(keyPEM) + `"},{"sig":"AA==","publicKey":"` + b64(certPEM) + `"}]}}}}`,
	} {
		e, err := Parse([]byte(body))
		if err != nil || len(e.Signers) == 0 || e.Signers[len(e.Signers)-1].KeySHA256 != certKey {
			t.Errorf("Parse %s: %+v %v", name, e, err)
		}
		if name == "intoto 0.0.2" && (len(e.Signers) != 2 || e.Signers[0].KeySHA256 != keySHA) {
			t.Errorf("Parse %s: %+v, want both signers", name, e)
		}
	}

	// minisign: the Ed25519 key's PKIX fingerprint.
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	edSPKI, _ := x509.MarshalPKIXPublicKey(edPub)
	edSum := sha256.Sum256(edSPKI)
	minisignKey := base64.StdEncoding.EncodeToString(append([]byte("Ed12345678"), edPub...))
	if e, err := Parse(rekord("minisign", []byte(minisignKey))); err != nil || len(e.Signers) != 1 || e.Signers[0].KeySHA256 != hex.EncodeToString(edSum[:]) {
		t.Errorf("Parse rekord minisign: %+v %v", e, err)
	}
	if _, err := Parse(rekord("minisign", []byte("a minisign key"))); err == nil {
		t.Error("Parse accepted a rekord with a broken minisign key")
	}
	if e, err := Parse(rekord("tuf", []byte("a TUF key"))); err != nil || len(e.Signers) != 0 || e.Kind != "rekord" {
		t.Errorf("a format the monitor cannot read: %+v %v", e, err)
	}
	if _, err := Parse(rekord("ssh", []byte("ssh-ed25519 not-a-key"))); err == nil {
		t.Error("Parse accepted a rekord with a broken SSH key")
	}
	for _, bad := range [][]byte{[]byte("not json"), body(t, "hashedrekord", []byte("not PEM")), body(t, "hashedrekord", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}))} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted it", bad)
		}
	}
}

func TestWatchRefuses(t *testing.T) {
	for _, c := range []struct {
		w    Watch
		want string
	}{
		{Watch{}, "the watch list is empty"},
		{Watch{SANRegexps: []string{"("}}, "san_regexps"},
		{Watch{KeySHA256: []string{"abc"}}, "not 64 hex digits"},
	} {
		if _, err := c.w.Compile(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Compile(%+v) = %v, want %q", c.w, err, c.want)
		}
	}
}

// Parse reads entry bodies a server sends: any bytes give an entry or an
// error, never a panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"kind":"hashedrekord","spec":{"signature":{"publicKey":{"content":"AAAA"}}}}`))
	f.Add([]byte(`{"kind":"dsse","spec":{"signatures":[{"verifier":"LS0tLS1CRUdJTg=="}]}}`))
	f.Add([]byte(`{"apiVersion":"0.0.2","kind":"hashedrekord","spec":{"hashedRekordV002":{"signature":{"verifier":{"publicKey":{"rawBytes":"AAAA"}}}}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		Parse(b) //nolint:errcheck
	})
}
