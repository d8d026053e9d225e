package rpm_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signet-dev/signet/internal/gpgtest"
	"github.com/signet-dev/signet/types"
	"github.com/signet-dev/signet/types/internal/rekorref"
	"github.com/signet-dev/signet/types/rpm"
)

// rpmTools builds an RPM with Debian's rpmbuild and signs copies of it with
// rpmsign and a GnuPG key of its own.
type rpmTools struct {
	t        *testing.T
	dir      string
	gpg      *gpgtest.Home
	unsigned []byte
}

func newRPMTools(t *testing.T) *rpmTools {
	t.Helper()
	dir := t.TempDir()
	r := &rpmTools{t: t, dir: dir, gpg: gpgtest.New(t)}
	spec := "Name: hello\nVersion: 1.0\nRelease: 1\nEpoch: 2\nSummary: says hello\nLicense: MIT\nBuildArch: noarch\n\n%description\nSays hello.\n\n" +
		"%install\nmkdir -p %{buildroot}/usr/share/hello\necho hello > %{buildroot}/usr/share/hello/README\n\n%files\n/usr/share/hello/README\n"
	os.MkdirAll(filepath.Join(dir, "SPECS"), 0o755)                              //nolint:errcheck
	os.WriteFile(filepath.Join(dir, "SPECS", "hello.spec"), []byte(spec), 0o644) //nolint:errcheck
	r.run("rpmbuild", "-bb", "--define", "_topdir "+dir, filepath.Join(dir, "SPECS", "hello.spec"))
	r.unsigned, _ = os.ReadFile(filepath.Join(dir, "RPMS", "noarch", "hello-1.0-1.noarch.rpm"))
	return r
}

func (r *rpmTools) run(name string, args ...string) []byte {
	r.t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+r.gpg.Dir)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		errors.As(err, &ee)
		r.t.Fatalf("%s %v: %v\n%s", name, args, err, ee.Stderr)
	}
	return out
}

// key makes a GnuPG key for uid and returns it exported.
func (r *rpmTools) key(uid, algo string) []byte {
	r.t.Helper()
	return r.gpg.Key(uid, algo)
}

// sign signs a copy of the package as rpmsign does (v3: also over header
// and payload, as older rpm did by default).
func (r *rpmTools) sign(uid string, v3 bool) []byte {
	r.t.Helper()
	path := filepath.Join(r.dir, "signed.rpm")
	os.WriteFile(path, r.unsigned, 0o644) //nolint:errcheck
	args := []string{"--addsign", "--define", "__gpg /usr/bin/gpg", "--define", "_gpg_name " + uid, "--define", "_gpg_path " + r.gpg.Dir,
		"--define", "_gpg_sign_cmd_extra_args --batch --pinentry-mode loopback"}
	if v3 {
		args = append(args, "--rpmv3")
	}
	r.run("rpmsign", append(args, path)...)
	b, _ := os.ReadFile(path)
	return b
}

func proposal(t testing.TB, pkg, key []byte) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"apiVersion": "0.0.1", "kind": "rpm", "spec": map[string]any{
		"package": map[string]any{"content": pkg}, "publicKey": map[string]any{"content": key}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A package signed over header and payload (rpmsign --rpmv3): leaf and
// keys are Rekor 1.5's. One signed over its header only (rpm 4.16+'s
// default) Rekor refuses; it is accepted here.
func TestMatchesRekor(t *testing.T) {
	reg := types.NewRegistry(rpm.Kind())
	r := newRPMTools(t)
	key := r.key("RPM Signer <rpm@example.com>", "rsa2048")
	e := rekorref.Matches(t, reg, proposal(t, r.sign("rpm@example.com", true), key))
	for _, want := range []string{`"Name":"hello"`, `"Epoch":"2"`, `"Version":"1.0"`, `"Architecture":"noarch"`, `"RPMSIGTAG_MD5":"`} {
		if !strings.Contains(string(e.Canonical()), want) {
			t.Errorf("leaf lacks %s: %s", want, e.Canonical())
		}
	}
	headerOnly := proposal(t, r.sign("rpm@example.com", false), key)
	if _, _, err := rekorref.Canonicalize(headerOnly); err == nil {
		t.Log("Rekor now accepts header-only signatures: compare with it")
	}
	if _, err := reg.ParseInsertable(context.Background(), headerOnly); err != nil {
		t.Errorf("a header-only signature: %v", err)
	}
}

func TestRefusals(t *testing.T) {
	reg := types.NewRegistry(rpm.Kind())
	r := newRPMTools(t)
	key := r.key("RPM Signer <rpm@example.com>", "rsa2048")
	other := r.key("Other <other@example.com>", "rsa2048")
	signed := r.sign("rpm@example.com", true)
	tampered := append([]byte(nil), signed...)
	tampered[len(tampered)-10] ^= 1 // in the payload
	huge := append([]byte(nil), signed...)
	binary.BigEndian.PutUint32(huge[96+8:], 1<<30) // the signature header's entry count
	for name, tc := range map[string]struct {
		pkg, key []byte
		want     string
	}{
		"another key":          {signed, other, "does not verify"},
		"payload changed":      {tampered, key, "does not verify"},
		"unsigned":             {r.unsigned, key, "not signed"},
		"headers claim 16 GiB": {huge, key, "claims"},
		"not an rpm":           {[]byte("hello"), key, "not an RPM"},
	} {
		_, err := reg.ParseInsertable(context.Background(), proposal(t, tc.pkg, tc.key))
		var ve *types.ValidationError
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a validation error saying %q", name, err, tc.want)
		}
	}
}

