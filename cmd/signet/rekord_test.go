package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"html"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	ssldsse "github.com/secure-systems-lab/go-securesystemslib/dsse"
	gocose "github.com/veraison/go-cose"
	"helm.sh/helm/v4/pkg/provenance"

	"github.com/signet-dev/signet/internal/apkbuild"
	"github.com/signet-dev/signet/internal/cosigntest"
	"github.com/signet-dev/signet/internal/gpgtest"
)

// rekord entries from the CLI: ssh-keygen, minisign, gpg and openssl signatures
// over whole artifacts, logged, found again by the artifact's digest, and
// refused with the log's reason when they do not verify.
func TestLogUploadRekord(t *testing.T) {
	base := devServer(t)
	dir := t.TempDir()
	path := func(n string) string { return filepath.Join(dir, n) }
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	signet := func(args ...string) (string, error) {
		return runCLI(t, append([]string{"--server", base, "log", "upload", "--type", "rekord"}, args...)...)
	}
	artifact := []byte("a release signed the old way")
	os.WriteFile(path("release.tar.gz"), artifact, 0o644) //nolint:errcheck
	sum := sha256.Sum256(artifact)

	run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "release@example.com", "-f", path("id"))
	run("ssh-keygen", "-Y", "sign", "-n", "file", "-f", path("id"), path("release.tar.gz"))
	sshArgs := []string{"--pki-format", "ssh", "--artifact", path("release.tar.gz"), "--signature", path("release.tar.gz.sig"), "--public-key", path("id.pub")}
	out, err := signet(sshArgs...)
	if err != nil || !strings.Contains(out, "logged") || !strings.Contains(out, "Kind:            rekord 0.0.1") {
		t.Fatalf("ssh upload: %v\n%s", err, out)
	}
	uploadAgain(t, base, append([]string{"--type", "rekord"}, sshArgs...)...)

	run("minisign", "-G", "-W", "-p", path("minisign.pub"), "-s", path("minisign.key"))
	run("minisign", "-S", "-s", path("minisign.key"), "-m", path("release.tar.gz"))
	if out, err := signet("--pki-format", "minisign", "--artifact", path("release.tar.gz"), "--signature", path("release.tar.gz.minisig"), "--public-key", path("minisign.pub")); err != nil || !strings.Contains(out, "logged") {
		t.Fatalf("minisign upload: %v\n%s", err, out)
	}
	uploadAgain(t, base, "--type", "rekord", "--pki-format", "minisign", "--artifact", path("release.tar.gz"), "--signature", path("release.tar.gz.minisig"), "--public-key", path("minisign.pub"))
	pgpSig, pgpKey := gpgSigned(t, dir, "release.tar.gz")
	if out, err := signet("--pki-format", "pgp", "--artifact", path("release.tar.gz"), "--signature", pgpSig, "--public-key", pgpKey); err != nil || !strings.Contains(out, "logged") {
		t.Fatalf("pgp upload: %v\n%s", err, out)
	}
	uploadAgain(t, base, "--type", "rekord", "--pki-format", "pgp", "--artifact", path("release.tar.gz"), "--signature", pgpSig, "--public-key", pgpKey)

	run("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", path("key.pem"))
	run("openssl", "ec", "-in", path("key.pem"), "-pubout", "-out", path("pub.pem"))
	run("openssl", "dgst", "-sha256", "-sign", path("key.pem"), "-out", path("release.sig"), path("release.tar.gz"))
	out, err = signet("--artifact", path("release.tar.gz"), "--signature", path("release.sig"), "--public-key", path("pub.pem"), "-o", "json")
	if err != nil {
		t.Fatalf("x509 upload: %v\n%s", err, out)
	}
	var le map[string]struct {
		Body string `json:"body"`
	}
	if err := json.Unmarshal([]byte(out), &le); err != nil || len(le) != 1 {
		t.Fatalf("x509 upload answer: %v\n%s", err, out)
	}
	for _, e := range le {
		body, _ := base64.StdEncoding.DecodeString(e.Body)
		var b struct {
			Kind string `json:"kind"`
			Spec struct {
				Data      map[string]json.RawMessage `json:"data"`
				Signature struct {
					Format string `json:"format"`
				} `json:"signature"`
			} `json:"spec"`
		}
		if err := json.Unmarshal(body, &b); err != nil || b.Kind != "rekord" || b.Spec.Signature.Format != "x509" ||
			string(b.Spec.Data["hash"]) != `{"algorithm":"sha256","value":"`+hex.EncodeToString(sum[:])+`"}` || b.Spec.Data["content"] != nil {
			t.Fatalf("the logged body holds the artifact's SHA-256 and not the artifact: %v\n%s", err, body)
		}
	}
	found, err := runCLI(t, "--server", base, "log", "search", "--sha", hex.EncodeToString(sum[:]))
	if err != nil || len(strings.Fields(found)) != 4 {
		t.Fatalf("search by the artifact's digest: %v, %q, want the ssh, minisign, pgp and x509 entries", err, found)
	}

	// Each key finds its own entry, however it was sent; a PGP key's user
	// ID is found by email.
	for _, q := range [][]string{
		{"--public-key", path("id.pub"), "--pki-format", "ssh"},
		{"--public-key", path("minisign.pub"), "--pki-format", "minisign"},
		{"--public-key", pgpKey, "--pki-format", "pgp"},
		{"--email", "release@example.com"},
		{"--public-key", path("pub.pem")},
	} {
		out, err := runCLI(t, append([]string{"--server", base, "log", "search"}, q...)...)
		if err != nil || len(strings.Fields(out)) != 1 || !strings.Contains(found, strings.TrimSpace(out)) {
			t.Errorf("search %v: %v, %q, want one of %q", q, err, out, found)
		}
	}
	if _, err := runCLI(t, "--server", base, "log", "search", "--public-key", path("id.pub"), "--pki-format", "gpg"); err == nil || !strings.Contains(err.Error(), `publicKey.format "gpg" is not indexed by this log (supported: minisign, pgp, ssh, x509, tuf)`) {
		t.Errorf("search by a gpg key: %v", err)
	}

	os.WriteFile(path("other.tar.gz"), []byte("not what was signed"), 0o644) //nolint:errcheck
	_, err = signet("--pki-format", "ssh", "--artifact", path("other.tar.gz"), "--signature", path("release.tar.gz.sig"), "--public-key", path("id.pub"))
	if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "does not verify over data.content") {
		t.Fatalf("another artifact: %v, want the log's 400 and its reason", err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--digest", "sha256:" + hex.EncodeToString(sum[:]), "--signature", path("release.sig"), "--public-key", path("pub.pem")}, "give --artifact, not --digest"},
		{[]string{"--pki-format", "signify", "--artifact", path("release.tar.gz"), "--signature", path("release.sig"), "--public-key", path("pub.pem")}, `--pki-format "signify": want x509, ssh, pgp, minisign`},
	} {
		if _, err := signet(tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
	if _, err := runCLI(t, "--server", base, "log", "upload", "--pki-format", "ssh", "--artifact", path("release.tar.gz"), "--signature", path("release.sig"), "--public-key", path("pub.pem")); err == nil || !strings.Contains(err.Error(), "--pki-format goes with --type rekord") {
		t.Errorf("--pki-format with hashedrekord: %v", err)
	}
}

// Unmodified rekor-cli uploads rekord entries (ssh, x509, pgp, minisign) to Signet,
// verifies what it gets back (SET, inclusion proof, consistency with the
// tree state it keeps), and finds and fetches them again.
func TestRekorCLIUploadsRekord(t *testing.T) {
	rekorCLI := cosigntest.RekorCLI(t)
	base := devServer(t)
	dir := t.TempDir()
	path := func(n string) string { return filepath.Join(dir, n) }
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), "HOME="+dir) // rekor-cli keeps its tree state under $HOME/.rekor
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return string(out)
	}
	artifact := []byte("a release uploaded by rekor-cli")
	os.WriteFile(path("release.tar.gz"), artifact, 0o644) //nolint:errcheck
	sum := sha256.Sum256(artifact)
	run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "release@example.com", "-f", path("id"))
	run("ssh-keygen", "-Y", "sign", "-n", "file", "-f", path("id"), path("release.tar.gz"))
	run("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", path("key.pem"))
	run("openssl", "ec", "-in", path("key.pem"), "-pubout", "-out", path("pub.pem"))
	run("openssl", "dgst", "-sha256", "-sign", path("key.pem"), "-out", path("release.sig"), path("release.tar.gz"))
	pgpSig, pgpKey := gpgSigned(t, dir, "release.tar.gz")
	run("minisign", "-G", "-W", "-p", path("minisign.pub"), "-s", path("minisign.key"))
	run("minisign", "-S", "-s", path("minisign.key"), "-m", path("release.tar.gz"))

	var uuids []string
	for _, args := range [][]string{
		{"--pki-format", "ssh", "--signature", path("release.tar.gz.sig"), "--public-key", path("id.pub")},
		{"--pki-format", "x509", "--signature", path("release.sig"), "--public-key", path("pub.pem")},
		{"--pki-format", "pgp", "--signature", pgpSig, "--public-key", pgpKey},
		{"--pki-format", "minisign", "--signature", path("release.tar.gz.minisig"), "--public-key", path("minisign.pub")},
	} {
		out := run(rekorCLI, append([]string{"upload", "--rekor_server", base, "--type", "rekord", "--artifact", path("release.tar.gz"), "--format", "json"}, args...)...)
		var res struct {
			Location string
			Index    int64
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil || !strings.Contains(res.Location, "/api/v1/log/entries/") {
			t.Fatalf("rekor-cli upload %v: %v\n%s", args, err, out)
		}
		uuids = append(uuids, res.Location[strings.LastIndex(res.Location, "/")+1:])
	}
	out := run(rekorCLI, "search", "--rekor_server", base, "--sha", "sha256:"+hex.EncodeToString(sum[:]), "--format", "json")
	for _, id := range uuids {
		if !strings.Contains(out, id) {
			t.Fatalf("rekor-cli search by the artifact's digest: %s, want %v", out, uuids)
		}
	}
	for i, key := range [][]string{{"ssh", path("id.pub")}, {"pgp", pgpKey}, {"minisign", path("minisign.pub")}} {
		out := run(rekorCLI, "search", "--rekor_server", base, "--pki-format", key[0], "--public-key", key[1], "--format", "json")
		var res struct{ UUIDs []string }
		if want := uuids[[]int{0, 2, 3}[i]]; json.Unmarshal([]byte(out), &res) != nil || len(res.UUIDs) != 1 || !strings.HasSuffix(res.UUIDs[0], want[len(want)-64:]) {
			t.Errorf("rekor-cli search by the %s key: %s, want %s alone", key[0], out, want)
		}
	}
	out = run(rekorCLI, "get", "--rekor_server", base, "--uuid", uuids[0], "--format", "json")
	if !strings.Contains(out, `"format":"ssh"`) || !strings.Contains(out, hex.EncodeToString(sum[:])) {
		t.Fatalf("rekor-cli get: %s", out)
	}
	run(rekorCLI, "verify", "--rekor_server", base, "--uuid", uuids[1])
}

