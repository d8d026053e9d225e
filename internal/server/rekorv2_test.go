package server_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cyberphone/json-canonicalization/go/src/webpki.org/jsoncanonicalizer"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/rekor-tiles/v2/pkg/client/write"
	pb "github.com/sigstore/rekor-tiles/v2/pkg/generated/protobuf"
	rtnote "github.com/sigstore/rekor-tiles/v2/pkg/note"
	rthashedrekord "github.com/sigstore/rekor-tiles/v2/pkg/types/hashedrekord"
	rtverify "github.com/sigstore/rekor-tiles/v2/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/internal/cosigntest"
	"github.com/signet-dev/signet/internal/keys"
	"github.com/signet-dev/signet/log/rekorv2"
)

func withRekorV2(c *config.Config) { c.Log.V2.Enabled = true }

// Unmodified cosign v3 signs a blob through the Rekor v2 API when the
// served signing config lists it (it picks v2 over v1), with the served
// trusted root only, and verifies it; the bundle's entry is a hashedrekord
// 0.0.2 without integrated time (the time comes from our TSA).
func TestCosignThroughRekorV2(t *testing.T) {
	cosign := cosigntest.Binary(t)
	inst := newFixture(t).startDev(t, withRekorV2)
	dir := t.TempDir()
	data := inst.srv.DataDir()
	blob := filepath.Join(dir, "blob")
	os.WriteFile(blob, []byte("signed through Rekor v2"), 0o644) //nolint:errcheck
	bundle := filepath.Join(dir, "blob.sigstore.json")
	run := cosignIn(cosign, dir)
	before := inst.v2Size()
	out, err := run("sign-blob", "--yes",
		"--signing-config", filepath.Join(data, "signing_config.json"),
		"--trusted-root", filepath.Join(data, "trusted_root.json"),
		"--identity-token", inst.devToken("email=v2@example.com"),
		"--bundle", bundle, blob)
	if err != nil {
		t.Fatalf("cosign sign-blob: %v\n%s", err, out)
	}
	if after := inst.v2Size(); after != before+1 {
		t.Fatalf("the v2 tree went from %d to %d entries", before, after)
	}
	raw, _ := os.ReadFile(bundle)
	var b struct {
		VerificationMaterial struct {
			TlogEntries []struct {
				KindVersion    struct{ Kind, Version string }
				IntegratedTime string
			}
		}
	}
	if err := json.Unmarshal(raw, &b); err != nil || len(b.VerificationMaterial.TlogEntries) != 1 {
		t.Fatalf("bundle: %v\n%s", err, raw)
	}
	if e := b.VerificationMaterial.TlogEntries[0]; e.KindVersion.Kind != "hashedrekord" || e.KindVersion.Version != "0.0.2" || (e.IntegratedTime != "" && e.IntegratedTime != "0") {
		t.Fatalf("tlog entry %+v, want hashedrekord 0.0.2 without integrated time", e)
	}
	verify := func(file string) (string, error) {
		return run("verify-blob", "--trusted-root", filepath.Join(data, "trusted_root.json"), "--bundle", bundle,
			"--certificate-identity", "v2@example.com", "--certificate-oidc-issuer", inst.srv.DevIssuer().URL(), file)
	}
	if out, err := verify(blob); err != nil || !strings.Contains(out, "Verified OK") {
		t.Fatalf("cosign verify-blob: %v\n%s", err, out)
	}
	tampered := filepath.Join(dir, "tampered")
	os.WriteFile(tampered, []byte("not what was signed"), 0o644) //nolint:errcheck
	if out, err := verify(tampered); err == nil {
		t.Fatalf("cosign verified a tampered blob:\n%s", out)
	}
}

// v2Size is the Rekor v2 tree's size, from its checkpoint at the root.
func (i *instance) v2Size() int {
	i.t.Helper()
	lines := strings.Split(string(i.get("/checkpoint", 200)), "\n")
	n := 0
	for _, c := range lines[1] {
		n = n*10 + int(c-'0')
	}
	return n
}

