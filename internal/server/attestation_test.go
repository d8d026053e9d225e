package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	gocose "github.com/veraison/go-cose"

	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/log/rekorapi/model"
)

// Attestations (here COSE messages) are stored with their entries, durably,
// and returned on every read, as Rekor returns them; one over
// log.max_attestation_bytes is logged without it. Entries of kinds without
// attestations have no attestation field.
func TestAttestationsAreStoredAndServed(t *testing.T) {
	f := newFixture(t)
	const limit = 600
	small := func(c *config.Config) { c.Log.MaxAttestationBytes = limit }
	inst := f.start(t, small)
	s := newSigner(t)
	message := func(payload []byte) []byte {
		signer, err := gocose.NewSigner(gocose.AlgorithmES256, s.key)
		if err != nil {
			t.Fatal(err)
		}
		m := gocose.NewSign1Message()
		m.Headers.Protected.SetAlgorithm(gocose.AlgorithmES256)
		m.Payload = payload
		if err := m.Sign(rand.Reader, nil, signer); err != nil {
			t.Fatal(err)
		}
		b, _ := m.MarshalCBOR()
		return b
	}
	propose := func(msg []byte) []byte {
		b, _ := json.Marshal(map[string]any{"kind": "cose", "apiVersion": "0.0.1", "spec": map[string]any{"message": msg, "publicKey": s.pubPEM, "data": map[string]any{}}})
		return b
	}
	kept := message([]byte("a small statement"))
	dropped := message(bytes.Repeat([]byte("x"), limit))
	if len(kept) > limit || len(dropped) <= limit {
		t.Fatalf("messages of %d and %d bytes around a limit of %d", len(kept), len(dropped), limit)
	}
	var ids []string
	for _, msg := range [][]byte{kept, dropped} {
		resp, body := inst.post("/api/v1/log/entries", propose(msg), http.StatusCreated)
		var le model.LogEntry
		if err := json.Unmarshal(body, &le); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, resp.Header.Get("ETag"))
	}
	hr, _, _ := s.hashedRekord(t, []byte("no attestation here"), nil)
	resp, _ := inst.post("/api/v1/log/entries", hr, http.StatusCreated)
	ids = append(ids, resp.Header.Get("ETag"))

	check := func(inst *instance, when string) {
		t.Helper()
		for i, want := range [][]byte{kept, nil, nil} {
			reads := map[string][]byte{
				"by UUID":  inst.get("/api/v1/log/entries/"+ids[i], http.StatusOK),
				"by index": inst.get(fmt.Sprintf("/api/v1/log/entries?logIndex=%d", i), http.StatusOK),
			}
			_, retrieved := inst.post("/api/v1/log/entries/retrieve", []byte(`{"entryUUIDs":["`+ids[i]+`"]}`), http.StatusOK)
			var list []model.LogEntry
			json.Unmarshal(retrieved, &list) //nolint:errcheck
			if len(list) == 1 {
				reads["retrieve"], _ = json.Marshal(list[0])
			}
			for how, body := range reads {
				var le model.LogEntry
				if err := json.Unmarshal(body, &le); err != nil || len(le) != 1 {
					t.Fatalf("%s, entry %d %s: %v %s", when, i, how, err, body)
				}
				for _, e := range le {
					switch {
					case want == nil && e.Attestation != nil:
						t.Errorf("%s, entry %d %s: an attestation of %d bytes, want none", when, i, how, len(e.Attestation.Data))
					case want != nil && (e.Attestation == nil || !bytes.Equal(e.Attestation.Data, want)):
						t.Errorf("%s, entry %d %s: attestation %v, want the message", when, i, how, e.Attestation)
					}
				}
				if want == nil && bytes.Contains(body, []byte(`"attestation"`)) {
					t.Errorf("%s, entry %d %s: an attestation field: %s", when, i, how, body)
				}
			}
		}
		// The client verifies entries that carry one.
		if _, err := inst.client.GetByUUID(context.Background(), ids[0]); err != nil {
			t.Errorf("%s: the client refuses an entry with an attestation: %v", when, err)
		}
	}
	check(inst, "served")
	inst.stop()
	check(f.start(t, small), "after a restart")
}
