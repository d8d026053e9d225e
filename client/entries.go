package client

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// HashedRekord builds a hashedrekord 0.0.1 proposed entry: a signature over
// an artifact digest (hashAlg sha256, sha384 or sha512) and the PEM public
// key or certificate that verifies it.
func HashedRekord(hashAlg string, digest, sig, verifierPEM []byte) (json.RawMessage, error) {
	return json.Marshal(map[string]any{
		"kind": "hashedrekord", "apiVersion": "0.0.1",
		"spec": map[string]any{
			"data":      map[string]any{"hash": map[string]string{"algorithm": hashAlg, "value": hex.EncodeToString(digest)}},
			"signature": map[string]any{"content": sig, "publicKey": map[string]any{"content": verifierPEM}},
		},
	})
}

// DSSE builds a dsse 0.0.1 proposed entry from a serialized DSSE envelope
// and the PEM keys or certificates that verify its signatures.
func DSSE(envelope []byte, verifierPEMs ...[]byte) (json.RawMessage, error) {
	return json.Marshal(map[string]any{
		"kind": "dsse", "apiVersion": "0.0.1",
		"spec": map[string]any{"proposedContent": map[string]any{"envelope": string(envelope), "verifiers": verifierPEMs}},
	})
}

// Rekord builds a rekord 0.0.1 proposed entry: the artifact itself, its
// detached signature and the key that made it, in pkiFormat (x509: a PEM key
// or certificate and a raw signature; ssh: an authorized_keys line and an
// `ssh-keygen -Y sign -n file` signature; pgp: an OpenPGP key and detached
// signature, armored or binary; minisign: a .pub file and a .minisig).
// The log keeps only the
// artifact's SHA-256, but needs the bytes to check the signature.
func Rekord(pkiFormat string, artifact, sig, key []byte) (json.RawMessage, error) {
	return json.Marshal(map[string]any{
		"kind": "rekord", "apiVersion": "0.0.1",
		"spec": map[string]any{
			"data":      map[string]any{"content": artifact},
			"signature": map[string]any{"format": pkiFormat, "content": sig, "publicKey": map[string]any{"content": key}},
		},
	})
}

// RFC3161 builds an rfc3161 0.0.1 proposed entry from a DER timestamp
// response.
func RFC3161(tsr []byte) (json.RawMessage, error) {
	return json.Marshal(map[string]any{
		"kind": "rfc3161", "apiVersion": "0.0.1",
		"spec": map[string]any{"tsr": map[string]any{"content": tsr}},
	})
}

// COSE builds a cose 0.0.1 proposed entry: a COSE_Sign1 message, the PEM
// key or certificate that verifies it, and the external AAD it was signed
// with (nil for none).
func COSE(message, verifierPEM, aad []byte) (json.RawMessage, error) {
	data := map[string]any{}
	if len(aad) > 0 {
		data["aad"] = aad
	}
	return json.Marshal(map[string]any{
		"kind": "cose", "apiVersion": "0.0.1",
		"spec": map[string]any{"message": message, "publicKey": verifierPEM, "data": data},
	})
}

// InTotoV001 builds an intoto 0.0.1 proposed entry: a serialized DSSE
// envelope and the PEM key or certificate that verifies it.
func InTotoV001(envelope, verifierPEM []byte) (json.RawMessage, error) {
	return json.Marshal(map[string]any{
		"kind": "intoto", "apiVersion": "0.0.1",
		"spec": map[string]any{"content": map[string]any{"envelope": string(envelope)}, "publicKey": verifierPEM},
	})
}

// InTotoV002 builds an intoto 0.0.2 proposed entry as cosign does: the
// envelope's payload and signatures base64-encoded once more, each
// signature with verifierPEM, and the envelope's SHA-256.
func InTotoV002(envelope, verifierPEM []byte) (json.RawMessage, error) {
	var env struct {
		PayloadType string `json:"payloadType"`
		Payload     string `json:"payload"`
		Signatures  []struct {
			KeyID string `json:"keyid"`
			Sig   string `json:"sig"`
		} `json:"signatures"`
	}
	if err := json.Unmarshal(envelope, &env); err != nil {
		return nil, fmt.Errorf("not a DSSE envelope: %w", err)
	}
	sigs := make([]map[string]any, len(env.Signatures))
	for i, s := range env.Signatures {
		sigs[i] = map[string]any{"sig": []byte(s.Sig), "publicKey": verifierPEM}
		if s.KeyID != "" {
			sigs[i]["keyid"] = s.KeyID
		}
	}
	sum := sha256.Sum256(envelope)
	return json.Marshal(map[string]any{
		"kind": "intoto", "apiVersion": "0.0.2",
		"spec": map[string]any{"content": map[string]any{
			"envelope": map[string]any{"payload": []byte(env.Payload), "payloadType": env.PayloadType, "signatures": sigs},
			"hash":     map[string]string{"algorithm": "sha256", "value": hex.EncodeToString(sum[:])},
		}},
	})
}

// TUF builds a tuf 0.0.1 proposed entry: a piece of TUF metadata and the
// root that signs its role, both as JSON.
func TUF(metadata, root []byte) (json.RawMessage, error) {
	for name, b := range map[string][]byte{"metadata": metadata, "root": root} {
		if !json.Valid(b) {
			return nil, fmt.Errorf("the TUF %s is not JSON", name)
		}
	}
	return json.Marshal(map[string]any{
		"kind": "tuf", "apiVersion": "0.0.1",
		"spec": map[string]any{"metadata": map[string]any{"content": json.RawMessage(metadata)}, "root": map[string]any{"content": json.RawMessage(root)}},
	})
}

// Alpine builds an alpine 0.0.1 proposed entry: a signed .apk and the PEM
// key or certificate that verifies its signature.
func Alpine(apk, verifierPEM []byte) (json.RawMessage, error) {
	return json.Marshal(map[string]any{
		"kind": "alpine", "apiVersion": "0.0.1",
		"spec": map[string]any{"package": map[string]any{"content": apk}, "publicKey": map[string]any{"content": verifierPEM}},
	})
}

// Helm builds a helm 0.0.1 proposed entry: a chart's provenance file and
// the PGP key (armored or binary) that signed it.
func Helm(provenance, key []byte) (json.RawMessage, error) {
	return json.Marshal(map[string]any{
		"kind": "helm", "apiVersion": "0.0.1",
		"spec": map[string]any{"chart": map[string]any{"provenance": map[string]any{"content": provenance}}, "publicKey": map[string]any{"content": key}},
	})
}

// RPM builds an rpm 0.0.1 proposed entry: a signed RPM package and the PGP
// key (armored or binary) that signed it.
func RPM(pkg, key []byte) (json.RawMessage, error) {
	return json.Marshal(map[string]any{
		"kind": "rpm", "apiVersion": "0.0.1",
		"spec": map[string]any{"package": map[string]any{"content": pkg}, "publicKey": map[string]any{"content": key}},
	})
}

// JAR builds a jar 0.0.1 proposed entry: a Java archive signed with
// jarsigner (the log reads the signer from it).
func JAR(archive []byte) (json.RawMessage, error) {
	return json.Marshal(map[string]any{
		"kind": "jar", "apiVersion": "0.0.1",
		"spec": map[string]any{"archive": map[string]any{"content": archive}},
	})
}