// v2Request is a hashedrekord 0.0.2 request for data signed by key.
func v2Request(t *testing.T, key *ecdsa.PrivateKey, data []byte) *pb.HashedRekordRequestV002 {
	t.Helper()
	digest := sha256.Sum256(data)
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	return &pb.HashedRekordRequestV002{Digest: digest[:], Signature: &pb.Signature{Content: sig, Verifier: &pb.Verifier{
		Verifier:   &pb.Verifier_PublicKey{PublicKey: &pb.PublicKey{RawBytes: der}},
		KeyDetails: protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256,
	}}}
}

// The v2 write API as rekor-tiles' own client and verifier see it: the
// entry is accepted (201), its checkpoint verifies under the log's key as
// a signed note named by the hostname, the inclusion proof holds, and the
// logged body is byte for byte what rekor-tiles would log. A second
// submission is 409 naming the index; malformed, unsupported and
// mis-signed requests are 400 in the gRPC gateway's shape, with nothing
// logged.
func TestRekorV2API(t *testing.T) {
	inst := newFixture(t).startDev(t, withRekorV2)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	w, err := write.NewWriter(inst.http.URL)
	if err != nil {
		t.Fatal(err)
	}
	req := v2Request(t, key, []byte("artifact"))
	entry, err := w.Add(t.Context(), req)
	if err != nil {
		t.Fatalf("rekor-tiles' client: %v", err)
	}
	// The log's key, as the trusted root publishes it.
	var tr struct {
		Tlogs []struct {
			BaseURL   string `json:"baseUrl"`
			PublicKey struct {
				RawBytes []byte `json:"rawBytes"`
			} `json:"publicKey"`
			LogID struct {
				KeyID []byte `json:"keyId"`
			} `json:"logId"`
		}
	}
	if err := json.Unmarshal(inst.get("/api/v1/trust/trusted_root.json", 200), &tr); err != nil || len(tr.Tlogs) != 2 {
		t.Fatalf("trusted root: %v %+v", err, tr)
	}
	v2 := tr.Tlogs[1]
	if !bytes.Equal(v2.LogID.KeyID, entry.GetLogId().GetKeyId()) {
		t.Fatalf("the entry's log ID %x is not the trusted root's v2 log %x", entry.GetLogId().GetKeyId(), v2.LogID.KeyID)
	}
	pub, err := x509.ParsePKIXPublicKey(v2.PublicKey.RawBytes)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(v2.BaseURL)
	nv, err := rtnote.NewNoteVerifier(u.Hostname(), sv)
	if err != nil {
		t.Fatal(err)
	}
	if err := rtverify.VerifyLogEntry(entry, nv); err != nil {
		t.Fatalf("rekor-tiles' verifier: %v", err)
	}
	algs, err := signature.NewAlgorithmRegistryConfig(rekorv2.DefaultAlgorithms)
	if err != nil {
		t.Fatal(err)
	}
	want, err := rthashedrekord.ToLogEntry(req, algs)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON, _ := protojson.Marshal(want)
	wantBody, _ := jsoncanonicalizer.Transform(wantJSON)
	if !bytes.Equal(entry.GetCanonicalizedBody(), wantBody) {
		t.Fatalf("logged body:\n%s\nrekor-tiles logs:\n%s", entry.GetCanonicalizedBody(), wantBody)
	}
	if entry.GetIntegratedTime() != 0 || entry.GetInclusionPromise() != nil || entry.GetKindVersion().GetVersion() != "0.0.2" {
		t.Fatalf("entry %v", entry)
	}

	// The same request again: 409 with the index, as rekor-tiles answers.
	body, _ := protojson.Marshal(&pb.CreateEntryRequest{Spec: &pb.CreateEntryRequest_HashedRekordRequestV002{HashedRekordRequestV002: req}})
	resp, out := inst.post("/api/v2/log/entries", body, http.StatusConflict)
	if resp.Header.Get("X-Log-Index") != strconv.FormatInt(entry.GetLogIndex(), 10) || !strings.Contains(string(out), `"code":6`) {
		t.Fatalf("duplicate: %s %s", resp.Header, out)
	}

	size := inst.v2Size()
	other := v2Request(t, key, []byte("other"))
	other.Signature.Content = req.Signature.Content // someone else's signature
	bad := func(r *pb.CreateEntryRequest) []byte { b, _ := protojson.Marshal(r); return b }
	ed := v2Request(t, key, []byte("x"))
	ed.Signature.Verifier.KeyDetails = protocommon.PublicKeyDetails_PKIX_ED25519
	short := v2Request(t, key, []byte("y"))
	short.Digest = short.Digest[:16]
	for name, tc := range map[string]struct {
		body []byte
		want string
	}{
		"not JSON":        {[]byte("{"), "not a CreateEntryRequest"},
		"unknown field":   {[]byte(`{"hashedRekordRequestV002":{},"extra":1}`), "not a CreateEntryRequest"},
		"dsse":            {[]byte(`{"dsseRequestV002":{"envelope":{"payload":"eA==","payloadType":"t","signatures":[{"sig":"eA==","keyid":""}]}}}`), "must be hashedrekord"},
		"no signature":    {[]byte(`{"hashedRekordRequestV002":{"digest":"eA=="}}`), "signature.content is required"},
		"wrong signature": {bad(&pb.CreateEntryRequest{Spec: &pb.CreateEntryRequest_HashedRekordRequestV002{HashedRekordRequestV002: other}}), "does not verify"},
		"pure ed25519":    {bad(&pb.CreateEntryRequest{Spec: &pb.CreateEntryRequest_HashedRekordRequestV002{HashedRekordRequestV002: ed}}), "use PKIX_ED25519_PH"},
		"short digest":    {bad(&pb.CreateEntryRequest{Spec: &pb.CreateEntryRequest_HashedRekordRequestV002{HashedRekordRequestV002: short}}), "the digest has 16 bytes"},
	} {
		_, out := inst.post("/api/v2/log/entries", tc.body, http.StatusBadRequest)
		var e struct {
			Code    int
			Message string
		}
		if err := json.Unmarshal(out, &e); err != nil || e.Code != 3 || !strings.Contains(e.Message, tc.want) {
			t.Errorf("%s: %s, want code 3 saying %q", name, out, tc.want)
		}
	}
	inst.post("/api/v2/log/entries", bytes.Repeat([]byte(" "), 5<<20), http.StatusRequestEntityTooLarge)
	if got := inst.v2Size(); got != size {
		t.Fatalf("refused requests changed the tree: %d -> %d", size, got)
	}
	// The checkpoint at the root names the hostname, as sigstore-go wants.
	if cp := string(inst.get("/checkpoint", 200)); !strings.HasPrefix(cp, u.Hostname()+"\n") {
		t.Fatalf("checkpoint:\n%s", cp)
	}
}

