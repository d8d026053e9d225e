package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/signet-dev/signet/types"
	"github.com/signet-dev/signet/types/alpine"
	"github.com/signet-dev/signet/types/cose"
	"github.com/signet-dev/signet/types/dsse"
	"github.com/signet-dev/signet/types/hashedrekord"
	"github.com/signet-dev/signet/types/helm"
	"github.com/signet-dev/signet/types/intoto"
	"github.com/signet-dev/signet/types/jar"
	"github.com/signet-dev/signet/types/rekord"
	"github.com/signet-dev/signet/types/rpm"
	tuftype "github.com/signet-dev/signet/types/tuf"
)

// Every generator the append-kinds scenario times makes entries the log
// accepts, each one different (rfc3161's come from a live TSA and are
// exercised by make bench itself).
func TestKindMakersMakeValidEntries(t *testing.T) {
	t.Chdir("../..") // rpmBase is relative to the repository's root
	hr, err := hashedrekord.Kind()
	if err != nil {
		t.Fatal(err)
	}
	reg := types.NewRegistry(hr, dsse.Kind(), rekord.Kind(), cose.Kind(), intoto.Kind(), tuftype.Kind(), alpine.Kind(), helm.Kind(), rpm.Kind(), jar.Kind())
	for _, kind := range entryKinds {
		if kind == "rfc3161" {
			continue
		}
		t.Run(kind, func(t *testing.T) {
			sign, err := newKindMaker(context.Background(), &state{}, kind)
			if err != nil {
				t.Fatal(err)
			}
			var leaves [][]byte
			for i := range 2 {
				body, err := sign(i, 42)
				if err != nil {
					t.Fatal(err)
				}
				e, err := reg.ParseInsertable(context.Background(), body)
				if err != nil {
					t.Fatalf("entry %d refused: %v", i, err)
				}
				leaves = append(leaves, e.Canonical())
			}
			if bytes.Equal(leaves[0], leaves[1]) {
				t.Fatal("two entries with one leaf: the pool would be all duplicates")
			}
		})
	}
}