// gpgSigned makes a NIST P-256 GnuPG key in a home of its own, signs
// dir/name with it (armored, detached: name.asc) and exports the armored
// public key to dir/name.pub.asc.
func gpgSigned(t *testing.T, dir, name string) (sig, key string) {
	t.Helper()
	g := gpgtest.New(t)
	sig, key = filepath.Join(dir, name+".asc"), filepath.Join(dir, name+".pub.asc")
	os.WriteFile(key, g.Key("Release <release@example.com>", "nistp256"), 0o644) //nolint:errcheck
	g.GPG("--armor", "--output", sig, "--detach-sign", filepath.Join(dir, name))
	return sig, key
}

// Timestamps in the log: a response from the instance's TSA logged with
// signet and with unmodified rekor-cli, found by the artifact's digest
// (the message imprint, which Signet indexes beside Rekor's key), and a
// response without a certificate refused with the reason.
func TestLogUploadRFC3161(t *testing.T) {
	rekorCLI := cosigntest.RekorCLI(t)
	base := devServer(t)
	dir := t.TempDir()
	path := func(n string) string { return filepath.Join(dir, n) }
	artifact := []byte("an artifact with a timestamp in the log")
	os.WriteFile(path("release.tar.gz"), artifact, 0o644) //nolint:errcheck
	sum := sha256.Sum256(artifact)
	for _, name := range []string{"a.tsr", "b.tsr"} {
		if out, err := runCLI(t, "--server", base, "timestamp", "request", "--artifact", path("release.tar.gz"), "--out", path(name)); err != nil {
			t.Fatalf("timestamp request: %v\n%s", err, out)
		}
	}
	out, err := runCLI(t, "--server", base, "log", "upload", "--type", "rfc3161", "--artifact", path("a.tsr"))
	if err != nil || !strings.Contains(out, "Kind:            rfc3161 0.0.1") {
		t.Fatalf("signet log upload --type rfc3161: %v\n%s", err, out)
	}
	cmd := exec.Command(rekorCLI, "upload", "--rekor_server", base, "--type", "rfc3161", "--artifact", path("b.tsr"))
	cmd.Env = append(os.Environ(), "HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Created entry at index") {
		t.Fatalf("rekor-cli upload --type rfc3161: %v\n%s", err, out)
	}
	found, err := runCLI(t, "--server", base, "log", "search", "--sha", hex.EncodeToString(sum[:]))
	if err != nil || len(strings.Fields(found)) != 2 {
		t.Fatalf("search by the artifact's digest: %v %q, want both timestamps", err, found)
	}
	if out, err := runCLI(t, "--server", base, "timestamp", "request", "--artifact", path("release.tar.gz"), "--out", path("nocert.tsr"), "--cert=false"); err != nil {
		t.Fatalf("timestamp request: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "--server", base, "log", "upload", "--type", "rfc3161", "--artifact", path("nocert.tsr")); err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "carries no certificate") {
		t.Fatalf("a response without its certificate: %v", err)
	}
	if _, err := runCLI(t, "--server", base, "log", "upload", "--type", "rfc3161", "--artifact", path("a.tsr"), "--signature", path("a.tsr")); err == nil || !strings.Contains(err.Error(), "--signature does not go with it") {
		t.Fatalf("rfc3161 with --signature: %v", err)
	}
	// --entry sends a proposed entry as it is: the same timestamp again.
	tsr, _ := os.ReadFile(path("a.tsr"))
	entry, _ := json.Marshal(map[string]any{"kind": "rfc3161", "apiVersion": "0.0.1", "spec": map[string]any{"tsr": map[string]any{"content": tsr}}})
	os.WriteFile(path("entry.json"), entry, 0o644) //nolint:errcheck
	uploadAgain(t, base, "--entry", path("entry.json"))
	if _, err := runCLI(t, "--server", base, "log", "upload", "--entry", path("entry.json"), "--type", "rekord"); err == nil || !strings.Contains(err.Error(), "--type does not go with it") {
		t.Fatalf("--entry with --type: %v", err)
	}
}

// COSE messages in the log: logged by signet (with external AAD) and by
// unmodified rekor-cli, each message returned as its entry's attestation.
func TestLogUploadCOSE(t *testing.T) {
	rekorCLI := cosigntest.RekorCLI(t)
	base := devServer(t)
	dir := t.TempDir()
	path := func(n string) string { return filepath.Join(dir, n) }
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	os.WriteFile(path("pub.pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644) //nolint:errcheck
	sign := func(name string, payload, aad []byte) []byte {
		signer, _ := gocose.NewSigner(gocose.AlgorithmES256, key)
		m := gocose.NewSign1Message()
		m.Headers.Protected.SetAlgorithm(gocose.AlgorithmES256)
		m.Payload = payload
		if err := m.Sign(rand.Reader, aad, signer); err != nil {
			t.Fatal(err)
		}
		b, _ := m.MarshalCBOR()
		os.WriteFile(path(name), b, 0o644) //nolint:errcheck
		return b
	}
	withAAD := sign("a.cbor", []byte("signed with a context"), []byte("context"))
	plain := sign("b.cbor", []byte("signed plainly"), nil)

	out, err := runCLI(t, "--server", base, "log", "upload", "--type", "cose", "--artifact", path("a.cbor"), "--public-key", path("pub.pem"), "--aad", base64.StdEncoding.EncodeToString([]byte("context")))
	if err != nil || !strings.Contains(out, "Kind:            cose 0.0.1") || !strings.Contains(out, fmt.Sprintf("Attestation:     %d bytes stored", len(withAAD))) {
		t.Fatalf("signet log upload --type cose: %v\n%s", err, out)
	}
	uploadAgain(t, base, "--type", "cose", "--artifact", path("a.cbor"), "--public-key", path("pub.pem"), "--aad", base64.StdEncoding.EncodeToString([]byte("context")))
	if _, err := runCLI(t, "--server", base, "log", "upload", "--type", "cose", "--artifact", path("a.cbor"), "--public-key", path("pub.pem")); err == nil || !strings.Contains(err.Error(), "does not verify with the given key and aad") {
		t.Fatalf("without its AAD: %v", err)
	}
	cmd := exec.Command(rekorCLI, "upload", "--rekor_server", base, "--type", "cose", "--artifact", path("b.cbor"), "--public-key", path("pub.pem"))
	cmd.Env = append(os.Environ(), "HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Created entry at index 1") {
		t.Fatalf("rekor-cli upload --type cose: %v\n%s", err, out)
	}
	if found, err := runCLI(t, "--server", base, "log", "search", "--public-key", path("pub.pem")); err != nil || len(strings.Fields(found)) != 2 {
		t.Errorf("search by the key: %v %q, want both messages", err, found)
	}
	for i, want := range [][]byte{withAAD, plain} {
		out, err := runCLI(t, "--server", base, "log", "get", "--log-index", fmt.Sprint(i), "--output", "json")
		var le map[string]struct {
			Attestation struct{ Data []byte } `json:"attestation"`
		}
		if err != nil || json.Unmarshal([]byte(out), &le) != nil || len(le) != 1 {
			t.Fatalf("log get %d: %v\n%s", i, err, out)
		}
		for id, e := range le {
			if !bytes.Equal(e.Attestation.Data, want) {
				t.Errorf("entry %d's attestation is not its message", i)
			}
			// The explorer shows it (a COSE message is binary: base64).
			resp, err := http.Get(base + "/explorer/entry/" + id)
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(page), fmt.Sprintf("Attestation (%d bytes", len(want))) || !strings.Contains(html.UnescapeString(string(page)), base64.StdEncoding.EncodeToString(want)) {
				t.Errorf("the explorer's page of entry %d lacks its attestation: %s", i, page)
			}
		}
	}
}

// in-toto attestations: an envelope logged as intoto 0.0.2 and 0.0.1 by
// signet and by unmodified rekor-cli, and as dsse, its statement returned
// as the attestation, all five found by the statement's subject digest.
func TestLogUploadInToto(t *testing.T) {
	rekorCLI := cosigntest.RekorCLI(t)
	base := devServer(t)
	dir := t.TempDir()
	path := func(n string) string { return filepath.Join(dir, n) }
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	os.WriteFile(path("pub.pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644) //nolint:errcheck
	subject := strings.Repeat("5e", 32)
	envelope := func(name, buildID string) []byte {
		statement := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"app","digest":{"sha256":"` + subject + `"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{"buildDefinition":{"buildType":"` + buildID + `"}}}`)
		pae := ssldsse.PAE("application/vnd.in-toto+json", statement)
		d := sha256.Sum256(pae)
		sig, _ := ecdsa.SignASN1(rand.Reader, key, d[:])
		env, _ := json.Marshal(ssldsse.Envelope{PayloadType: "application/vnd.in-toto+json", Payload: base64.StdEncoding.EncodeToString(statement),
			Signatures: []ssldsse.Signature{{Sig: base64.StdEncoding.EncodeToString(sig)}}})
		os.WriteFile(path(name), env, 0o644) //nolint:errcheck
		return statement
	}
	statements := map[string][]byte{}
	for i, kind := range []string{"intoto", "intoto:0.0.1"} {
		name := fmt.Sprintf("signet%d.json", i)
		statements[kind] = envelope(name, "signet "+kind)
		out, err := runCLI(t, "--server", base, "log", "upload", "--type", kind, "--artifact", path(name), "--public-key", path("pub.pem"))
		if err != nil || !strings.Contains(out, "Kind:            intoto 0.0.") || !strings.Contains(out, fmt.Sprintf("Attestation:     %d bytes stored", len(statements[kind]))) {
			t.Fatalf("signet log upload --type %s: %v\n%s", kind, err, out)
		}
	}
	uploadAgain(t, base, "--type", "intoto", "--artifact", path("signet0.json"), "--public-key", path("pub.pem"))
	// The same envelope as a dsse entry (what cosign v3 logs): another kind,
	// another entry.
	if out, err := runCLI(t, "--server", base, "log", "upload", "--type", "dsse", "--artifact", path("signet0.json"), "--public-key", path("pub.pem")); err != nil || !strings.Contains(out, "Kind:            dsse 0.0.1") {
		t.Fatalf("signet log upload --type dsse: %v\n%s", err, out)
	}
	uploadAgain(t, base, "--type", "dsse", "--artifact", path("signet0.json"), "--public-key", path("pub.pem"))
	uploadAgain(t, base, "--type", "intoto:0.0.1", "--artifact", path("signet1.json"), "--public-key", path("pub.pem"))
	for i, kind := range []string{"intoto:0.0.2", "intoto:0.0.1"} {
		name := fmt.Sprintf("rekor%d.json", i)
		envelope(name, "rekor-cli "+kind)
		cmd := exec.Command(rekorCLI, "upload", "--rekor_server", base, "--type", kind, "--artifact", path(name), "--public-key", path("pub.pem"))
		cmd.Env = append(os.Environ(), "HOME="+dir)
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Created entry at index") {
			t.Fatalf("rekor-cli upload --type %s: %v\n%s", kind, err, out)
		}
	}
	found, err := runCLI(t, "--server", base, "log", "search", "--sha", subject)
	if err != nil || len(strings.Fields(found)) != 5 {
		t.Fatalf("search by the subject's digest: %v %q, want the five entries", err, found)
	}
	out, err := runCLI(t, "--server", base, "log", "get", "--log-index", "0", "--output", "json")
	var le map[string]struct {
		Attestation struct{ Data []byte } `json:"attestation"`
	}
	if err != nil || json.Unmarshal([]byte(out), &le) != nil || len(le) != 1 {
		t.Fatalf("log get: %v\n%s", err, out)
	}
	for _, e := range le {
		if !bytes.Equal(e.Attestation.Data, statements["intoto"]) {
			t.Errorf("the attestation is not the statement: %s", e.Attestation.Data)
		}
	}
	// The public key that signed finds the entries too (intoto 0.0.2 and
	// 0.0.1 index it as "sha256:<hex>").
	if found, err := runCLI(t, "--server", base, "log", "search", "--public-key", path("pub.pem")); err != nil || len(strings.Fields(found)) != 5 {
		t.Errorf("search by the key: %v %q", err, found)
	}
}

// The instance's own TUF metadata logged: the timestamp and targets under
// the served root, by signet and by unmodified rekor-cli.
func TestLogUploadTUF(t *testing.T) {
	rekorCLI := cosigntest.RekorCLI(t)
	base := devServer(t)
	dir := t.TempDir()
	path := func(n string) string { return filepath.Join(dir, n) }
	for _, f := range []string{"root.json", "timestamp.json", "1.targets.json"} {
		resp, err := http.Get(base + "/tuf/" + f)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET /tuf/%s: %v %v", f, err, resp)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		os.WriteFile(path(f), b, 0o644) //nolint:errcheck
	}
	out, err := runCLI(t, "--server", base, "log", "upload", "--type", "tuf", "--artifact", path("timestamp.json"), "--public-key", path("root.json"))
	if err != nil || !strings.Contains(out, "Kind:            tuf 0.0.1") {
		t.Fatalf("signet log upload --type tuf: %v\n%s", err, out)
	}
	uploadAgain(t, base, "--type", "tuf", "--artifact", path("timestamp.json"), "--public-key", path("root.json"))
	cmd := exec.Command(rekorCLI, "upload", "--rekor_server", base, "--type", "tuf", "--artifact", path("1.targets.json"), "--public-key", path("root.json"))
	cmd.Env = append(os.Environ(), "HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Created entry at index 1") {
		t.Fatalf("rekor-cli upload --type tuf: %v\n%s", err, out)
	}
	// The root finds what it signed (Rekor's "tuf" public key search).
	if found, err := runCLI(t, "--server", base, "log", "search", "--public-key", path("root.json"), "--pki-format", "tuf"); err != nil || len(strings.Fields(found)) != 2 {
		t.Fatalf("search by the root: %v %q", err, found)
	}
	// A root does not vouch for metadata it did not sign: the targets
	// given as their own root.
	if _, err := runCLI(t, "--server", base, "log", "upload", "--type", "tuf", "--artifact", path("1.targets.json"), "--public-key", path("1.targets.json")); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("targets as the root: %v", err)
	}
}

// Alpine packages: one logged by signet, one by unmodified rekor-cli, both
// found by their SHA-256; a package whose data changed is refused.
func TestLogUploadAlpine(t *testing.T) {
	rekorCLI := cosigntest.RekorCLI(t)
	base := devServer(t)
	dir := t.TempDir()
	path := func(n string) string { return filepath.Join(dir, n) }
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	var sums []string
	for i, name := range []string{"a.apk", "b.apk"} {
		p := mustBuild(t, key, func(s string) string {
			return strings.Replace(s, "pkgver = 1.0-r0", fmt.Sprintf("pkgver = 1.%d-r0", i), 1)
		})
		os.WriteFile(path(name), p.APK, 0o644)         //nolint:errcheck
		os.WriteFile(path("pub.pem"), p.PubPEM, 0o644) //nolint:errcheck
		sum := sha256.Sum256(p.APK)
		sums = append(sums, hex.EncodeToString(sum[:]))
	}
	out, err := runCLI(t, "--server", base, "log", "upload", "--type", "alpine", "--artifact", path("a.apk"), "--public-key", path("pub.pem"))
	if err != nil || !strings.Contains(out, "Kind:            alpine 0.0.1") {
		t.Fatalf("signet log upload --type alpine: %v\n%s", err, out)
	}
	uploadAgain(t, base, "--type", "alpine", "--artifact", path("a.apk"), "--public-key", path("pub.pem"))
	cmd := exec.Command(rekorCLI, "upload", "--rekor_server", base, "--type", "alpine", "--artifact", path("b.apk"), "--public-key", path("pub.pem"))
	cmd.Env = append(os.Environ(), "HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Created entry at index 1") {
		t.Fatalf("rekor-cli upload --type alpine: %v\n%s", err, out)
	}
	for _, sum := range sums {
		if found, err := runCLI(t, "--server", base, "log", "search", "--sha", sum); err != nil || len(strings.Fields(found)) != 1 {
			t.Errorf("search by the package's digest: %v %q", err, found)
		}
	}
	apk, _ := os.ReadFile(path("a.apk"))
	os.WriteFile(path("c.apk"), append(apk, 0), 0o644) //nolint:errcheck
	if _, err := runCLI(t, "--server", base, "log", "upload", "--type", "alpine", "--artifact", path("c.apk"), "--public-key", path("pub.pem")); err == nil || !strings.Contains(err.Error(), "datahash") {
		t.Errorf("a package whose data changed: %v", err)
	}
}

// Helm charts: a provenance made by Helm's own package logged by signet,
// another by unmodified rekor-cli, both found by the chart's digest.
func TestLogUploadHelm(t *testing.T) {
	rekorCLI := cosigntest.RekorCLI(t)
	base := devServer(t)
	dir := t.TempDir()
	path := func(n string) string { return filepath.Join(dir, n) }
	e, err := openpgp.NewEntity("Charts", "", "charts@example.com", &packet.Config{Algorithm: packet.PubKeyAlgoRSA, RSABits: 2048})
	if err != nil {
		t.Fatal(err)
	}
	var key bytes.Buffer
	w, _ := armor.Encode(&key, openpgp.PublicKeyType, nil)
	e.Serialize(w)                                    //nolint:errcheck
	w.Close()                                         //nolint:errcheck
	os.WriteFile(path("key.asc"), key.Bytes(), 0o644) //nolint:errcheck
	var sums []string
	for i, name := range []string{"a.prov", "b.prov"} {
		archive := []byte(fmt.Sprintf("chart archive %d", i))
		prov, err := (&provenance.Signatory{Entity: e}).ClearSign(archive, "hello-0.1.0.tgz", []byte("apiVersion: v2\nname: hello\nversion: 0.1.0\n"))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(path(name), []byte(prov), 0o644) //nolint:errcheck
		sum := sha256.Sum256(archive)
		sums = append(sums, hex.EncodeToString(sum[:]))
	}
	out, err := runCLI(t, "--server", base, "log", "upload", "--type", "helm", "--artifact", path("a.prov"), "--public-key", path("key.asc"))
	if err != nil || !strings.Contains(out, "Kind:            helm 0.0.1") {
		t.Fatalf("signet log upload --type helm: %v\n%s", err, out)
	}
	uploadAgain(t, base, "--type", "helm", "--artifact", path("a.prov"), "--public-key", path("key.asc"))
	cmd := exec.Command(rekorCLI, "upload", "--rekor_server", base, "--type", "helm", "--artifact", path("b.prov"), "--public-key", path("key.asc"))
	cmd.Env = append(os.Environ(), "HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Created entry at index 1") {
		t.Fatalf("rekor-cli upload --type helm: %v\n%s", err, out)
	}
	for _, sum := range sums {
		if found, err := runCLI(t, "--server", base, "log", "search", "--sha", sum); err != nil || len(strings.Fields(found)) != 1 {
			t.Errorf("search by the chart's digest: %v %q", err, found)
		}
	}
	if _, err := runCLI(t, "--server", base, "log", "upload", "--type", "helm", "--artifact", path("a.prov"), "--certificate", path("key.asc")); err == nil || !strings.Contains(err.Error(), "--certificate does not go with it") {
		t.Errorf("helm with --certificate: %v", err)
	}
}

// RPM packages: one rpmbuild made and rpmsign signed (types/rpm's
// fixture) logged by signet, then by unmodified rekor-cli, which finds it
// there already; found by its SHA-256.
func TestLogUploadRPM(t *testing.T) {
	rekorCLI := cosigntest.RekorCLI(t)
	base := devServer(t)
	pkg, key := "../../types/rpm/testdata/hello.rpm", "../../types/rpm/testdata/hello.rpm.asc"
	out, err := runCLI(t, "--server", base, "log", "upload", "--type", "rpm", "--artifact", pkg, "--public-key", key)
	if err != nil || !strings.Contains(out, "Kind:            rpm 0.0.1") {
		t.Fatalf("signet log upload --type rpm: %v\n%s", err, out)
	}
	cmd := exec.Command(rekorCLI, "upload", "--rekor_server", base, "--type", "rpm", "--artifact", pkg, "--public-key", key)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Entry already exists") {
		t.Fatalf("rekor-cli upload --type rpm of the same package: %v\n%s", err, out)
	}
	uploadAgain(t, base, "--type", "rpm", "--artifact", pkg, "--public-key", key)
	b, _ := os.ReadFile(pkg)
	sum := sha256.Sum256(b)
	if found, err := runCLI(t, "--server", base, "log", "search", "--sha", hex.EncodeToString(sum[:])); err != nil || len(strings.Fields(found)) != 1 {
		t.Errorf("search by the package's digest: %v %q", err, found)
	}
}

// Java archives: types/jar's jarsigner-signed fixture logged by signet,
// then by unmodified rekor-cli, which finds it there already; found by its
// SHA-256 and by the signer's certificate.
func TestLogUploadJAR(t *testing.T) {
	rekorCLI := cosigntest.RekorCLI(t)
	base := devServer(t)
	archive := "../../types/jar/testdata/signed.jar"
	out, err := runCLI(t, "--server", base, "log", "upload", "--type", "jar", "--artifact", archive, "-o", "json")
	if err != nil {
		t.Fatalf("signet log upload --type jar: %v\n%s", err, out)
	}
	cmd := exec.Command(rekorCLI, "upload", "--rekor_server", base, "--type", "jar", "--artifact", archive)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Entry already exists") {
		t.Fatalf("rekor-cli upload --type jar of the same archive: %v\n%s", err, out)
	}
	uploadAgain(t, base, "--type", "jar", "--artifact", archive)
	b, _ := os.ReadFile(archive)
	sum := sha256.Sum256(b)
	if found, err := runCLI(t, "--server", base, "log", "search", "--sha", hex.EncodeToString(sum[:])); err != nil || len(strings.Fields(found)) != 1 {
		t.Errorf("search by the archive's digest: %v %q", err, found)
	}
	var le map[string]struct{ Body string }
	json.Unmarshal([]byte(out), &le) //nolint:errcheck
	for _, e := range le {
		body, _ := base64.StdEncoding.DecodeString(e.Body)
		var leaf struct {
			Spec struct {
				Signature struct {
					PublicKey struct{ Content []byte } `json:"publicKey"`
				} `json:"signature"`
			} `json:"spec"`
		}
		json.Unmarshal(body, &leaf) //nolint:errcheck
		certPath := filepath.Join(t.TempDir(), "signer.pem")
		os.WriteFile(certPath, leaf.Spec.Signature.PublicKey.Content, 0o644) //nolint:errcheck
		if found, err := runCLI(t, "--server", base, "log", "search", "--public-key", certPath); err != nil || len(strings.Fields(found)) != 1 {
			t.Errorf("search by the signer's certificate: %v %q", err, found)
		}
	}
}

func mustBuild(t testing.TB, key *rsa.PrivateKey, tweak func(string) string) apkbuild.Package {
	t.Helper()
	p, err := apkbuild.Build(key, tweak)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// uploadAgain sends the same upload a second time: the log answers 409
// with the existing entry's location, which signet fetches by UUID and
// verifies (inclusion proof, checkpoint, SET); the entry is then fetched
// and verified by its index too.
func uploadAgain(t *testing.T, base string, args ...string) {
	t.Helper()
	out, err := runCLI(t, append([]string{"--server", base, "log", "upload"}, args...)...)
	if err != nil || !strings.Contains(out, "already in the log") {
		t.Errorf("the same upload again: %v\n%s", err, out)
		return
	}
	field := func(out, name string) string {
		for _, line := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(line, name+":"); ok {
				return strings.TrimSpace(v)
			}
		}
		return ""
	}
	uuid, index := field(out, "UUID"), field(out, "Index")
	got, err := runCLI(t, "--server", base, "log", "get", "--log-index", index)
	if err != nil || uuid == "" || field(got, "UUID") != uuid {
		t.Errorf("log get --log-index %s: %v\n%s, want %s", index, err, got, uuid)
	}
}
