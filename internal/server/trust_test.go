package server_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/root"
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
