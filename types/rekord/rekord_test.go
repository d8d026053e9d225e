package rekord_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signet-dev/signet/types"
	"github.com/signet-dev/signet/types/internal/rekorref"
	"github.com/signet-dev/signet/types/rekord"
)

// proposal is a rekord 0.0.1 entry as rekor-cli upload --type rekord sends it.
func proposal(t testing.TB, format string, content, sig, key []byte, hash string) []byte {
	t.Helper()
	data := map[string]any{"content": content}
	if hash != "" {
		data["hash"] = map[string]string{"algorithm": "sha256", "value": hash}
	}
	b, err := json.Marshal(map[string]any{"apiVersion": "0.0.1", "kind": "rekord", "spec": map[string]any{
		"data": data, "signature": map[string]any{"format": format, "content": sig, "publicKey": map[string]any{"content": key}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pemKey(t testing.TB, pub crypto.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// sshSigned signs content with a fresh ssh-keygen key of type kind, as a
// user would (ssh-keygen -Y sign -n file), and returns the signature and
// the authorized_keys line.
func sshSigned(t *testing.T, kind string, content []byte, extra ...string) (sig, key []byte) {
	t.Helper()
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "id")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "builder@example.com", "-f", keyPath).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	file := filepath.Join(dir, "artifact")
	os.WriteFile(file, content, 0o600) //nolint:errcheck
	args := append([]string{"-Y", "sign", "-f", keyPath}, extra...)
	if len(extra) == 0 {
		args = append(args, "-n", "file")
	}
	if out, err := exec.Command("ssh-keygen", append(args, file)...).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -Y sign: %v\n%s", err, out)
	}
	sig, _ = os.ReadFile(file + ".sig")
	key, _ = os.ReadFile(keyPath + ".pub")
	return sig, key
}

// Our leaf and index keys are Rekor 1.5's for each format and key type.
func TestCanonicalLeafMatchesRekor(t *testing.T) {
	reg := types.NewRegistry(rekord.Kind())
	content := []byte("release tarball bytes")
	digest := sha256.Sum256(content)

	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecSig, _ := ecdsa.SignASN1(rand.Reader, ec, digest[:])
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaSig, _ := rsa.SignPKCS1v15(rand.Reader, rk, crypto.SHA256, digest[:])
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	edSig := ed25519.Sign(ed, content)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "release"}, EmailAddresses: []string{"release@example.com"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	certDER, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, ec.Public(), ec)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})
	edSSHSig, edSSHKey := sshSigned(t, "ed25519", content)
	rsaSSHSig, rsaSSHKey := sshSigned(t, "rsa", content)
	ecSSHSig, ecSSHKey := sshSigned(t, "ecdsa", content)

	for name, p := range map[string][]byte{
		"x509 ECDSA key":          proposal(t, "x509", content, ecSig, pemKey(t, ec.Public()), ""),
		"x509 RSA key, with hash": proposal(t, "x509", content, rsaSig, pemKey(t, rk.Public()), strings.ToLower(hexOf(digest[:]))),
		"x509 Ed25519 key":        proposal(t, "x509", content, edSig, pemKey(t, ed.Public()), ""),
		"x509 certificate":        proposal(t, "x509", content, ecSig, certPEM, ""),
		"ssh ed25519":             proposal(t, "ssh", content, edSSHSig, edSSHKey, ""),
		"ssh rsa":                 proposal(t, "ssh", content, rsaSSHSig, rsaSSHKey, ""),
		"ssh ecdsa":               proposal(t, "ssh", content, ecSSHSig, ecSSHKey, ""),
	} {
		t.Run(name, func(t *testing.T) {
			e := rekorref.Matches(t, reg, p)
			if !strings.Contains(string(e.Canonical()), `"hash":{"algorithm":"sha256","value":"`+hexOf(digest[:])+`"}`) || strings.Contains(string(e.Canonical()), `"content":"cmVsZWFz`) {
				t.Fatalf("the leaf must hold the artifact's hash, never the artifact:\n%s", e.Canonical())
			}
		})
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}

// What does not verify, or is not a rekord this log takes, is refused
// with the reason (a 400), as Rekor refuses it.
func TestRefusals(t *testing.T) {
	reg := types.NewRegistry(rekord.Kind())
	content := []byte("artifact")
	digest := sha256.Sum256(content)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sig, _ := ecdsa.SignASN1(rand.Reader, ec, digest[:])
	sshSig, sshKey := sshSigned(t, "ed25519", content)
	sha256SSHSig, sha256SSHKey := sshSigned(t, "ed25519", content, "-n", "file", "-O", "hashalg=sha256")
	otherNS, otherNSKey := sshSigned(t, "ed25519", content, "-n", "git")
	for name, tc := range map[string]struct {
		proposal []byte
		want     string
	}{
		"another key":          {proposal(t, "x509", content, sig, pemKey(t, other.Public()), ""), "does not verify"},
		"another artifact":     {proposal(t, "x509", []byte("tampered"), sig, pemKey(t, ec.Public()), ""), "does not verify"},
		"hash of another":      {proposal(t, "x509", content, sig, pemKey(t, ec.Public()), strings.Repeat("0", 64)), "SHA mismatch"},
		"ssh, another file":    {proposal(t, "ssh", []byte("tampered"), sshSig, sshKey, ""), "does not verify"},
		"ssh, sha256":          {proposal(t, "ssh", content, sha256SSHSig, sha256SSHKey, ""), "sha512 signatures only"},
		"ssh, namespace git":   {proposal(t, "ssh", content, otherNS, otherNSKey, ""), "sign with -n file"},
		"ssh key as x509":      {proposal(t, "x509", content, sshSig, sshKey, ""), "not PEM"},
		"minisign, an ssh key": {proposal(t, "minisign", content, sig, sshKey, ""), "not a minisign public key"},
		"an unknown format":    {proposal(t, "gpg", content, sig, sshKey, ""), "is not one of"},
		"no artifact":          {proposal(t, "x509", nil, sig, pemKey(t, ec.Public()), hexOf(digest[:])), "'content' must be specified for data"},
	} {
		_, err := reg.ParseInsertable(context.Background(), tc.proposal)
		var ve *types.ValidationError
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a validation error saying %q", name, err, tc.want)
		}
	}
}