// A header entry running past its header's data is refused before
// go-rpmutils slices it (which panicked), and so are entries that all
// re-read one long string.
func TestHeaderEntriesAreChecked(t *testing.T) {
	key, err := os.ReadFile("testdata/hello.rpm.asc")
	if err != nil {
		t.Fatal(err)
	}
	reg := types.NewRegistry(rpm.Kind())
	intro := func(entries, size uint32) []byte {
		b := []byte{0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(b[8:], entries)
		binary.BigEndian.PutUint32(b[12:], size)
		return b
	}
	entry := func(typ, offset, count uint32) []byte {
		e := make([]byte, 16)
		binary.BigEndian.PutUint32(e[0:], 1000)
		binary.BigEndian.PutUint32(e[4:], typ)
		binary.BigEndian.PutUint32(e[8:], offset)
		binary.BigEndian.PutUint32(e[12:], count)
		return e
	}
	pkgWith := func(entries [][]byte, data []byte) []byte {
		pkg := append(make([]byte, 96), intro(uint32(len(entries)), uint32(len(data)))...)
		for _, e := range entries {
			pkg = append(pkg, e...)
		}
		pkg = append(pkg, data...)
		pkg = append(pkg, make([]byte, (8-len(data)%8)%8)...)
		return append(pkg, intro(0, 0)...)
	}
	long := append(bytes.Repeat([]byte("x"), 4096), 0)
	overlapping := make([][]byte, 2000)
	for i := range overlapping {
		overlapping[i] = entry(6, 0, 1) // a STRING at 0: every entry spans all 4 KiB
	}
	for name, tc := range map[string]struct {
		pkg  []byte
		want string
	}{
		"an INT32 array past the data": {pkgWith([][]byte{entry(4, 0, 3)}, make([]byte, 8)), "runs past the header's data"},
		"an offset past the data":      {pkgWith([][]byte{entry(6, 9, 1)}, make([]byte, 8)), "points outside"},
		"a string without its NUL":     {pkgWith([][]byte{entry(6, 0, 1)}, []byte("abcdefgh")), "strings run past"},
		"2,000 entries on one string":  {pkgWith(overlapping, long), "overlap"},
	} {
		_, err := reg.ParseInsertable(context.Background(), proposal(t, tc.pkg, key))
		var ve *types.ValidationError
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a validation error saying %q", name, err, tc.want)
		}
	}
}

// Whatever bytes arrive as a package, parsing answers an entry or a
// validation error, and never panics.
func FuzzParse(f *testing.F) {
	pkg, err := os.ReadFile("testdata/hello.rpm")
	if err != nil {
		f.Fatal(err)
	}
	key, err := os.ReadFile("testdata/hello.rpm.asc")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pkg)
	reg := types.NewRegistry(rpm.Kind())
	f.Fuzz(func(t *testing.T, pkg []byte) {
		_, err := reg.ParseInsertable(context.Background(), proposal(t, pkg, key))
		var ve *types.ValidationError
		if err != nil && (!errors.As(err, &ve) || errors.Is(err, types.ErrParserPanic)) {
			t.Fatalf("not a validation error, or a parser panic: %v", err)
		}
	})
}