// cosign signs and attests an image through Rekor v2 (a DSSE envelope is
// logged as a hashedrekord over its PAE), and verifies both; with a key
// too (no TSA needed for a keyed v2 signature, as cosign allows).
func TestCosignImagesThroughRekorV2(t *testing.T) {
	cosign := cosigntest.Binary(t)
	inst := newFixture(t).startDev(t, withRekorV2)
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(reg.URL, "http://")
	ref, _ := name.ParseReference(host+"/signet/app:v1", name.Insecure)
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()
	image := host + "/signet/app@" + digest.String()
	dir := t.TempDir()
	data := inst.srv.DataDir()
	run := cosignIn(cosign, dir)
	trust := []string{"--signing-config", filepath.Join(data, "signing_config.json"), "--trusted-root", filepath.Join(data, "trusted_root.json")}
	mustRun := func(args ...string) {
		t.Helper()
		if out, err := run(args...); err != nil {
			t.Fatalf("cosign %v: %v\n%s", args[0], err, out)
		}
	}
	before := inst.v2Size()
	mustRun(append([]string{"sign", "--yes", "--allow-insecure-registry", "--identity-token", inst.devToken("email=image@example.com"), image}, trust...)...)
	pred := filepath.Join(dir, "predicate.json")
	os.WriteFile(pred, []byte(`{"builder":{"id":"https://ci.example.com"},"buildType":"https://example.com/build/v1"}`), 0o644) //nolint:errcheck
	mustRun(append([]string{"attest", "--yes", "--allow-insecure-registry", "--type", "slsaprovenance", "--predicate", pred,
		"--identity-token", inst.devToken("email=image@example.com"), image}, trust...)...)
	keyless := []string{"--allow-insecure-registry", "--trusted-root", filepath.Join(data, "trusted_root.json"),
		"--certificate-identity", "image@example.com", "--certificate-oidc-issuer", inst.srv.DevIssuer().URL()}
	mustRun(append(append([]string{"verify"}, keyless...), image)...)
	mustRun(append(append([]string{"verify-attestation", "--type", "slsaprovenance"}, keyless...), image)...)
	if out, err := run("verify", "--allow-insecure-registry", "--trusted-root", filepath.Join(data, "trusted_root.json"),
		"--certificate-identity", "mallory@example.com", "--certificate-oidc-issuer", inst.srv.DevIssuer().URL(), image); err == nil {
		t.Fatalf("cosign verified the image for another identity:\n%s", out)
	}
	// A key pair of cosign's.
	c := exec.Command(cosign, "generate-key-pair")
	c.Dir, c.Env = dir, append(os.Environ(), "COSIGN_PASSWORD=pw", "HOME="+dir)
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("generate-key-pair: %v\n%s", err, out)
	}
	t.Setenv("COSIGN_PASSWORD", "pw")
	mustRun(append([]string{"sign", "--yes", "--allow-insecure-registry", "--key", "cosign.key", image}, trust...)...)
	mustRun("verify", "--allow-insecure-registry", "--trusted-root", filepath.Join(data, "trusted_root.json"), "--key", "cosign.pub", image)
	if after := inst.v2Size(); after != before+3 {
		t.Fatalf("the v2 tree went from %d to %d entries, want 3 more", before, after)
	}
}

