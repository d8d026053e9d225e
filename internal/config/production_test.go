package config

import (
	"slices"
	"testing"

	"github.com/signet-dev/signet/ca/identity"
)

func TestProductionSettings(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want []string
	}{
		{name: "defaults", edit: func(*Config) {}},
		{name: "memory signers are throwaway keys", edit: func(c *Config) {
			c.CA.Signer, c.Timestamp.Signer, c.Log.Signer = "memory:", "memory:", "memory:"
		}},
		{name: "dev-only knobs", edit: func(c *Config) {
			c.Listen, c.DataDir, c.CA.CT, c.Log.EntryTypes = "127.0.0.1:9", "/tmp/x", "none", []string{"dsse"}
		}},
		{name: "database", edit: func(c *Config) { c.Database.URL = "postgres://db/signet" }, want: []string{"database.url"}},
		{name: "every key", edit: func(c *Config) {
			c.Log.Signer = "file:///k/log.pem"
			c.CA.Signer, c.CA.Chain = "pkcs11:token=ca", "/k/ca-chain.pem"
			c.Timestamp.Signer, c.Timestamp.Chain = "file:///k/tsa.pem", "/k/tsa-chain.pem"
			c.CT.Signer = "file:///k/ct.pem"
			c.TUF = TUF{RootSigner: "file:///k/r.pem", TargetsSigner: "file:///k/t.pem", SnapshotSigner: "file:///k/s.pem", TimestampSigner: "file:///k/ts.pem"}
		}, want: []string{"log.signer", "ca.signer", "ca.chain", "timestamp.signer", "timestamp.chain", "ct.signer",
			"tuf.root_signer", "tuf.targets_signer", "tuf.snapshot_signer", "tuf.timestamp_signer"}},
		{name: "issuers", edit: func(c *Config) {
			c.CA.Issuers = []identity.IssuerConfig{{URL: "https://accounts.google.com", Type: identity.TypeEmail, ClientID: "sigstore"}}
		}, want: []string{"ca.issuers"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Defaults()
			tc.edit(&c)
			if got := c.ProductionSettings(); !slices.Equal(got, tc.want) {
				t.Errorf("ProductionSettings() = %q, want %q", got, tc.want)
			}
		})
	}
}
