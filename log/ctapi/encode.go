package ctapi

import (
	"golang.org/x/crypto/cryptobyte"
)

// The in-process CA logs a precertificate per certificate it issues, and
// certificate-transparency-go's reflection-driven TLS encoder cost a tenth
// of the CPU of each. These encode the two structures of that path with
// cryptobyte; the tests check them byte for byte against ct-go's.

// encodePrecertLeaf is the RFC 6962 MerkleTreeLeaf of a precertificate
// entry. For v1 it is also, byte for byte, the SCT's signature input
// (version 0 and signature_type certificate_timestamp 0 take the places of
// version 0 and leaf_type timestamped_entry 0).
func encodePrecertLeaf(issuerKeyHash [32]byte, tbs []byte, timestamp uint64) ([]byte, error) {
	b := cryptobyte.NewBuilder(make([]byte, 0, 50+len(tbs)))
	b.AddUint8(0) // v1
	b.AddUint8(0) // timestamped_entry
	b.AddUint64(timestamp)
	b.AddUint16(1) // precert_entry
	b.AddBytes(issuerKeyHash[:])
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(tbs) })
	b.AddUint16(0) // no extensions
	return b.Bytes()
}

// encodePrecertChainEntry is the PrecertChainEntry kept as the leaf's extra
// data for get-entries: the precertificate, then its issuer's chain.
func encodePrecertChainEntry(precert []byte, chain [][]byte) ([]byte, error) {
	size := 6 + len(precert)
	for _, c := range chain {
		size += 3 + len(c)
	}
	b := cryptobyte.NewBuilder(make([]byte, 0, size))
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(precert) })
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, c := range chain {
			b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(c) })
		}
	})
	return b.Bytes()
}
