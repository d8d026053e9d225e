package witnesstest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/signet-dev/signet/internal/cosigntest"
)

// OmniLog is a log omniwitness is configured to witness.
type OmniLog struct {
	// Origin is the first line of the log's checkpoints (it may hold spaces,
	// as Rekor v1's "rekor.sigstore.dev - 1193050959916656506" does); empty
	// means VKey's name.
	Origin string
	// VKey is the log's c2sp.org/signed-note verifier key, which
	// transparency-dev/formats' note.NewVerifier takes: Ed25519 (type 0x01,
	// as x/mod's note.NewEd25519VerifierKey makes it) or ECDSA over SHA-256
	// (type 0x02, as Rekor v1 signs checkpoints:
	// name+<8 hex: first 4 bytes of SHA-256(PKIX DER)>+base64(0x02 || PKIX DER)).
	// Its name is the name on the log's signature lines, not necessarily the
	// origin.
	VKey string
}

// StartOmniwitness starts transparency-dev's omniwitness
// (github.com/transparency-dev/witness/cmd/omniwitness) named name (a
// signed-note key name: no spaces nor "+", e.g. "witness.example/omni"),
// witnessing logs, on a free port of 127.0.0.1, and returns once it answers
// HTTP. It is killed when the test ends; Stop kills it before. AddLog does
// not apply to it: its logs are fixed when it starts.
//
// POST URL+"/add-checkpoint" is its c2sp.org/tlog-witness endpoint (it serves
// nothing else but a 404 here). Its signing key, its SQLite database and its
// logs file are under t.TempDir. It cosigns with cosignature/v1 (Ed25519,
// timestamped): VKey is the type 0x04 vkey, as for litewitness.
//
// Offline is fine: besides the given logs, omniwitness loads its built-in
// list of public logs (sum.golang.org, Rekor, ...) into its database, but
// this version runs no feeders and fetches nothing; no public witness network
// config URL, distributor or bastion is configured.
func StartOmniwitness(t testing.TB, name string, logs ...OmniLog) *Witness {
	t.Helper()
	bin := cosigntest.Find(t, "omniwitness")

	// omniwitness reads its logs as YAML; JSON is YAML, and quotes any origin.
	type logYAML struct {
		Origin    string `json:"Origin"`
		PublicKey string `json:"PublicKey"`
	}
	var cfg struct {
		Logs []logYAML `json:"Logs"`
	}
	for _, l := range logs {
		// What omniwitness does with it at startup, failing less clearly.
		v, err := fnote.NewVerifier(l.VKey)
		if err != nil {
			t.Fatalf("omniwitness log %q: vkey %q: %v", l.Origin, l.VKey, err)
		}
		origin := l.Origin
		if origin == "" {
			// omniwitness would key it by the vkey's name but record an empty
			// origin: give it explicitly.
			origin = v.Name()
		}
		cfg.Logs = append(cfg.Logs, logYAML{Origin: origin, PublicKey: l.VKey})
	}
	y, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	logsFile := filepath.Join(dir, "logs.yaml")
	if err := os.WriteFile(logsFile, y, 0o600); err != nil {
		t.Fatal(err)
	}
	// --private_key_path takes a note signer key, "PRIVATE+KEY+name+hash+
	// base64(0x01 || seed)" as x/mod makes it (or formats' 0x04/ML-DSA ones).
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatalf("witness name %q: %v", name, err)
	}
	keyFile := filepath.Join(dir, "witness.key")
	if err := os.WriteFile(keyFile, []byte(skey), 0o600); err != nil {
		t.Fatal(err)
	}
	_, key64, _ := strings.Cut(vkey[len(name)+1:], "+")
	key, err := base64.StdEncoding.DecodeString(key64)
	if err != nil || len(key) != 1+ed25519.PublicKeySize || key[0] != 0x01 {
		t.Fatalf("note.GenerateKey made vkey %q", vkey)
	}

	w := &Witness{
		Name: name,
		// It signs cosignature/v1 with the Ed25519 key of its note key.
		VKey:        CosignatureVKey(name, ed25519.PublicKey(key[1:])),
		bin:         bin,
		db:          filepath.Join(dir, "omniwitness.db"),
		log:         filepath.Join(dir, "omniwitness.log"),
		readyStatus: http.StatusNotFound,
	}
	w.launch(t, func() []string {
		addrs := freeAddrs(t, 2)
		return []string{
			"--private_key_path", keyFile,
			"--db_file", w.db,
			"--additional_logs", logsFile,
			// Its default is :8081. Were its port taken, omniwitness would
			// only log an error ("" would turn metrics off).
			"--metrics_listen", addrs[0],
			"--listen", addrs[1],
		}
	})
	return w
}
