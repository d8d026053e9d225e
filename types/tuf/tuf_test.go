package tuf_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-dev/signet/types"
	"github.com/signet-dev/signet/types/internal/rekorref"
	"github.com/signet-dev/signet/types/pki"
	"github.com/signet-dev/signet/types/tuf"
)

// repo is a TUF repository's metadata made with go-tuf/v2, as Signet's own
// TUF repository (trust/tuf) makes it.
type repo struct {
	rootKey, targetsKey, snapshotKey   crypto.Signer
	root, targets, snapshot, timestamp []byte
}

func signer(t testing.TB, k crypto.Signer) signature.Signer {
	t.Helper()
	s, err := signature.LoadSigner(k, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newRepo(t testing.TB, expires time.Time) *repo {
	t.Helper()
	ec := func() crypto.Signer { k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader); return k }
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	r := &repo{rootKey: ec(), targetsKey: ed, snapshotKey: ec()}
	timestampKey := ec()
	root := metadata.Root(expires)
	for role, k := range map[string]crypto.Signer{metadata.ROOT: r.rootKey, metadata.TARGETS: r.targetsKey, metadata.SNAPSHOT: r.snapshotKey, metadata.TIMESTAMP: timestampKey} {
		key, err := metadata.KeyFromPublicKey(k.Public())
		if err != nil {
			t.Fatal(err)
		}
		if err := root.Signed.AddKey(key, role); err != nil {
			t.Fatal(err)
		}
	}
	r.root = sign(t, root, r.rootKey)
	targets := metadata.Targets(expires)
	targets.Signed.Version = 3
	tf, err := metadata.TargetFile().FromBytes("trusted_root.json", []byte(`{"mediaType":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	targets.Signed.Targets["trusted_root.json"] = tf
	r.targets = sign(t, targets, r.targetsKey)
	r.snapshot = sign(t, metadata.Snapshot(expires), r.snapshotKey)
	r.timestamp = sign(t, metadata.Timestamp(expires), timestampKey)
	return r
}

func sign[T metadata.Roles](t testing.TB, md *metadata.Metadata[T], keys ...crypto.Signer) []byte {
	t.Helper()
	for _, k := range keys {
		if _, err := md.Sign(signer(t, k)); err != nil {
			t.Fatal(err)
		}
	}
	b, err := md.ToBytes(true)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// proposal is a tuf 0.0.1 entry as rekor-cli sends it: the metadata and
// root as JSON objects (base64 strings when b64).
func proposal(t testing.TB, md, root []byte, b64 bool) []byte {
	t.Helper()
	content := func(b []byte) any {
		if b64 {
			return base64.StdEncoding.EncodeToString(b)
		}
		return json.RawMessage(b)
	}
	p, err := json.Marshal(map[string]any{"apiVersion": "0.0.1", "kind": "tuf", "spec": map[string]any{
		"metadata": map[string]any{"content": content(md)}, "root": map[string]any{"content": content(root)}}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Leaf and index keys are Rekor 1.5's for every top-level role, signed
// with ECDSA and Ed25519 keys, sent as objects or as base64.
func TestMatchesRekor(t *testing.T) {
	reg := types.NewRegistry(tuf.Kind())
	r := newRepo(t, time.Now().Add(24*time.Hour))
	for name, p := range map[string][]byte{
		"root":              proposal(t, r.root, r.root, false),
		"targets (Ed25519)": proposal(t, r.targets, r.root, false),
		"snapshot":          proposal(t, r.snapshot, r.root, false),
		"timestamp, base64": proposal(t, r.timestamp, r.root, true),
	} {
		t.Run(name, func(t *testing.T) { rekorref.Matches(t, reg, p) })
	}
	e, _ := reg.ParseInsertable(context.Background(), proposal(t, r.targets, r.root, false))
	if keys := strings.Join(e.IndexKeys(), " "); !strings.Contains(keys, "targets") || !strings.Contains(keys, " 3 ") {
		t.Errorf("keys %s lack the role and version", keys)
	}
}

func TestRefusals(t *testing.T) {
	reg := types.NewRegistry(tuf.Kind())
	r := newRepo(t, time.Now().Add(24*time.Hour))
	old := newRepo(t, time.Now().Add(-time.Hour))
	other := newRepo(t, time.Now().Add(24*time.Hour))
	// targets signed by the snapshot key instead.
	var md metadata.Metadata[metadata.TargetsType]
	json.Unmarshal(r.targets, &md) //nolint:errcheck
	md.Signatures = nil
	wrongKey := sign(t, &md, r.snapshotKey)
	for name, tc := range map[string]struct {
		proposal []byte
		want     string
	}{
		"another repository's root":    {proposal(t, r.targets, other.root, false), "not signed by a threshold of the root's targets keys"},
		"signed by another role's key": {proposal(t, wrongKey, r.root, false), "not signed by a threshold"},
		"an expired root":              {proposal(t, old.targets, old.root, false), "the root expired"},
		"not metadata":                 {proposal(t, []byte(`{"signed":{"_type":"mirrors"},"signatures":[]}`), r.root, false), `"mirrors"`},
		"a root that is not":           {proposal(t, r.targets, r.targets, false), "root"},
		"no root":                      {[]byte(`{"apiVersion":"0.0.1","kind":"tuf","spec":{"metadata":{"content":{}}}}`), "root.content is required"},
		"base64 that is not":           {[]byte(`{"apiVersion":"0.0.1","kind":"tuf","spec":{"metadata":{"content":"%%%"},"root":{"content":"%%%"}}}`), "not base64"},
	} {
		_, err := reg.ParseInsertable(context.Background(), tc.proposal)
		var ve *types.ValidationError
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a validation error saying %q", name, err, tc.want)
		}
	}
	// Expired metadata under a valid root, judged by the clock given.
	later := types.NewRegistry(tuf.KindAt(func() time.Time { return time.Now().Add(48 * time.Hour) }))
	if _, err := later.ParseInsertable(context.Background(), proposal(t, r.targets, r.root, false)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired metadata: %v", err)
	}
}

// What the review found costly, refused before go-tuf reads it: a role
// listing one key ID thousands of times (quadratic in go-tuf), too many
// signatures, and an object too big to canonicalize quickly.
func TestCostlyDocumentsAreRefused(t *testing.T) {
	reg := types.NewRegistry(tuf.Kind())
	r := newRepo(t, time.Now().Add(24*time.Hour))
	rootWithIDs := func(ids string) []byte {
		return []byte(`{"signatures":[],"signed":{"_type":"root","spec_version":"1.0.31","version":1,"expires":"2099-01-01T00:00:00Z","consistent_snapshot":true,` +
			`"keys":{"a":{"keytype":"ed25519","scheme":"ed25519","keyval":{"public":"` + strings.Repeat("00", 32) + `"}}},` +
			`"roles":{"root":{"keyids":[` + ids + `],"threshold":1},"targets":{"keyids":["a"],"threshold":1},"snapshot":{"keyids":["a"],"threshold":1},"timestamp":{"keyids":["a"],"threshold":1}}}}`)
	}
	manySigs := `{"signatures":[` + strings.TrimSuffix(strings.Repeat(`{"keyid":"a","sig":"00"},`, tuf.MaxKeys+1), ",") + `],"signed":{"_type":"targets"}}`
	var bigTargets strings.Builder
	bigTargets.WriteString(`{"signatures":[],"signed":{"_type":"targets","targets":{`)
	for i := range 5000 {
		if i > 0 {
			bigTargets.WriteString(",")
		}
		fmt.Fprintf(&bigTargets, `"t%d":{}`, i)
	}
	bigTargets.WriteString(`}}}`)
	bits := pki.MaxRSABits + 8
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), uint(bits)))
	n.SetBit(n, bits-1, 1).SetBit(n, 0, 1)
	der, _ := x509.MarshalPKIXPublicKey(&rsa.PublicKey{N: n, E: 65537})
	pubJSON, _ := json.Marshal(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))
	rsaRoot := []byte(`{"signatures":[],"signed":{"_type":"root","spec_version":"1.0.31","version":1,"expires":"2099-01-01T00:00:00Z","consistent_snapshot":true,` +
		`"keys":{"a":{"keytype":"rsa","scheme":"rsassa-pss-sha256","keyval":{"public":` + string(pubJSON) + `}}},` +
		`"roles":{"root":{"keyids":["a"],"threshold":1},"targets":{"keyids":["a"],"threshold":1},"snapshot":{"keyids":["a"],"threshold":1},"timestamp":{"keyids":["a"],"threshold":1}}}}`)
	for name, tc := range map[string]struct {
		md, root []byte
		want     string
	}{
		"an RSA key past the bound":    {r.targets, rsaRoot, "at most 8192 bits"},
		"a key ID listed twice":        {r.targets, rootWithIDs(`"a","a"`), `lists key ID "a" twice`},
		"65 signatures":                {[]byte(manySigs), r.root, "more than 64 signatures"},
		"a targets map of 5,000 files": {[]byte(bigTargets.String()), r.root, "more than 4096 members"},
	} {
		_, err := reg.ParseInsertable(context.Background(), proposal(t, tc.md, tc.root, false))
		var ve *types.ValidationError
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a validation error saying %q", name, err, tc.want)
		}
	}
}

// Whatever bytes arrive as metadata, parsing answers an entry or a
// validation error, and never panics.
func FuzzParse(f *testing.F) {
	r := newRepo(f, time.Now().Add(24*time.Hour))
	f.Add(r.targets)
	f.Add(r.root)
	reg := types.NewRegistry(tuf.Kind())
	f.Fuzz(func(t *testing.T, md []byte) {
		if !json.Valid(md) {
			return
		}
		_, err := reg.ParseInsertable(context.Background(), proposal(t, md, r.root, false))
		var ve *types.ValidationError
		if err != nil && (!errors.As(err, &ve) || errors.Is(err, types.ErrParserPanic)) {
			t.Fatalf("not a validation error, or a parser panic: %v", err)
		}
	})
}
