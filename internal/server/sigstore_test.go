package server_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/rekor/pkg/generated/models"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgtlog "github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/signet-dev/signet/client"
)

// sigstoreEntry turns our log entry into sigstore-go's form, which parses the
// body with Rekor's own entry types.
func sigstoreEntry(t *testing.T, e *client.Entry) *protobundle.VerificationMaterial {
	t.Helper()
	body, err := base64.StdEncoding.DecodeString(e.Body)
	if err != nil {
		t.Fatal(err)
	}
	logID, _ := hex.DecodeString(e.LogID)
	ip := e.Verification.InclusionProof
	entry, err := sgtlog.NewEntry(body, e.IntegratedTime, e.LogIndex, logID, e.Verification.SignedEntryTimestamp, &models.InclusionProof{
		Checkpoint: &ip.Checkpoint, Hashes: ip.Hashes, LogIndex: &ip.LogIndex, RootHash: &ip.RootHash, TreeSize: &ip.TreeSize,
	})
	if err != nil {
		t.Fatalf("sigstore-go cannot parse our entry: %v", err)
	}
	if err := sgtlog.ValidateEntry(entry); err != nil {
		t.Fatalf("sigstore-go rejects our entry: %v", err)
	}
	// What a bundle carries beyond the parsed entry, as cosign fills it in.
	tle := entry.TransparencyLogEntry()
	// NewEntry gives the proof the entry's index; a bundle (cosign fills it
	// with rekor's pkg/tle) carries the proof's own, tree-local index, which
	// differs once the log has inactive shards.
	tle.InclusionProof.LogIndex = ip.LogIndex
	var kv struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
	}
	if err := json.Unmarshal(body, &kv); err != nil {
		t.Fatal(err)
	}
	tle.KindVersion = &protorekor.KindVersion{Kind: kv.Kind, Version: kv.APIVersion}
	tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: e.Verification.SignedEntryTimestamp}
	return &protobundle.VerificationMaterial{
		Content:     &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{Hint: "client-key"}},
		TlogEntries: []*protorekor.TransparencyLogEntry{tle},
	}
}

// trustedMaterial trusts our log key and the client's key, as a verifier
// configured for this instance would.
func trustedMaterial(t *testing.T, logPub crypto.PublicKey, logID string, clientKey *ecdsa.PublicKey) root.TrustedMaterial {
	t.Helper()
	id, _ := hex.DecodeString(logID)
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, nil, nil, nil, map[string]*root.TransparencyLog{
		logID: {
			BaseURL: "http://signet.test", ID: id, ValidityPeriodStart: time.Now().Add(-time.Hour),
			HashFunc: crypto.SHA256, PublicKey: logPub, SignatureHashFunc: crypto.SHA256,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	v, err := signature.LoadECDSAVerifier(clientKey, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	keys := root.NewTrustedPublicKeyMaterialFromMapping(map[string]*root.ExpiringKey{
		"client-key": root.NewExpiringKey(v, time.Time{}, time.Time{}),
	})
	return root.TrustedMaterialCollection{tr, keys}
}

func sigstoreVerify(t *testing.T, pb *protobundle.Bundle, tm root.TrustedMaterial, artifactPolicy verify.ArtifactPolicyOption) {
	t.Helper()
	b, err := bundle.NewBundle(pb)
	if err != nil {
		t.Fatalf("bundle: %v", err)
	}
	v, err := verify.NewVerifier(tm, verify.WithTransparencyLog(1), verify.WithIntegratedTimestamps(1))
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.Verify(b, verify.NewPolicy(artifactPolicy, verify.WithKey()))
	if err != nil {
		t.Fatalf("sigstore-go verification failed: %v", err)
	}
	if len(res.VerifiedTimestamps) != 1 || res.VerifiedTimestamps[0].Type != "Tlog" {
		t.Fatalf("verified timestamps = %+v, want one from the log", res.VerifiedTimestamps)
	}
}

// The strongest compatibility check: a Sigstore bundle built from our
// response verifies with sigstore-go (SET, inclusion proof, checkpoint, and
// the entry matching the signature).
func TestSigstoreGoVerifiesHashedRekordBundle(t *testing.T) {
	inst := newFixture(t).start(t)
	s := newSigner(t)
	artifact := []byte("signet hashedrekord artifact")
	proposal, digest, sig := s.hashedRekord(t, artifact, nil)
	// A second entry first so the proof is not trivial.
	other, _, _ := newSigner(t).hashedRekord(t, []byte("another"), nil)
	if _, err := inst.client.Upload(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	e, err := inst.client.Upload(context.Background(), proposal)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	if e.LogIndex != 1 || e.Verification.InclusionProof.TreeSize != 2 || len(e.Verification.InclusionProof.Hashes) != 1 {
		t.Fatalf("entry index %d, tree size %d, %d proof hashes; want 1, 2, 1", e.LogIndex, e.Verification.InclusionProof.TreeSize, len(e.Verification.InclusionProof.Hashes))
	}
	pb := &protobundle.Bundle{
		MediaType:            "application/vnd.dev.sigstore.bundle.v0.3+json",
		VerificationMaterial: sigstoreEntry(t, e),
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: digest},
			Signature:     sig,
		}},
	}
	tm := trustedMaterial(t, inst.pub, e.LogID, &s.key.PublicKey)
	sigstoreVerify(t, pb, tm, verify.WithArtifact(bytes.NewReader(artifact)))

	// And it must fail for a different artifact: the test can fail.
	b, _ := bundle.NewBundle(pb)
	v, _ := verify.NewVerifier(tm, verify.WithTransparencyLog(1), verify.WithIntegratedTimestamps(1))
	if _, err := v.Verify(b, verify.NewPolicy(verify.WithArtifact(bytes.NewReader([]byte("tampered"))), verify.WithKey())); err == nil {
		t.Fatal("sigstore-go accepted a bundle for the wrong artifact")
	}
}

func TestSigstoreGoVerifiesDSSEBundle(t *testing.T) {
	inst := newFixture(t).start(t)
	s := newSigner(t)
	artifact := []byte("signet dsse artifact")
	proposal, env := s.dsse(t, artifact)
	e, err := inst.client.Upload(context.Background(), proposal)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	payload, err := env.DecodeB64Payload()
	if err != nil {
		t.Fatal(err)
	}
	sig, err := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
	if err != nil {
		t.Fatal(err)
	}
	pb := &protobundle.Bundle{
		MediaType:            "application/vnd.dev.sigstore.bundle.v0.3+json",
		VerificationMaterial: sigstoreEntry(t, e),
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: payload, PayloadType: env.PayloadType,
			Signatures: []*protodsse.Signature{{Sig: sig, Keyid: env.Signatures[0].KeyID}},
		}},
	}
	tm := trustedMaterial(t, inst.pub, e.LogID, &s.key.PublicKey)
	digest := sha256Sum(artifact)
	sigstoreVerify(t, pb, tm, verify.WithArtifactDigest("sha256", digest))
}
