package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/internal/db"
	"github.com/signet-dev/signet/internal/db/dbtest"
	"github.com/signet-dev/signet/internal/keys"
	"github.com/signet-dev/signet/log/note"
	"github.com/signet-dev/signet/log/rekorapi/model"
)

// An instance made by the server of the schema before (testdata/upgrade-0011,
// see its README) is restored as an operator would restore a backup, and
// the current server, migrating it at start-up, serves what it served:
// the same tree and root, its signed checkpoint still verifying, every entry
// with its SET and inclusion proof, its search index; appends go on,
// consistent with the old checkpoint; the database is recorded as the
// production instance it was.
func TestUpgradeFromTheSchemaBefore(t *testing.T) {
	bin, err := db.FindBinDir()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dir := "testdata/upgrade-0011"
	var old model.LogInfo
	raw, err := os.ReadFile(filepath.Join(dir, "checkpoint.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &old); err != nil {
		t.Fatal(err)
	}
	restored := dbtest.NewURL(t)
	if out, err := exec.Command(filepath.Join(bin, "pg_restore"), "--dbname="+restored, "--no-owner", "--exit-on-error", "--single-transaction", filepath.Join(dir, "signet.dump")).CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v\n%s", err, out)
	}
	keyPath, _ := filepath.Abs(filepath.Join(dir, "log.pem"))
	pwFile := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pwFile, []byte("upgrade-test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := fixture{dbURL: restored, keyPath: keyPath}
	inst := f.start(t, func(c *config.Config) {
		c.Hostname = "upgrade.test"
		c.Log.Signer = keys.FileURI(keyPath, keys.PasswordSource{File: pwFile})
	})

	info, _, err := inst.client.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.TreeID != old.TreeID || info.TreeSize != old.TreeSize || info.RootHash != old.RootHash {
		t.Fatalf("after the upgrade: tree %s size %d root %s; before: tree %s size %d root %s", info.TreeID, info.TreeSize, info.RootHash, old.TreeID, old.TreeSize, old.RootHash)
	}
	oldCP, err := note.Verify(old.SignedTreeHead, "", inst.pub)
	if err != nil {
		t.Fatalf("the old signed checkpoint with the log key: %v", err)
	}
	// Every entry is found by its artifact's hash, under its own ID: the
	// the index rows survive the upgrade.
	for i := int64(0); i < old.TreeSize; i++ {
		e, err := inst.client.GetByIndex(ctx, i) // SET and inclusion proof checked
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		body, _ := base64.StdEncoding.DecodeString(e.Body)
		var hr struct {
			Spec struct {
				Data struct {
					Hash struct{ Algorithm, Value string } `json:"hash"`
				} `json:"data"`
			} `json:"spec"`
		}
		if err := json.Unmarshal(body, &hr); err != nil {
			t.Fatalf("entry %d's body: %v", i, err)
		}
		hash := hr.Spec.Data.Hash.Algorithm + ":" + hr.Spec.Data.Hash.Value
		if uuids, err := inst.client.Search(ctx, model.SearchIndex{Hash: hash}); err != nil || len(uuids) != 1 || uuids[0] != e.ID {
			t.Fatalf("search by entry %d's hash %s: %v (%v), want %s", i, hash, uuids, err, e.ID)
		}
	}

	body, _, _ := newSigner(t).hashedRekord(t, []byte("after the upgrade"), nil)
	if _, err := inst.client.Upload(ctx, body); err != nil {
		t.Fatal(err)
	}
	_, now, err := inst.client.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := inst.client.Consistency(ctx, oldCP.Size, now.Size, oldCP.RootHash, now.RootHash); err != nil || now.Size != oldCP.Size+1 {
		t.Fatalf("consistency from the old checkpoint (%d) to %d: %v", oldCP.Size, now.Size, err)
	}
	if kind := inst.rowCount(t, "SELECT count(*) FROM signet_instance WHERE kind = 'production'"); kind != 1 {
		t.Errorf("the upgraded database is not recorded as a production instance")
	}
	if !strings.HasPrefix(old.SignedTreeHead, "upgrade.test - "+old.TreeID+"\n") {
		t.Errorf("fixture checkpoint origin: %q", old.SignedTreeHead)
	}
}
