package timestamp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signet-dev/signet/internal/keys"
	"github.com/signet-dev/signet/internal/keys/softhsmtest"
)

// testChain makes root -> TSA leaf for the signer's key.
func testChain(t testing.TB, signer crypto.Signer, leafEKU []pkix.Extension) []*x509.Certificate {
	t.Helper()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	rootT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tsa root"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	rootDER, _ := x509.CreateCertificate(rand.Reader, rootT, rootT, rootKey.Public(), rootKey)
	root, _ := x509.ParseCertificate(rootDER)
	if leafEKU == nil {
		leafEKU = []pkix.Extension{CriticalTimeStampingEKU()}
	}
	leafT := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "tsa leaf", Organization: []string{"signet test"}}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtraExtensions: leafEKU}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafT, root, signer.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(leafDER)
	return []*x509.Certificate{leaf, root}
}

func writePEM(t testing.TB, path string, certs ...*x509.Certificate) {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// openssl ts -verify checks every combination of signer, hash, nonce and
// certReq; openssl writes the queries itself.
func TestOpenSSLVerifiesTokens(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	signers := map[string]crypto.Signer{"file-ecdsa-p256": ec, "file-ecdsa-p384": ec384, "file-rsa": rsaKey}
	if tk := softhsmtest.Setup(t); tk != nil {
		hsm, err := keys.GeneratePKCS11Key(tk.URI("tsa-openssl"), elliptic.P256(), keys.Options{})
		if err != nil {
			t.Fatal(err)
		}
		signers["pkcs11"] = hsm
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "artifact")
	os.WriteFile(data, []byte("time-stamp me"), 0o644) //nolint:errcheck
	for name, signer := range signers {
		chain := testChain(t, signer, nil)
		a, err := New(Config{Signer: signer, Chain: chain, Accuracy: 1500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		root, leaf := filepath.Join(dir, name+"-root.pem"), filepath.Join(dir, name+"-leaf.pem")
		writePEM(t, root, chain[1])
		writePEM(t, leaf, chain[0])
		for _, hash := range []string{"sha256", "sha384", "sha512"} {
			for _, nonce := range []bool{true, false} {
				for _, certReq := range []bool{true, false} {
					t.Run(fmt.Sprintf("%s/%s/nonce=%v/cert=%v", name, hash, nonce, certReq), func(t *testing.T) {
						q := filepath.Join(t.TempDir(), "q.tsq")
						args := []string{"ts", "-query", "-data", data, "-" + hash, "-out", q}
						if !nonce {
							args = append(args, "-no_nonce")
						}
						if certReq {
							args = append(args, "-cert")
						}
						if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
							t.Fatalf("openssl ts -query: %v %s", err, out)
						}
						der, _ := os.ReadFile(q)
						req, err := ParseRequest(der)
						if err != nil {
							t.Fatal(err)
						}
						if (req.Nonce != nil) != nonce || req.CertReq != certReq {
							t.Fatalf("parsed nonce=%v certReq=%v", req.Nonce, req.CertReq)
						}
						resp, issued, err := a.Stamp(req)
						if err != nil {
							t.Fatal(err)
						}
						if !issued.Policy.Equal(SigstorePolicy) {
							t.Fatalf("policy %v", issued.Policy)
						}
						r := filepath.Join(t.TempDir(), "r.tsr")
						os.WriteFile(r, resp, 0o644) //nolint:errcheck
						vargs := []string{"ts", "-verify", "-queryfile", q, "-in", r, "-CAfile", root}
						if !certReq {
							vargs = append(vargs, "-untrusted", leaf)
						}
						out, err := exec.Command("openssl", vargs...).CombinedOutput()
						if err != nil || !strings.Contains(string(out), "Verification: OK") {
							t.Fatalf("openssl ts -verify: %v\n%s", err, out)
						}
						text, _ := exec.Command("openssl", "ts", "-reply", "-in", r, "-text").CombinedOutput()
						for _, want := range []string{"Status: Granted.", "Policy OID: 1.3.6.1.4.1.57264.2", "Accuracy: 0x01 seconds, 0x01F4 millis", "TSA: DirName:"} {
							if !strings.Contains(string(text), want) {
								t.Fatalf("reply text lacks %q:\n%s", want, text)
							}
						}
					})
				}
			}
		}
	}
}

func TestRejections(t *testing.T) {
	signer, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	a, err := New(Config{Signer: signer, Chain: testChain(t, signer, nil), AcceptedPolicies: []asn1.ObjectIdentifier{{1, 2, 3, 4}}})
	if err != nil {
		t.Fatal(err)
	}
	d256 := sha256.Sum256([]byte("x"))
	good, _ := MarshalRequest(crypto.SHA256, d256[:], nil, big.NewInt(7), true)
	withPolicy, _ := MarshalRequest(crypto.SHA256, d256[:], asn1.ObjectIdentifier{1, 2, 3, 4}, nil, false)
	badPolicy, _ := MarshalRequest(crypto.SHA256, d256[:], asn1.ObjectIdentifier{1, 2, 3, 5}, nil, false)
	short, _ := MarshalRequest(crypto.SHA256, d256[:20], nil, nil, false)
	d384 := sha512.Sum384([]byte("x"))
	wrongLen, _ := MarshalRequest(crypto.SHA512, d384[:], nil, nil, false)
	sha1Req := rawRequest(t, oidSHA1, make([]byte, 20))
	md5Req := rawRequest(t, asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 5}, make([]byte, 16))
	v2 := append([]byte{}, good...)
	v2[4] = 2
	withExt := appendExtensions(t, good)
	for _, tt := range []struct {
		name string
		der  []byte
		want FailureInfo
	}{
		{"truncated", good[:len(good)-3], BadDataFormat},
		{"garbage", []byte("not DER"), BadDataFormat},
		{"empty", nil, BadDataFormat},
		{"trailing data", append(append([]byte{}, good...), 0), BadDataFormat},
		{"version 2", v2, BadRequest},
		{"SHA-1", sha1Req, BadAlg},
		{"unknown hash OID", md5Req, BadAlg},
		{"short imprint", short, BadDataFormat},
		{"imprint length of another hash", wrongLen, BadDataFormat},
		{"unaccepted policy", badPolicy, UnacceptedPolicy},
		{"extensions", withExt, UnacceptedExtension},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, err := ParseRequest(tt.der)
			if err == nil {
				_, _, err = a.Stamp(req)
			}
			rej, ok := err.(*Rejection)
			if !ok || rej.Failure != tt.want {
				t.Fatalf("got %v, want rejection %s", err, tt.want)
			}
			resp := RejectionResponse(rej)
			var parsed struct {
				Status struct {
					Status       int
					StatusString []string `asn1:"optional,utf8"`
					FailInfo     asn1.BitString
				}
			}
			if _, err := asn1.Unmarshal(resp, &parsed); err != nil {
				t.Fatalf("rejection is not DER: %v", err)
			}
			if parsed.Status.Status != 2 || parsed.Status.FailInfo.At(int(tt.want)) != 1 || parsed.Status.FailInfo.BitLength != int(tt.want)+1 || parsed.Status.StatusString[0] != rej.Msg {
				t.Fatalf("rejection %+v", parsed.Status)
			}
		})
	}
	for _, der := range [][]byte{good, withPolicy} {
		req, err := ParseRequest(der)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := a.Stamp(req); err != nil {
			t.Fatal(err)
		}
	}
	allowing, _ := New(Config{Signer: signer, Chain: testChain(t, signer, nil), AllowExtensions: true})
	req, _ := ParseRequest(withExt)
	if _, _, err := allowing.Stamp(req); err != nil {
		t.Fatalf("extensions with AllowExtensions: %v", err)
	}
}

