package main

import "testing"

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
