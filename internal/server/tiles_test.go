package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/signet-dev/signet/log/note"
)

// Both logs of an instance are served as tlog-tiles: the Rekor log's
// checkpoint is the one /api/v1/log signs, and its entry bundle holds the
// entries' canonical bodies in order.
func TestTilesOfTheInstanceLogs(t *testing.T) {
	ctx := context.Background()
	inst := newFixture(t).startDev(t)
	s := newSigner(t)
	var bodies [][]byte
	for i := 0; i < 3; i++ {
		body, _, _ := s.hashedRekord(t, []byte{'t', byte(i)}, nil)
		e, err := inst.client.Upload(ctx, body)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := base64.StdEncoding.DecodeString(e.Body)
		bodies = append(bodies, b)
	}
	info, cp, err := inst.client.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	signed := string(inst.get("/tiles/rekor/"+info.TreeID+"/checkpoint", http.StatusOK))
	got, err := note.Verify(signed, testHostname, inst.pub)
	if err != nil || got.Size != cp.Size || !bytes.Equal(got.RootHash, cp.RootHash) || got.Origin != testHostname+" - "+info.TreeID {
		t.Fatalf("tiles checkpoint %q: %v; /api/v1/log says %+v", signed, err, cp)
	}
	bundle := inst.get("/tiles/rekor/"+info.TreeID+"/tile/entries/000.p/3", http.StatusOK)
	for i, want := range bodies {
		n := int(binary.BigEndian.Uint16(bundle))
		if !bytes.Equal(bundle[2:2+n], want) {
			t.Fatalf("bundle entry %d: %q, want %q", i, bundle[2:2+n], want)
		}
		bundle = bundle[2+n:]
	}
	if len(bundle) != 0 {
		t.Fatalf("%d bytes after the bundle's entries", len(bundle))
	}
	if h := inst.get("/tiles/rekor/"+info.TreeID+"/tile/0/000.p/3", http.StatusOK); len(h) != 3*32 {
		t.Fatalf("level-0 tile of 3 hashes is %d bytes", len(h))
	}
	inst.get("/tiles/rekor/"+info.TreeID+"/tile/0/000.p/4", http.StatusNotFound)
	inst.get("/tiles/rekor/tile/0/000.p/3", http.StatusNotFound) // no tree named: no tiles
	var ctID int64
	if err := inst.srvPool(t).QueryRow(ctx, "SELECT tree_id FROM signet_logs WHERE name = 'ct' AND retired_at IS NULL").Scan(&ctID); err != nil {
		t.Fatal(err)
	}
	ctTree := strconv.FormatInt(ctID, 10)
	var index struct {
		Active string   `json:"active"`
		Frozen []string `json:"frozen"`
	}
	if err := json.Unmarshal(inst.get("/tiles/ct", http.StatusOK), &index); err != nil || index.Active != ctTree || len(index.Frozen) != 0 {
		t.Errorf("the CT log's tile index: %+v %v", index, err)
	}
	if ct := string(inst.get("/tiles/ct/"+ctTree+"/checkpoint", http.StatusOK)); !strings.Contains(ct, "\n0\n") {
		t.Errorf("the empty CT log's checkpoint:\n%s", ct)
	}
}
