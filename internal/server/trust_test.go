package server_test

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/tuf"
)

func TestTrustMaterialParsesWithSigstoreGo(t *testing.T) {
	inst := newFixture(t).startDev(t)
	trJSON := inst.get("/api/v1/trust/trusted_root.json", http.StatusOK)
	tr, err := root.NewTrustedRootFromJSON(trJSON)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.RekorLogs()) != 1 || len(tr.CTLogs()) != 1 || len(tr.FulcioCertificateAuthorities()) != 1 || len(tr.TimestampingAuthorities()) != 1 {
		t.Fatalf("trusted root has %d logs, %d CT logs, %d CAs, %d TSAs; want one of each",
			len(tr.RekorLogs()), len(tr.CTLogs()), len(tr.FulcioCertificateAuthorities()), len(tr.TimestampingAuthorities()))
	}
	logID := inst.srv.Rekor().LogID()
	if _, ok := tr.RekorLogs()[logID]; !ok {
		t.Fatalf("trusted root does not list log %s", logID)
	}
	sc, err := root.NewSigningConfigFromJSON(inst.get("/api/v1/trust/signing_config.json", http.StatusOK))
	if err != nil {
		t.Fatal(err)
	}
	base := inst.http.URL
	if got := sc.FulcioCertificateAuthorityURLs(); len(got) != 1 || got[0].URL != base {
		t.Fatalf("CA URLs %+v", got)
	}
	if got := sc.TimestampAuthorityURLs(); len(got) != 1 || got[0].URL != base+"/api/v1/timestamp" {
		t.Fatalf("TSA URLs %+v", got)
	}
	if got := sc.RekorLogURLs(); len(got) != 1 || got[0].URL != base || got[0].MajorAPIVersion != 1 {
		t.Fatalf("log URLs %+v", got)
	}
	if got := sc.OIDCProviderURLs(); len(got) != 1 || got[0].URL != inst.srv.DevIssuer().URL() {
		t.Fatalf("OIDC URLs %+v", got)
	}
	onDisk, err := os.ReadFile(filepath.Join(inst.srv.DataDir(), "trusted_root.json"))
	if err != nil || string(onDisk) != string(trJSON) {
		t.Fatalf("dev mode did not write the served trusted_root.json to the data directory: %v", err)
	}
}

// sigstore-go's TUF client, bootstrapped from the root.json dev mode writes,
// fetches the same trust material the instance serves directly.
func TestTUFRepositoryServesTrustMaterialToSigstoreGo(t *testing.T) {
	inst := newFixture(t).startDev(t)
	rootJSON, err := os.ReadFile(filepath.Join(inst.srv.DataDir(), "tuf-root.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rootJSON, inst.get("/tuf/1.root.json", http.StatusOK)) {
		t.Fatal("tuf-root.json differs from the served 1.root.json")
	}
	opts := tuf.DefaultOptions().WithRoot(rootJSON).WithRepositoryBaseURL(inst.http.URL + "/tuf").WithCachePath(t.TempDir())
	client, err := tuf.New(opts)
	if err != nil {
		t.Fatalf("TUF client: %v", err)
	}
	for target, path := range map[string]string{
		"trusted_root.json":        "/api/v1/trust/trusted_root.json",
		"signing_config.v0.2.json": "/api/v1/trust/signing_config.json",
	} {
		got, err := client.GetTarget(target)
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		if want := inst.get(path, http.StatusOK); !bytes.Equal(got, want) {
			t.Errorf("TUF target %s differs from %s", target, path)
		}
	}
	if _, err := root.GetTrustedRoot(client); err != nil {
		t.Fatalf("sigstore-go trusted root from TUF: %v", err)
	}
}