// In production the v2 log takes its configured key, and its tree survives
// a restart: the next entry continues the same tree under the same key.
func TestRekorV2Restart(t *testing.T) {
	f := newFixture(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	path := filepath.Join(t.TempDir(), "log-v2.pem")
	if err := keys.WriteFile(path, key, []byte("test-password")); err != nil {
		t.Fatal(err)
	}
	v2 := func(c *config.Config) {
		c.Log.V2.Enabled = true
		c.Log.V2.Signer = keys.FileURI(path, keys.PasswordSource{Env: "LOG_KEY_PASSWORD"})
		c.PublicURL = "http://signet.test"
	}
	add := func(inst *instance, data string) int64 {
		t.Helper()
		w, err := write.NewWriter(inst.http.URL)
		if err != nil {
			t.Fatal(err)
		}
		e, err := w.Add(t.Context(), v2Request(t, key, []byte(data)))
		if err != nil {
			t.Fatal(err)
		}
		return e.GetLogIndex()
	}
	inst := f.start(t, v2)
	if i := add(inst, "first"); i != 0 {
		t.Fatalf("first entry at %d", i)
	}
	inst.stop()
	inst = f.start(t, v2)
	if i := add(inst, "second"); i != 1 {
		t.Fatalf("after a restart the next entry is at %d, want 1", i)
	}
	inst.stop()

	// The tree is signed as signet.test for good: another hostname would
	// make every entry handed out unverifiable.
	if srv, err := f.newServer(v2, func(c *config.Config) { c.PublicURL = "https://elsewhere.test" }); err == nil || !strings.Contains(err.Error(), `is signed as "signet.test"`) {
		if srv != nil {
			srv.Close(t.Context())
		}
		t.Fatalf("a start under another hostname: %v", err)
	}
	// A P-384 key would sign checkpoints sigstore-go checks with SHA-384.
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384Path := filepath.Join(t.TempDir(), "p384.pem")
	keys.WriteFile(p384Path, p384, []byte("test-password")) //nolint:errcheck
	if srv, err := f.newServer(v2, func(c *config.Config) {
		c.Log.V2.Signer = keys.FileURI(p384Path, keys.PasswordSource{Env: "LOG_KEY_PASSWORD"})
	}); err == nil || !strings.Contains(err.Error(), "use an Ed25519 or ECDSA P-256 key") {
		if srv != nil {
			srv.Close(t.Context())
		}
		t.Fatalf("a P-384 v2 key: %v", err)
	}

	// Turned off, the v2 log takes no entries and the signing config no
	// longer lists it, but its key stays in the trusted root: the entries
	// it logged still verify.
	inst = f.start(t, func(c *config.Config) { c.PublicURL = "http://signet.test" })
	var tr struct {
		Tlogs []struct {
			BaseURL string `json:"baseUrl"`
		}
	}
	if err := json.Unmarshal(inst.get("/api/v1/trust/trusted_root.json", 200), &tr); err != nil || len(tr.Tlogs) != 2 || !strings.HasPrefix(tr.Tlogs[1].BaseURL, "http://signet.test/tiles/rekor-v2/") {
		t.Fatalf("trusted root with v2 off: %v %+v", err, tr)
	}
	if sc := string(inst.get("/api/v1/trust/signing_config.json", 200)); strings.Contains(sc, `"majorApiVersion": 2`) {
		t.Fatalf("the signing config lists the v2 log while it is off:\n%s", sc)
	}
	inst.post("/api/v2/log/entries", []byte("{}"), http.StatusNotFound)
}

// A dev instance whose v2 key changes rotates the log: the old tree is
// frozen at its last stored checkpoint and stays readable under its own
// prefix (its baseUrl in the trusted root, which keeps the old key with a
// closed window), the new tree starts at index 0, and an entry of the old
// tree still verifies under the old key.
func TestRekorV2RotationInDev(t *testing.T) {
	f := newFixture(t)
	data := t.TempDir()
	dev := func(c *config.Config) { withRekorV2(c); c.DataDir = data }
	inst := f.startDev(t, dev)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	w, _ := write.NewWriter(inst.http.URL)
	old, err := w.Add(t.Context(), v2Request(t, key, []byte("before the rotation")))
	if err != nil {
		t.Fatal(err)
	}
	inst.stop()
	os.Remove(filepath.Join(data, "keys", "log-v2.pem")) //nolint:errcheck
	inst = f.startDev(t, dev)
	w, _ = write.NewWriter(inst.http.URL)
	next, err := w.Add(t.Context(), v2Request(t, key, []byte("after the rotation")))
	if err != nil || next.GetLogIndex() != 0 || bytes.Equal(next.GetLogId().GetKeyId(), old.GetLogId().GetKeyId()) {
		t.Fatalf("after the rotation: %v %v", next, err)
	}
	var tr struct {
		Tlogs []struct {
			BaseURL   string `json:"baseUrl"`
			PublicKey struct {
				RawBytes []byte               `json:"rawBytes"`
				ValidFor struct{ End string } `json:"validFor"`
			} `json:"publicKey"`
		}
	}
	if err := json.Unmarshal(inst.get("/api/v1/trust/trusted_root.json", 200), &tr); err != nil || len(tr.Tlogs) != 3 || tr.Tlogs[1].PublicKey.ValidFor.End == "" {
		t.Fatalf("trusted root after the rotation: %v %+v", err, tr)
	}
	frozen := strings.TrimPrefix(tr.Tlogs[1].BaseURL, inst.http.URL)
	if cp := string(inst.get(frozen+"/checkpoint", 200)); !strings.Contains(cp, "\n1\n") {
		t.Fatalf("the frozen tree's checkpoint:\n%s", cp)
	}
	pub, _ := x509.ParsePKIXPublicKey(tr.Tlogs[1].PublicKey.RawBytes)
	sv, _ := signature.LoadVerifier(pub, crypto.SHA256)
	u, _ := url.Parse(inst.http.URL)
	nv, _ := rtnote.NewNoteVerifier(u.Hostname(), sv)
	if err := rtverify.VerifyLogEntry(old, nv); err != nil {
		t.Fatalf("the entry from before the rotation under the old key: %v", err)
	}
}
