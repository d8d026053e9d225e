package bootstrap

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/signet-dev/signet/internal/keys"
	"github.com/signet-dev/signet/internal/pkigen"
)

var testNames = pkigen.Names{Organization: "test org", Prefix: "test"}

func readPEM(t *testing.T, path string) []*pem.Block {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []*pem.Block
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			return out
		}
		out = append(out, b)
	}
}

func chainOf(t *testing.T, path string) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for _, b := range readPEM(t, path) {
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// checkChain checks that chain is issued to key name's public key and
// chains to a root signed by key root's.
func checkChain(t *testing.T, inst Instance, chainPath, name, root string) {
	t.Helper()
	chain := chainOf(t, chainPath)
	signer, err := keys.Open(inst.URIs[name], keys.Options{Dev: true})
	if err != nil {
		t.Fatal(err)
	}
	if !chain[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(signer.Public()) {
		t.Fatalf("%s: the chain's first certificate is not for the %s key", chainPath, name)
	}
	last := chain[len(chain)-1]
	if err := last.CheckSignatureFrom(last); err != nil {
		t.Fatalf("%s: the last certificate is not a self-signed root: %v", chainPath, err)
	}
	if root != "" {
		rootKey, err := keys.Open(inst.URIs[root], keys.Options{Dev: true})
		if err != nil {
			t.Fatal(err)
		}
		if !last.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(rootKey.Public()) {
			t.Fatalf("%s: the root is not the %s key's", chainPath, root)
		}
	}
	for i := 0; i+1 < len(chain); i++ {
		if err := chain[i].CheckSignatureFrom(chain[i+1]); err != nil {
			t.Fatalf("%s: certificate %d is not issued by the next: %v", chainPath, i, err)
		}
	}
}

// Dev mode's first start makes every key and both chains; later starts
// take them as they are and make nothing.
func TestKeepMakesWhatIsMissingOnce(t *testing.T) {
	dir := t.TempDir()
	plan := Plan{Dir: dir, Names: testNames, Keep: true}
	first, err := Make(plan)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{CAChainFile, TSAChainFile}
	for _, k := range KeyNames() {
		want = append(want, k+".pem")
	}
	if got := slices.Sorted(slices.Values(first.Made)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Fatalf("made %v, want %v", got, want)
	}
	checkChain(t, first, first.CAChain, "ca", "ca-root")
	checkChain(t, first, first.TSAChain, "tsa", "tsa-root")
	for _, b := range readPEM(t, filepath.Join(dir, "log.pem")) {
		if b.Type != "PRIVATE KEY" {
			t.Fatalf("a dev key file holds %q, want an unencrypted PRIVATE KEY", b.Type)
		}
	}
	caChain, err := os.ReadFile(first.CAChain)
	if err != nil {
		t.Fatal(err)
	}

	second, err := Make(plan)
	if err != nil {
		t.Fatal(err)
	}
	if len(second.Made) != 0 {
		t.Fatalf("the second start made %v, want nothing", second.Made)
	}
	for _, k := range []string{"log", "ct", "ca", "tsa", "tuf-root"} {
		if second.URIs[k] != first.URIs[k] {
			t.Fatalf("key %s moved from %s to %s", k, first.URIs[k], second.URIs[k])
		}
	}
	if again, err := os.ReadFile(second.CAChain); err != nil || string(again) != string(caChain) {
		t.Fatalf("the CA chain changed (%v)", err)
	}
	// The roots are not needed once the chains are made (an older dev
	// directory has no TSA root at all): a missing one is not made.
	if err := os.Remove(filepath.Join(dir, "tsa-root.pem")); err != nil {
		t.Fatal(err)
	}
	third, err := Make(plan)
	if err != nil || len(third.Made) != 0 {
		t.Fatalf("with the TSA root gone: made %v (%v), want nothing", third.Made, err)
	}
}

// Without Keep (admin init) nothing is overwritten: a key already there
// fails Make before it makes anything.
func TestMakeOverwritesNothing(t *testing.T) {
	dir := t.TempDir()
	plan := Plan{Dir: dir, Names: testNames, Password: keys.PasswordSource{Env: "P"}, Getenv: func(string) string { return "secret" }}
	if err := os.WriteFile(filepath.Join(dir, "ct.pem"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := plan.Existing(); !slices.Equal(got, []string{filepath.Join(dir, "ct.pem")}) {
		t.Fatalf("existing %v, want ct.pem", got)
	}
	if _, err := Make(plan); err == nil || !strings.Contains(err.Error(), "ct.pem") {
		t.Fatalf("made over an existing key: %v", err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "ct.pem")); err != nil || string(data) != "mine" {
		t.Fatalf("ct.pem is now %q (%v)", data, err)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 1 {
		t.Fatalf("the directory holds %d files (%v), want ct.pem alone: nothing half-made", len(entries), err)
	}
}

// admin init's keys are encrypted and their URIs name the password's
// variable; with ExternalCA no root is made and the requests carry the
// keys to be certified.
func TestEncryptedKeysAndRequests(t *testing.T) {
	dir := t.TempDir()
	getenv := func(k string) string {
		if k == "P" {
			return "secret"
		}
		return ""
	}
	inst, err := Make(Plan{Dir: dir, Names: testNames, Password: keys.PasswordSource{Env: "P"}, Getenv: getenv, ExternalCA: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := inst.URIs["ca-root"]; ok || inst.CAChain != "" {
		t.Fatalf("an external CA's instance has a root key or chain: %v %q", inst.URIs, inst.CAChain)
	}
	if _, err := os.Stat(filepath.Join(dir, "ca-root.pem")); err == nil {
		t.Fatal("made a CA root for an external CA")
	}
	if b := readPEM(t, filepath.Join(dir, "tsa.pem")); len(b) != 1 || b[0].Type != "ENCRYPTED PRIVATE KEY" {
		t.Fatalf("tsa.pem is not one encrypted key")
	}
	if !strings.Contains(inst.URIs["tsa"], "password-env=P") {
		t.Fatalf("the TSA key's URI %s does not name the password", inst.URIs["tsa"])
	}
	for _, r := range []struct{ file, key string }{{CACSRFile, "ca"}, {TSACSRFile, "tsa"}} {
		blocks := readPEM(t, filepath.Join(dir, r.file))
		if len(blocks) != 1 {
			t.Fatalf("%s holds %d PEM blocks", r.file, len(blocks))
		}
		csr, err := x509.ParseCertificateRequest(blocks[0].Bytes)
		if err != nil || csr.CheckSignature() != nil {
			t.Fatalf("%s: %v", r.file, err)
		}
		signer, err := keys.Open(inst.URIs[r.key], keys.Options{Getenv: getenv})
		if err != nil {
			t.Fatal(err)
		}
		if !csr.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(signer.Public()) {
			t.Fatalf("%s requests a certificate for another key than %s's", r.file, r.key)
		}
	}
}

func TestTokenObject(t *testing.T) {
	for _, tc := range []struct{ token, want string }{
		{"pkcs11:token=signet?module-path=/m.so&pin-value=1", "pkcs11:token=signet;object=signet-log?module-path=/m.so&pin-value=1"},
		{"pkcs11:token=signet", "pkcs11:token=signet;object=signet-log?"},
		{"pkcs11:token=signet;object=x?pin-value=1", ""},
		{"file:///k.pem", ""},
	} {
		got, err := Plan{Token: tc.token}.URI("log")
		if tc.want == "" && err == nil || tc.want != "" && (err != nil || got != tc.want) {
			t.Errorf("URI of log in %q: %q (%v), want %q", tc.token, got, err, tc.want)
		}
	}
}

// Only limits Make to some components' keys, with the roots and chains
// those need and nothing else.
func TestOnly(t *testing.T) {
	for _, tc := range []struct {
		plan Plan
		want []string
	}{
		{Plan{Only: []string{"log", "tsa"}, Keep: true}, []string{"log.pem", "tsa-root.pem", "tsa.pem", TSAChainFile}},
		{Plan{Only: []string{"ca", "tuf-root"}, Keep: true}, []string{"ca-root.pem", "ca.pem", "tuf-root.pem", CAChainFile}},
		// Only the PKI roots are left to another PKI, never TUF's.
		{Plan{Only: []string{"ca", "tuf-root"}, ExternalCA: true}, []string{"ca.pem", "tuf-root.pem", CACSRFile}},
	} {
		tc.plan.Dir, tc.plan.Names = t.TempDir(), testNames
		inst, err := Make(tc.plan)
		if err != nil {
			t.Fatal(err)
		}
		if got := slices.Sorted(slices.Values(inst.Made)); !slices.Equal(got, slices.Sorted(slices.Values(tc.want))) {
			t.Errorf("%v: made %v, want %v", tc.plan.Only, got, tc.want)
		}
		entries, err := os.ReadDir(tc.plan.Dir)
		if err != nil || len(entries) != len(tc.want) {
			t.Errorf("%v: %d files in the directory (%v), want %d", tc.plan.Only, len(entries), err, len(tc.want))
		}
	}
}

// The default data directory is relative (./.signet); key URIs must still
// name absolute paths, on the first start and the next.
func TestRelativeDirectory(t *testing.T) {
	t.Chdir(t.TempDir())
	for range 2 {
		inst, err := Make(Plan{Dir: filepath.Join(".signet", "keys"), Names: testNames, Keep: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := keys.Open(inst.URIs["log"], keys.Options{Dev: true}); err != nil || !filepath.IsAbs(inst.CAChain) {
			t.Fatalf("key URI %s (%v), chain %s: want absolute paths that open", inst.URIs["log"], err, inst.CAChain)
		}
	}
}

// A chain whose key is gone is not silently paired with a new key.
func TestKeepRefusesAChainWithoutItsKey(t *testing.T) {
	dir := t.TempDir()
	plan := Plan{Dir: dir, Names: testNames, Keep: true}
	if _, err := Make(plan); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "ca.pem")); err != nil {
		t.Fatal(err)
	}
	if _, err := Make(plan); err == nil || !strings.Contains(err.Error(), CAChainFile) {
		t.Fatalf("made a CA key for an existing chain: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ca.pem")); err == nil {
		t.Fatal("a new CA key was written")
	}
}
