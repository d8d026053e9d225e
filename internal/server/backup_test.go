package server_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/signet-dev/signet/client"
	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/internal/db"
	"github.com/signet-dev/signet/internal/db/dbtest"
)

// The backup and restore of docs/operations.md, with its commands: an
// instance is dumped with pg_dump while it runs, restored with pg_restore
// into a new database, and a server on the copy (same keys) serves every
// entry with an inclusion proof and SET that verify, the same TUF root and
// audit rows, and, after one more append, a consistency proof from the
// checkpoint taken before the dump.
func TestBackupAndRestore(t *testing.T) {
	bin, err := db.FindBinDir()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	f := newFixture(t)
	dataDir := t.TempDir()
	sameDir := func(c *config.Config) { c.DataDir = dataDir }
	inst := f.startDev(t, sameDir)
	s := newSigner(t)
	var uuids []string
	for i := 0; i < 12; i++ {
		body, _, _ := s.hashedRekord(t, []byte{byte(i), 'b', 'a', 'c', 'k'}, nil)
		e, err := inst.client.Upload(ctx, body)
		if err != nil {
			t.Fatal(err)
		}
		uuids = append(uuids, e.ID)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := client.NewCA(inst.http.URL).SigningCertificate(ctx, inst.devToken("email=backup@example.com"), key); err != nil {
		t.Fatal(err)
	}
	before, beforeCP, err := inst.client.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tufRoot := inst.get("/tuf/1.root.json", http.StatusOK)
	auditRows := inst.rowCount(t, "SELECT count(*) FROM ca_certificates")

	// The documented commands, while the server runs: pg_dump takes a
	// consistent snapshot.
	dump := filepath.Join(t.TempDir(), "signet.dump")
	if out, err := exec.Command(filepath.Join(bin, "pg_dump"), "--format=custom", "--file="+dump, f.dbURL).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}
	inst.stop()
	restored := dbtest.NewURL(t)
	if out, err := exec.Command(filepath.Join(bin, "pg_restore"), "--dbname="+restored, "--no-owner", "--exit-on-error", "--single-transaction", dump).CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v\n%s", err, out)
	}

	copyInst := fixture{dbURL: restored, keyPath: f.keyPath}.startDev(t, sameDir)
	after, _, err := copyInst.client.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.TreeID != before.TreeID || after.TreeSize != before.TreeSize || after.RootHash != before.RootHash {
		t.Fatalf("restored log: tree %s size %d root %s, want tree %s size %d root %s", after.TreeID, after.TreeSize, after.RootHash, before.TreeID, before.TreeSize, before.RootHash)
	}
	for i, id := range uuids {
		// GetByIndex verifies the entry's SET and inclusion proof.
		e, err := copyInst.client.GetByIndex(ctx, int64(i))
		if err != nil {
			t.Fatalf("entry %d from the restored log: %v", i, err)
		}
		if e.ID != id {
			t.Fatalf("entry %d is %s, want %s", i, e.ID, id)
		}
	}
	if got := copyInst.get("/tuf/1.root.json", http.StatusOK); !bytes.Equal(got, tufRoot) {
		t.Error("the restored instance serves another TUF root")
	}
	if got := copyInst.rowCount(t, "SELECT count(*) FROM ca_certificates"); got != auditRows || got != 1 {
		t.Errorf("restored audit rows: %d, want %d", got, auditRows)
	}

	body, _, _ := s.hashedRekord(t, []byte("after the restore"), nil)
	if _, err := copyInst.client.Upload(ctx, body); err != nil {
		t.Fatal(err)
	}
	_, grown, err := copyInst.client.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Both checkpoints as signed (Info verified them with the log's key).
	if err := copyInst.client.Consistency(ctx, beforeCP.Size, grown.Size, beforeCP.RootHash, grown.RootHash); err != nil || grown.Size != beforeCP.Size+1 {
		t.Fatalf("consistency from the checkpoint before the dump (%d) to %d: %v", beforeCP.Size, grown.Size, err)
	}
}
