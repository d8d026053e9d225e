package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"

	"github.com/signet-dev/signet/ca/identity"
	"github.com/signet-dev/signet/client"
	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/internal/oidctest"
)

// rowCount counts the rows of a query on the instance's database.
func (i *instance) rowCount(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := i.srvPool(t).QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// keyRequest is a Fulcio v2 publicKeyRequest for key with a proof of
// possession over subject.
func keyRequest(t *testing.T, key *ecdsa.PrivateKey, subject string) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	proof, err := client.SignChallenge(key, subject)
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(map[string]any{"publicKeyRequest": map[string]any{
		"publicKey":         map[string]any{"content": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))},
		"proofOfPossession": proof,
	}})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

const ctLeavesQuery = "SELECT count(*) FROM LeafData d JOIN signet_logs l ON l.tree_id = d.TreeId WHERE l.name = 'ct'"

// Reproductions of the identities that became certificates: an
// email-or-uri issuer's claims went into the certificate as they were, and
// one of them made a certificate crypto/x509 cannot parse after its
// precertificate was logged. Each is now a 400 that names the claim, and
// nothing is signed, logged or recorded for it.
func TestCARefusesClaimsThatMakeMalformedCertificates(t *testing.T) {
	idp := oidctest.New(t)
	inst := newFixture(t).startDev(t, func(c *config.Config) {
		c.CA.Issuers = append(c.CA.Issuers, identity.IssuerConfig{URL: idp.URL, Type: identity.TypeEmailOrURI})
	})
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	verified := func(email string) map[string]any {
		return map[string]any{"sub": "user-1", "email": email, "email_verified": true}
	}
	tests := []struct {
		name   string
		claims map[string]any
		want   string
	}{
		{"two addresses on two lines", verified("alice@example.com\nbob@evil.com"), `token claim "email" is not a valid email address: contains a newline (U+000A) at byte 17`},
		{"two addresses in a list", verified("alice@example.com, bob@evil.com"), `token claim "email" is not a valid email address: contains a space at byte 18`},
		{"NUL byte", verified("alice@example.com\x00bob"), `token claim "email" is not a valid email address: contains a NUL (U+0000) at byte 17`},
		{"not an email", verified("not-an-email"), `token claim "email" is not a valid email address: has no '@'`},
		{"UTF-8 address", verified("jöhn@example.com"), `token claim "email" is not a valid email address: contains the non-ASCII character 'ö'`},
		{"quoted local part", verified(`"a b"@example.com`), `token claim "email"`},
		{"two @", verified("alice@evil.com@example.com"), "has more than one '@'"},
		{"control character in sub", map[string]any{"sub": "user\n1"}, `token claim "sub" is not usable in a certificate: contains a newline`},
		{"bidirectional override in sub", map[string]any{"sub": "user\u202e1"}, `token claim "sub" is not usable in a certificate: contains the bidirectional control U+202E`},
		{"overlong sub", map[string]any{"sub": strings.Repeat("a", 3000)}, `token claims "iss", "sub" is not a valid URI: is `},
	}
	leaves := inst.rowCount(t, ctLeavesQuery)
	audited := inst.rowCount(t, "SELECT count(*) FROM ca_certificates")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, data := inst.doAuth("/api/v2/signingCert", idp.Token(t, tt.claims), keyRequest(t, key, "unused"), http.StatusBadRequest)
			var e struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(data, &e); err != nil || e.Code != 3 || !strings.Contains(e.Message, tt.want) {
				t.Fatalf("error body %s, want gRPC code 3 (InvalidArgument) and a message containing %q", data, tt.want)
			}
		})
	}
	if got := inst.rowCount(t, ctLeavesQuery); got != leaves {
		t.Fatalf("refused identities added %d CT leaves", got-leaves)
	}
	if got := inst.rowCount(t, "SELECT count(*) FROM ca_certificates"); got != audited {
		t.Fatalf("refused identities added %d audit rows", got-audited)
	}
	if got := inst.metric(`signet_ca_certificates_total{outcome="bad_request"}`); got != float64(len(tests)) {
		t.Fatalf("bad_request counter %v, want %d", got, len(tests))
	}

	// The same issuer's well-formed identity is certified, logged and
	// recorded: the refusals above are about the claims, not the issuer.
	chain, err := client.NewCA(inst.http.URL).SigningCertificate(context.Background(), idp.Token(t, verified("alice@example.com")), key)
	if err != nil {
		t.Fatal(err)
	}
	if got := chain[0].EmailAddresses; len(got) != 1 || got[0] != "alice@example.com" {
		t.Fatalf("certificate emails %q", got)
	}
	if got := inst.rowCount(t, ctLeavesQuery); got != leaves+1 {
		t.Fatalf("%d CT leaves after one certificate, want %d", got, leaves+1)
	}
	if got := inst.rowCount(t, "SELECT count(*) FROM ca_certificates WHERE identity = 'alice@example.com'"); got != 1 {
		t.Fatalf("%d audit rows for the certificate", got)
	}
}
