package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
)

// FuzzParseBundle feeds the bundle parser what a file or a registry layer
// may hold: it must return an error, never panic, and what it accepts must
// survive the reads verification starts with.
func FuzzParseBundle(f *testing.F) {
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`))
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"x"},"tlogEntries":[]},"messageSignature":{"messageDigest":{"algorithm":"SHA2_256","digest":"AAAA"},"signature":"AAAA"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := parseBundle(data)
		if err != nil {
			return
		}
		b.VerificationContent() //nolint:errcheck
		b.TlogEntries()         //nolint:errcheck
		b.SignatureContent()    //nolint:errcheck
		b.Timestamps()          //nolint:errcheck
	})
}

// FuzzLegacyBundle feeds the reader of cosign's legacy .sig layers
// (payload bytes and annotations from a registry) what a registry may
// hold: errors, never panics.
func FuzzLegacyBundle(f *testing.F) {
	f.Add([]byte(`{"critical":{}}`), "c2ln", "", "", `{"SignedEntryTimestamp":"AAAA","Payload":{"body":"e30=","integratedTime":1,"logIndex":0,"logID":"00"}}`, "")
	f.Add([]byte(`{}`), "", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "", "", `{"SignedRFC3161Timestamp":"AAAA"}`)
	f.Fuzz(func(t *testing.T, payload []byte, sig, cert, chain, rekor, tsa string) {
		ann := map[string]string{annSignature: sig, annCertificate: cert, annChain: chain, annBundle: rekor, annRFC3161: tsa}
		b, err := legacyBundle(payload, nil, ann)
		if err == nil && b == nil {
			t.Fatal("no bundle and no error")
		}
		var env envelopeJSON
		if json.Unmarshal(payload, &env) == nil {
			b, err = legacyBundle(nil, &env, ann)
		}
		if err == nil && b == nil {
			t.Fatal("no bundle and no error")
		}
		_ = checkSimpleSigning(payload, mustDigest(t), map[string]string{"k": "v"})
	})
}

func mustDigest(t *testing.T) name.Digest {
	d, err := name.NewDigest("registry.example/app@sha256:" + strings.Repeat("ab", 32))
	if err != nil {
		t.Fatal(err)
	}
	return d
}
