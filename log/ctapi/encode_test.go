package ctapi

import (
	"bytes"
	"crypto/rand"
	"testing"

	ct "github.com/google/certificate-transparency-go"
	"github.com/google/certificate-transparency-go/tls"
)

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) //nolint:errcheck
	return b
}

// The cryptobyte encoders produce exactly what certificate-transparency-
// go's TLS encoder does for the same entries, and the leaf is the SCT's
// signature input.
func TestEncodersMatchCTGo(t *testing.T) {
	for _, tc := range []struct {
		tbs   int
		chain []int
		stamp uint64
	}{
		{tbs: 1, chain: nil, stamp: 0},
		{tbs: 300, chain: []int{500}, stamp: 1700000000000},
		{tbs: 70000, chain: []int{600, 700, 1}, stamp: 1<<63 + 5},
	} {
		var keyHash [32]byte
		copy(keyHash[:], randomBytes(32))
		tbs := randomBytes(tc.tbs)
		leaf := &ct.MerkleTreeLeaf{Version: ct.V1, LeafType: ct.TimestampedEntryLeafType, TimestampedEntry: &ct.TimestampedEntry{
			Timestamp: tc.stamp, EntryType: ct.PrecertLogEntryType,
			PrecertEntry: &ct.PreCert{IssuerKeyHash: keyHash, TBSCertificate: tbs},
		}}
		want, err := tls.Marshal(*leaf)
		if err != nil {
			t.Fatal(err)
		}
		got, err := encodePrecertLeaf(keyHash, tbs, tc.stamp)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("leaf (tbs %d bytes): %v\n got  %x\n want %x", tc.tbs, err, got[:min(len(got), 64)], want[:min(len(want), 64)])
		}
		input, err := ct.SerializeSCTSignatureInput(ct.SignedCertificateTimestamp{SCTVersion: ct.V1, Timestamp: tc.stamp}, ct.LogEntry{Leaf: *leaf})
		if err != nil || !bytes.Equal(got, input) {
			t.Fatalf("the leaf is not the SCT signature input: %v", err)
		}

		precert := randomBytes(400)
		var chain [][]byte
		var rest []ct.ASN1Cert
		for _, n := range tc.chain {
			c := randomBytes(n)
			chain = append(chain, c)
			rest = append(rest, ct.ASN1Cert{Data: c})
		}
		wantExtra, err := tls.Marshal(ct.PrecertChainEntry{PreCertificate: ct.ASN1Cert{Data: precert}, CertificateChain: rest})
		if err != nil {
			t.Fatal(err)
		}
		gotExtra, err := encodePrecertChainEntry(precert, chain)
		if err != nil || !bytes.Equal(gotExtra, wantExtra) {
			t.Fatalf("chain entry (%v): %v", tc.chain, err)
		}
	}
}