func appendExtensions(t *testing.T, req []byte) []byte {
	t.Helper()
	var raw asn1.RawValue
	asn1.Unmarshal(req, &raw) //nolint:errcheck
	ext := []byte{0xa0, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x2a, 0x03, 0x04, 0x04, 0x02, 0x05, 0x00}
	content := append(append([]byte{}, raw.Bytes...), ext...)
	out, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: content})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rawRequest encodes a TimeStampReq with any hash OID.
func rawRequest(t *testing.T, oid asn1.ObjectIdentifier, digest []byte) []byte {
	t.Helper()
	type algID struct {
		Algorithm  asn1.ObjectIdentifier
		Parameters asn1.RawValue
	}
	der, err := asn1.Marshal(struct {
		Version int
		Imprint struct {
			Alg    algID
			Digest []byte
		}
	}{1, struct {
		Alg    algID
		Digest []byte
	}{algID{oid, asn1.NullRawValue}, digest}})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestChainRules(t *testing.T) {
	signer, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	nonCritical, _ := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 8}})
	two, _ := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 8}, {1, 3, 6, 1, 5, 5, 7, 3, 3}})
	good := testChain(t, signer, nil)
	for _, tt := range []struct {
		name   string
		signer crypto.Signer
		chain  []*x509.Certificate
		want   string
	}{
		{"good", signer, good, ""},
		{"non-critical EKU", signer, testChain(t, signer, []pkix.Extension{{Id: extKeyUsageOID, Value: nonCritical}}), "must be marked critical"},
		{"two EKUs", signer, testChain(t, signer, []pkix.Extension{{Id: extKeyUsageOID, Critical: true, Value: two}}), "exactly one extended key usage"},
		{"no EKU", signer, testChain(t, signer, []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2, 3}, Value: []byte{5, 0}}}), "exactly one extended key usage"},
		{"other key", other, good, "does not match the signing certificate"},
		{"leaf only", signer, good[:1], "at least the signing certificate and its root"},
		{"wrong root", signer, []*x509.Certificate{good[0], testChain(t, signer, nil)[1]}, "does not verify to its root"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Config{Signer: tt.signer, Chain: tt.chain})
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func FuzzParseRequest(f *testing.F) {
	d := sha256.Sum256([]byte("seed"))
	for _, nonce := range []*big.Int{nil, big.NewInt(42)} {
		der, _ := MarshalRequest(crypto.SHA256, d[:], asn1.ObjectIdentifier{1, 2, 3}, nonce, true)
		f.Add(der)
	}
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		req, err := ParseRequest(der)
		if err != nil {
			if _, ok := err.(*Rejection); !ok {
				t.Fatalf("error %T is not a Rejection", err)
			}
			return
		}
		if len(req.Digest) != req.Hash.Size() {
			t.Fatalf("accepted a %d-byte imprint for %s", len(req.Digest), req.Hash)
		}
	})
}

// BenchmarkStamp measures signing alone, per signer type: make bench
// reports it beside the HTTP figure.
func BenchmarkStamp(b *testing.B) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signers := map[string]crypto.Signer{"file-ecdsa-p256": ec}
	if tk := softhsmtest.Setup(b); tk != nil {
		hsm, err := keys.GeneratePKCS11Key(tk.URI(fmt.Sprintf("bench-%d", time.Now().UnixNano())), elliptic.P256(), keys.Options{})
		if err != nil {
			b.Fatal(err)
		}
		signers["pkcs11-softhsm"] = hsm
	}
	d := sha256.Sum256([]byte("bench"))
	der, _ := MarshalRequest(crypto.SHA256, d[:], nil, big.NewInt(1), true)
	for name, signer := range signers {
		b.Run(name, func(b *testing.B) {
			chain := testChain(b, signer, nil)
			a, err := New(Config{Signer: signer, Chain: chain})
			if err != nil {
				b.Fatal(err)
			}
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := ParseRequest(der)
					if _, _, err := a.Stamp(req); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