// Whatever bytes a client sends as a rekord spec, parsing answers an entry
// or a validation error, and never panics.
func FuzzParse(f *testing.F) {
	reg := types.NewRegistry(rekord.Kind())
	content := []byte("artifact")
	digest := sha256.Sum256(content)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sig, _ := ecdsa.SignASN1(rand.Reader, ec, digest[:])
	f.Add(proposal(f, "x509", content, sig, pemKey(f, ec.Public()), ""))
	// Signatures real tools made (testdata: ssh-keygen -Y sign, gpg
	// --detach-sign with an Ed25519 key, minisign -S) over one artifact.
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	artifact := read("artifact")
	for format, files := range map[string][2]string{"ssh": {"artifact.ssh.sig", "ssh.pub"}, "pgp": {"artifact.asc", "gpg.asc"}, "minisign": {"artifact.minisig", "minisign.pub"}} {
		p := proposal(f, format, artifact, read(files[0]), read(files[1]), "")
		if _, err := reg.ParseInsertable(context.Background(), p); err != nil {
			f.Fatalf("the %s fixture does not verify: %v", format, err)
		}
		f.Add(p)
	}
	f.Add(proposal(f, "ssh", content, []byte("-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n"), []byte("ssh-ed25519 AAAA x"), ""))
	f.Add(proposal(f, "pgp", content, []byte("-----BEGIN PGP SIGNATURE-----\n\nwnUEABYKAB0WIQQ=\n-----END PGP SIGNATURE-----\n"), []byte{0x98, 0x33, 0x04, 0x65, 0, 0, 0, 0x16, 0x09, 0x2b}, ""))
	f.Fuzz(func(t *testing.T, p []byte) {
		_, err := reg.ParseInsertable(context.Background(), p)
		var ve *types.ValidationError
		if err != nil && (!errors.As(err, &ve) || errors.Is(err, types.ErrParserPanic)) {
			t.Fatalf("not a validation error, or a parser panic: %v", err)
		}
	})
}
