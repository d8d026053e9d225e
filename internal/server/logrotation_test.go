package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/transparency-dev/merkle/rfc6962"
	"google.golang.org/protobuf/proto"

	"github.com/signet-dev/signet/client"
	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/internal/keys"
	"github.com/signet-dev/signet/internal/server"
	"github.com/signet-dev/signet/log/note"
	"github.com/signet-dev/signet/log/rekorapi/model"
)

// Rotating the transparency log key freezes the tree the old key signed at
// its last stored checkpoint and starts a new one, as Rekor's shards: old
// entries stay readable with the old key's SETs and checkpoint, indexes
// continue across trees, and sigstore-go verifies bundles from both keys
// with the trusted root that lists both.
func TestLogKeyRotation(t *testing.T) {
	f := newFixture(t)
	dataDir := t.TempDir()
	sameDir := func(c *config.Config) { c.DataDir = dataDir }
	keyPath := filepath.Join(dataDir, "keys", "log.pem")
	ctx := context.Background()

	inst1 := f.startDev(t, sameDir)
	before := []byte("logged under the first key")
	b1 := timestampedBundle(t, inst1, "before@example.com", before)
	issuer1 := inst1.srv.DevIssuer().URL()
	s := newSigner(t)
	again, againDigest, _ := s.hashedRekord(t, []byte("logged under both keys"), nil)
	old, err := inst1.client.Upload(ctx, again)
	if err != nil {
		t.Fatal(err)
	}
	oldPub, oldLogID, oldTree := inst1.pub, inst1.srv.Rekor().LogID(), inst1.srv.Log().TreeID()
	oldInfo, _, err := inst1.client.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	inst1.stop()
	oldKeyFile, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	newKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	useNewKey := func() {
		os.Remove(keyPath) //nolint:errcheck
		if err := keys.WriteFile(keyPath, newKey, nil); err != nil {
			t.Fatal(err)
		}
	}

	// Without a checkpoint over every acknowledged entry the old tree cannot
	// be frozen: the start is refused and nothing changes.
	conn := inst1.srvPool(t)
	if _, err := conn.Exec(ctx, "UPDATE search_index_watermark SET checkpoint = NULL WHERE tree_id = $1", oldTree); err != nil {
		t.Fatal(err)
	}
	useNewKey()
	cfg := config.Defaults()
	cfg.Hostname, cfg.Database.URL, cfg.DataDir, cfg.PublicURL = testHostname, f.dbURL, dataDir, "http://127.0.0.1:1"
	_, err = server.New(ctx, cfg, server.Options{Dev: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil || !strings.Contains(err.Error(), "cannot rotate the key yet") || !strings.Contains(err.Error(), "Start once with the old key") {
		t.Fatalf("rotating without a final checkpoint: %v", err)
	}
	// A start with the old key records it.
	if err := os.WriteFile(keyPath, oldKeyFile, 0o600); err != nil {
		t.Fatal(err)
	}
	f.startDev(t, sameDir).stop()
	var stored *string
	if err := conn.QueryRow(ctx, "SELECT checkpoint FROM search_index_watermark WHERE tree_id = $1", oldTree).Scan(&stored); err != nil || stored == nil {
		t.Fatalf("a start with the old key stored no checkpoint: %v", err)
	}
	useNewKey()

	inst2 := f.startDev(t, sameDir)
	if inst2.srv.Rekor().LogID() == oldLogID || inst2.srv.Log().TreeID() == oldTree {
		t.Fatal("the log kept its key or tree after the key changed")
	}
	newTree := inst2.srv.Log().TreeID()
	// The frozen tree stays readable as tiles, at its final checkpoint.
	if cp := string(inst2.get(fmt.Sprintf("/tiles/rekor/%d/checkpoint", oldTree), http.StatusOK)); !strings.Contains(cp, fmt.Sprintf("\n%d\n", oldInfo.TreeSize)) {
		t.Errorf("the frozen tree's tiles checkpoint:\n%s", cp)
	}

	// Log info: the new tree is active, the old one an inactive shard frozen
	// at its final checkpoint, signed by the old key.
	var info model.LogInfo
	if err := json.Unmarshal(inst2.get("/api/v1/log", http.StatusOK), &info); err != nil {
		t.Fatal(err)
	}
	if info.TreeID != strconv.FormatInt(newTree, 10) || info.TreeSize != 0 || len(info.InactiveShards) != 1 {
		t.Fatalf("log info after rotation: %+v", info)
	}
	shard := info.InactiveShards[0]
	if shard.TreeID != strconv.FormatInt(oldTree, 10) || shard.TreeSize != oldInfo.TreeSize || shard.RootHash != oldInfo.RootHash {
		t.Fatalf("inactive shard %+v, want tree %d frozen at %d/%s", shard, oldTree, oldInfo.TreeSize, oldInfo.RootHash)
	}
	if cp, err := note.Verify(shard.SignedTreeHead, "", oldPub); err != nil || int64(cp.Size) != oldInfo.TreeSize {
		t.Fatalf("the frozen shard's checkpoint is not the old key's at size %d: %+v %v", oldInfo.TreeSize, cp, err)
	}
	if got := inst2.get("/api/v1/log/publicKey?treeID="+shard.TreeID, http.StatusOK); !strings.Contains(string(got), "PUBLIC KEY") {
		t.Fatalf("publicKey?treeID of the old tree: %s", got)
	}
	oldPEM, _ := client.ParsePublicKeyPEM(inst2.get("/api/v1/log/publicKey?treeID="+shard.TreeID, http.StatusOK))
	if id, _ := model.LogID(oldPEM); id != oldLogID {
		t.Fatalf("publicKey?treeID=%s is key %s, want the retired key %s", shard.TreeID, id, oldLogID)
	}
	inst2.get("/api/v1/log/proof?treeID=99&lastSize=1", http.StatusBadRequest)
	var cons model.ConsistencyProof
	json.Unmarshal(inst2.get(fmt.Sprintf("/api/v1/log/proof?treeID=%d&firstSize=1&lastSize=%d", oldTree, oldInfo.TreeSize), http.StatusOK), &cons) //nolint:errcheck
	if cons.RootHash != oldInfo.RootHash || len(cons.Hashes) == 0 {
		t.Fatalf("consistency proof in the frozen tree: %+v", cons)
	}

	// New entries go to the new tree and number on from the old one; an
	// entry already in the old tree is accepted again, as in Rekor.
	client2 := client.NewLog(inst2.http.URL, client.WithLogPublicKey(oldPub, inst2.pub))
	redo, err := client2.Upload(ctx, again)
	if err != nil {
		t.Fatalf("re-logging an entry of the frozen tree: %v", err)
	}
	if redo.LogIndex != oldInfo.TreeSize || redo.Verification.InclusionProof.LogIndex != 0 || !strings.HasPrefix(redo.ID, fmt.Sprintf("%016x", newTree)) {
		t.Fatalf("first entry of the new tree: index %d, proof index %d, ID %s; want %d, 0, tree %x",
			redo.LogIndex, redo.Verification.InclusionProof.LogIndex, redo.ID, oldInfo.TreeSize, newTree)
	}
	after := []byte("logged under the second key")
	b2 := timestampedBundle(t, inst2, "after@example.com", after)

	// Old entries are served with the old key's SET and checkpoint, by
	// index and by either form of ID (a bare UUID finds the newest copy
	// first, as in Rekor), and found by search.
	onlyOld := b1.VerificationMaterial.TlogEntries[0]
	onlyOldID := fmt.Sprintf("%016x%x", oldTree, rfc6962.DefaultHasher.HashLeaf(onlyOld.CanonicalizedBody))
	for _, tt := range []struct {
		name string
		get  func() (*client.Entry, error)
		want *client.Entry
	}{
		{"index", func() (*client.Entry, error) { return client2.GetByIndex(ctx, old.LogIndex) }, old},
		{"80-hex ID", func() (*client.Entry, error) { return client2.GetByUUID(ctx, old.ID) }, old},
		{"64-hex UUID in both trees", func() (*client.Entry, error) { return client2.GetByUUID(ctx, old.ID[16:]) }, redo},
		{"64-hex UUID in the old tree", func() (*client.Entry, error) { return client2.GetByUUID(ctx, onlyOldID[16:]) },
			&client.Entry{ID: onlyOldID, LogEntryAnon: model.LogEntryAnon{LogID: oldLogID, LogIndex: onlyOld.LogIndex}}},
	} {
		e, err := tt.get()
		if err != nil {
			t.Fatalf("entry by %s: %v", tt.name, err)
		}
		if e.ID != tt.want.ID || e.LogID != tt.want.LogID || e.LogIndex != tt.want.LogIndex {
			t.Fatalf("entry by %s: %s log %s index %d, want %s log %s index %d", tt.name, e.ID, e.LogID, e.LogIndex, tt.want.ID, tt.want.LogID, tt.want.LogIndex)
		}
		if err := client.VerifyEntry(e, oldPub, inst2.pub); err != nil {
			t.Fatalf("entry by %s does not verify with the log's keys: %v", tt.name, err)
		}
		if e.LogID == oldLogID {
			if err := client.VerifyEntry(e, inst2.pub); err == nil {
				t.Fatalf("old entry by %s verified with the new key alone", tt.name)
			}
		}
	}
	e, err := client2.GetByIndex(ctx, oldInfo.TreeSize)
	if err != nil || e.ID != redo.ID {
		t.Fatalf("index %d after rotation: %+v %v, want %s", oldInfo.TreeSize, e, err, redo.ID)
	}
	if _, err := client2.GetByIndex(ctx, oldInfo.TreeSize+10); err == nil {
		t.Fatal("an index past the end was found")
	}
	leaf, _ := old.LeafHash()
	ids, err := client2.Search(ctx, model.SearchIndex{Hash: "sha256:" + hex.EncodeToString(againDigest)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 2 {
		t.Fatalf("search across trees found %v, want the old and the new copy of %x", ids, leaf)
	}

	// sigstore-go: both keys in the trusted root, the old window closed;
	// the bundle from before, and the old entry as served now, verify.
	trJSON := inst2.get("/api/v1/trust/trusted_root.json", http.StatusOK)
	tr, err := root.NewTrustedRootFromJSON(trJSON)
	if err != nil {
		t.Fatal(err)
	}
	logs := tr.RekorLogs()
	if len(logs) != 2 || logs[oldLogID] == nil || logs[oldLogID].ValidityPeriodEnd.IsZero() || !logs[inst2.srv.Rekor().LogID()].ValidityPeriodEnd.IsZero() {
		t.Fatalf("trusted root tlogs after rotation: %+v", logs)
	}
	if _, err := verifyBundle(t, trJSON, b1, before, issuer1, "before@example.com"); err != nil {
		t.Fatalf("the bundle logged before the rotation no longer verifies: %v", err)
	}
	if _, err := verifyBundle(t, trJSON, b2, after, inst2.srv.DevIssuer().URL(), "after@example.com"); err != nil {
		t.Fatalf("a bundle logged after the rotation does not verify: %v", err)
	}
	entry1 := b1.VerificationMaterial.TlogEntries[0]
	served, err := client2.GetByIndex(ctx, entry1.LogIndex)
	if err != nil {
		t.Fatal(err)
	}
	refetched := &bundle.Bundle{Bundle: proto.Clone(b1.Bundle).(*protobundle.Bundle)}
	refetched.VerificationMaterial.TlogEntries = sigstoreEntry(t, served).TlogEntries
	if _, err := verifyBundle(t, trJSON, refetched, before, issuer1, "before@example.com"); err != nil {
		t.Fatalf("the old entry as served after the rotation does not verify: %v", err)
	}
	trimmed := withoutRetired(t, trJSON, "tlogs")
	if _, err := verifyBundle(t, trimmed, b1, before, issuer1, "before@example.com"); err == nil {
		t.Fatal("the old entry verified without the retired log key")
	}
}
