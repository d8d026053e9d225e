package monitor

import (
	"encoding/pem"
	"testing"

	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
)

// A certificate entry of a CT log reads as its identity; bytes that are
// not a leaf are an error.
func TestParseCTLeaf(t *testing.T) {
	certPEM, keySHA := workflowCert(t)
	block, _ := pem.Decode(certPEM)
	leaf, err := cttls.Marshal(ct.MerkleTreeLeaf{Version: ct.V1, LeafType: ct.TimestampedEntryLeafType, TimestampedEntry: &ct.TimestampedEntry{
		Timestamp: 1, EntryType: ct.X509LogEntryType, X509Entry: &ct.ASN1Cert{Data: block.Bytes},
	}})
	if err != nil {
		t.Fatal(err)
	}
	e, err := ParseCTLeaf(leaf)
	if err != nil || e.Kind != "x509" || len(e.Signers) != 1 {
		t.Fatalf("ParseCTLeaf = %+v, %v", e, err)
	}
	if s := e.Signers[0]; s.KeySHA256 != keySHA || s.Issuer != "https://token.actions.githubusercontent.com" || s.Repository != "https://github.com/acme/app" {
		t.Errorf("signer %+v", s)
	}
	for _, bad := range [][]byte{nil, []byte("not a leaf"), append(leaf, 0)} {
		if _, err := ParseCTLeaf(bad); err == nil {
			t.Errorf("ParseCTLeaf(%q) accepted it", bad)
		}
	}
}

// Any bytes a CT log's tiles carry give an entry or an error, not a panic.
func FuzzParseCTLeaf(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseCTLeaf(b) //nolint:errcheck
	})
}
