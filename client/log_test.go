package client

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// A proof that does not lead to the expected root says so in hex, not as
// the Go byte slices transparency-dev/merkle prints.
func TestReadableProofError(t *testing.T) {
	leaf := rfc6962.DefaultHasher.HashLeaf([]byte("entry"))
	wrongRoot := bytes.Repeat([]byte{0xab}, 32)
	err := proof.VerifyInclusion(rfc6962.DefaultHasher, 0, 1, leaf, nil, wrongRoot)
	if err == nil {
		t.Fatal("a wrong root verified")
	}
	got := readableProofError(err).Error()
	want := "the proof leads to root " + hex.EncodeToString(leaf) + ", not the expected " + strings.Repeat("ab", 32)
	if got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}
