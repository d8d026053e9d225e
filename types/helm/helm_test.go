package helm_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"helm.sh/helm/v4/pkg/provenance"

	"github.com/signet-dev/signet/internal/gpgtest"
	"github.com/signet-dev/signet/types"
	"github.com/signet-dev/signet/types/helm"
	"github.com/signet-dev/signet/types/internal/rekorref"
)

var (
	chartYAML = []byte("apiVersion: v2\nname: hello\ndescription: says hello\nversion: 0.1.0\nappVersion: \"1.0\"\n")
	archive   = []byte("the chart archive, hello-0.1.0.tgz")
)

func proposal(t testing.TB, prov, key []byte) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"apiVersion": "0.0.1", "kind": "helm", "spec": map[string]any{
		"chart": map[string]any{"provenance": map[string]any{"content": prov}}, "publicKey": map[string]any{"content": key}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signed is a provenance made by Helm's own provenance package (the code
// behind helm package --sign) with a fresh key, and that key armored.
func signed(t testing.TB, cfg *packet.Config, archive []byte) (prov, key []byte) {
	t.Helper()
	e, err := openpgp.NewEntity("Chart Signer", "", "charts@example.com", cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &provenance.Signatory{Entity: e}
	out, err := s.ClearSign(archive, "hello-0.1.0.tgz", chartYAML)
	if err != nil {
		t.Fatal(err)
	}
	var k bytes.Buffer
	w, _ := armor.Encode(&k, openpgp.PublicKeyType, nil)
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close() //nolint:errcheck
	return []byte(out), k.Bytes()
}

// gpgSigned is the same provenance clear-signed by gpg with a NIST P-256
// key, as a release pipeline signing outside Helm would.
func gpgSigned(t *testing.T) (prov, key []byte) {
	t.Helper()
	g := gpgtest.New(t)
	key = g.Key("Charts <charts@example.com>", "nistp256")
	sum := sha256.Sum256(archive)
	msg := append(append([]byte(nil), chartYAML...), []byte("\n...\nfiles:\n  hello-0.1.0.tgz: sha256:"+hex.EncodeToString(sum[:])+"\n")...)
	file := filepath.Join(g.Dir, "msg")
	os.WriteFile(file, msg, 0o600) //nolint:errcheck
	return g.GPG("--clearsign", "--output", "-", file), key
}

// Leaf and index keys are Rekor 1.5's for provenances from Helm's package
// (RSA) and from gpg (NIST P-256); the chart's digest is a key.
func TestMatchesRekor(t *testing.T) {
	reg := types.NewRegistry(helm.Kind())
	helmProv, helmKey := signed(t, &packet.Config{Algorithm: packet.PubKeyAlgoRSA, RSABits: 2048}, archive)
	gpgProv, gpgKey := gpgSigned(t)
	sum := sha256.Sum256(archive)
	for name, p := range map[string][]byte{
		"helm's provenance package, RSA": proposal(t, helmProv, helmKey),
		"gpg --clearsign, P-256":         proposal(t, gpgProv, gpgKey),
	} {
		t.Run(name, func(t *testing.T) {
			e := rekorref.Matches(t, reg, p)
			if keys := strings.Join(e.IndexKeys(), " "); !strings.Contains(keys, "sha256:"+hex.EncodeToString(sum[:])) || !strings.Contains(keys, "charts@example.com") {
				t.Errorf("keys %s", keys)
			}
		})
	}
	// Ed25519 (which Rekor cannot read) is accepted, as for rekord.
	edProv, edKey := signed(t, &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA}, archive)
	if _, err := reg.ParseInsertable(context.Background(), proposal(t, edProv, edKey)); err != nil {
		t.Errorf("an Ed25519-signed provenance: %v", err)
	}
}

func TestRefusals(t *testing.T) {
	reg := types.NewRegistry(helm.Kind())
	cfg := &packet.Config{Algorithm: packet.PubKeyAlgoRSA, RSABits: 2048}
	prov, key := signed(t, cfg, archive)
	_, otherKey := signed(t, cfg, archive)
	tampered := bytes.Replace(prov, []byte("says hello"), []byte("says goodbye"), 1)
	twoFiles := bytes.Replace(prov, []byte("files:\n"), []byte("files:\n  other.tgz: sha256:00\n"), 1)
	for name, tc := range map[string]struct {
		prov, key []byte
		want      string
	}{
		"another key":        {prov, otherKey, "does not verify"},
		"Chart.yaml changed": {tampered, key, "does not verify"},
		"not clear-signed":   {chartYAML, key, "not a PGP clear-signed message"},
		"two files":          {twoFiles, key, "lists 2 files"},
		"sums of 100 KiB":    {bytes.Replace(prov, []byte("files:\n"), []byte("junk: "+strings.Repeat("x", 100<<10)+"\nfiles:\n"), 1), key, "more than 65536"},
		"no sums":            {[]byte("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nname: x\n-----BEGIN PGP SIGNATURE-----\n\nwsBcBAEBCAAQBQJ=\n-----END PGP SIGNATURE-----\n"), key, "no sums"},
	} {
		_, err := reg.ParseInsertable(context.Background(), proposal(t, tc.prov, tc.key))
		var ve *types.ValidationError
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a validation error saying %q", name, err, tc.want)
		}
	}
}

// Whatever bytes arrive as a provenance, parsing answers an entry or a
// validation error, and never panics.
func FuzzParse(f *testing.F) {
	prov, key := signed(f, &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA}, archive)
	f.Add(prov)
	reg := types.NewRegistry(helm.Kind())
	f.Fuzz(func(t *testing.T, prov []byte) {
		_, err := reg.ParseInsertable(context.Background(), proposal(t, prov, key))
		var ve *types.ValidationError
		if err != nil && (!errors.As(err, &ve) || errors.Is(err, types.ErrParserPanic)) {
			t.Fatalf("not a validation error, or a parser panic: %v", err)
		}
	})
}
