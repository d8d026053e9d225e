package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	rpmutils "github.com/sassoftware/go-rpmutils"
	"github.com/sassoftware/relic/v8/lib/binpatch"
	"github.com/sassoftware/relic/v8/lib/certloader"
	"github.com/sassoftware/relic/v8/lib/signjar"
	"github.com/sassoftware/relic/v8/lib/zipslicer"
	ssldsse "github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	gocose "github.com/veraison/go-cose"
	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/ssh"

	"github.com/signet-dev/signet/client"
	"github.com/signet-dev/signet/internal/apkbuild"
)

// entryKinds are the kinds the append-kinds scenario times, in order.
var entryKinds = []string{"hashedrekord", "rekord-x509", "rekord-ssh", "rekord-pgp", "rekord-minisign", "dsse", "intoto", "cose", "rfc3161", "tuf", "helm", "alpine", "rpm", "jar"}

// rpmBase is the package the rpm kind re-signs per entry (rpmbuild's
// output, committed as a test fixture; signet-bench runs from the
// repository's root).
const rpmBase = "types/rpm/testdata/hello.rpm"

// kindMaker signs the i-th entry of a kind; set-up (keys, a TUF root) is
// done once by newKindMaker.
type kindMaker func(i int, nonce int64) ([]byte, error)

func pemPublic(pub crypto.PublicKey) []byte {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

var inTotoType = "application/vnd.in-toto+json"

func newKindMaker(ctx context.Context, s *state, kind string) (kindMaker, error) {
	artifact := func(i int, nonce int64) []byte { return []byte(fmt.Sprintf("signet-bench %s %d %d", kind, nonce, i)) }
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecPEM := pemPublic(ec.Public())
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	envelope := func(payloadType string, payload []byte) ([]byte, error) {
		d := sha256.Sum256(ssldsse.PAE(payloadType, payload))
		sig, err := ecdsa.SignASN1(rand.Reader, ec, d[:])
		if err != nil {
			return nil, err
		}
		return json.Marshal(ssldsse.Envelope{PayloadType: payloadType, Payload: base64.StdEncoding.EncodeToString(payload),
			Signatures: []ssldsse.Signature{{Sig: base64.StdEncoding.EncodeToString(sig)}}})
	}
	statement := func(i int, nonce int64) []byte {
		sum := sha256.Sum256(artifact(i, nonce))
		return []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"app","digest":{"sha256":"` + hex.EncodeToString(sum[:]) + `"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{}}`)
	}
	switch kind {
	case "hashedrekord":
		return func(i int, nonce int64) ([]byte, error) {
			b, _, err := signedEntry(string(artifact(i, nonce)))
			return b, err
		}, nil
	case "rekord-x509":
		return func(i int, nonce int64) ([]byte, error) {
			a := artifact(i, nonce)
			d := sha256.Sum256(a)
			sig, err := ecdsa.SignASN1(rand.Reader, ec, d[:])
			if err != nil {
				return nil, err
			}
			return client.Rekord("x509", a, sig, ecPEM)
		}, nil
	case "rekord-ssh":
		signer, err := ssh.NewSignerFromKey(ed)
		if err != nil {
			return nil, err
		}
		pub := ssh.MarshalAuthorizedKey(signer.PublicKey())
		return func(i int, nonce int64) ([]byte, error) {
			a := artifact(i, nonce)
			return client.Rekord("ssh", a, sshsig(signer, a), pub)
		}, nil
	case "rekord-pgp":
		e, err := openpgp.NewEntity("Bench", "", "bench@example.com", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
		if err != nil {
			return nil, err
		}
		var key bytes.Buffer
		w, _ := armor.Encode(&key, openpgp.PublicKeyType, nil)
		e.Serialize(w) //nolint:errcheck
		w.Close()      //nolint:errcheck
		return func(i int, nonce int64) ([]byte, error) {
			a := artifact(i, nonce)
			var sig bytes.Buffer
			if err := openpgp.ArmoredDetachSign(&sig, e, bytes.NewReader(a), nil); err != nil {
				return nil, err
			}
			return client.Rekord("pgp", a, sig.Bytes(), key.Bytes())
		}, nil
	case "rekord-minisign":
		pub := ed.Public().(ed25519.PublicKey)
		keyID := []byte("benchkey")
		key := []byte("untrusted comment: bench\n" + base64.StdEncoding.EncodeToString(append(append([]byte("Ed"), keyID...), pub...)) + "\n")
		return func(i int, nonce int64) ([]byte, error) {
			a := artifact(i, nonce)
			h := blake2b.Sum512(a)
			sig := ed25519.Sign(ed, h[:])
			trusted := "trusted comment: bench"
			global := ed25519.Sign(ed, append(append([]byte(nil), sig...), trusted[17:]...))
			line := base64.StdEncoding.EncodeToString(append(append([]byte("ED"), keyID...), sig...))
			minisig := "untrusted comment: bench\n" + line + "\n" + trusted + "\n" + base64.StdEncoding.EncodeToString(global) + "\n"
			return client.Rekord("minisign", a, []byte(minisig), key)
		}, nil
	case "dsse":
		return func(i int, nonce int64) ([]byte, error) {
			env, err := envelope(inTotoType, statement(i, nonce))
			if err != nil {
				return nil, err
			}
			return client.DSSE(env, ecPEM)
		}, nil
	case "intoto":
		return func(i int, nonce int64) ([]byte, error) {
			env, err := envelope(inTotoType, statement(i, nonce))
			if err != nil {
				return nil, err
			}
			return client.InTotoV002(env, ecPEM)
		}, nil
	case "cose":
		signer, err := gocose.NewSigner(gocose.AlgorithmES256, ec)
		if err != nil {
			return nil, err
		}
		return func(i int, nonce int64) ([]byte, error) {
			m := gocose.NewSign1Message()
			m.Headers.Protected.SetAlgorithm(gocose.AlgorithmES256)
			m.Payload = artifact(i, nonce)
			if err := m.Sign(rand.Reader, nil, signer); err != nil {
				return nil, err
			}
			msg, err := m.MarshalCBOR()
			if err != nil {
				return nil, err
			}
			return client.COSE(msg, ecPEM, nil)
		}, nil
	case "rfc3161":
		// Timestamps from the instance's own TSA, asked for before the
		// timed phase.
		tsa := client.NewTSA(s.opts.target + "/api/v1/timestamp")
		return func(i int, nonce int64) ([]byte, error) {
			d := sha256.Sum256(artifact(i, nonce))
			st, err := tsa.Timestamp(ctx, client.TimestampRequest{Hash: crypto.SHA256, Digest: d[:], CertReq: true})
			if err != nil {
				return nil, err
			}
			return client.RFC3161(st.Response)
		}, nil
	case "tuf":
		return tufMaker()
	case "helm":
		e, err := openpgp.NewEntity("Charts", "", "charts@example.com", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
		if err != nil {
			return nil, err
		}
		var key bytes.Buffer
		w, _ := armor.Encode(&key, openpgp.PublicKeyType, nil)
		e.Serialize(w) //nolint:errcheck
		w.Close()      //nolint:errcheck
		return func(i int, nonce int64) ([]byte, error) {
			sum := sha256.Sum256(artifact(i, nonce))
			msg := "apiVersion: v2\nname: bench\nversion: 0.1.0\n\n...\nfiles:\n  bench-0.1.0.tgz: sha256:" + hex.EncodeToString(sum[:]) + "\n"
			var prov bytes.Buffer
			cw, err := clearsign.Encode(&prov, e.PrivateKey, &packet.Config{DefaultHash: crypto.SHA512})
			if err != nil {
				return nil, err
			}
			io.WriteString(cw, msg) //nolint:errcheck
			if err := cw.Close(); err != nil {
				return nil, err
			}
			return client.Helm(prov.Bytes(), key.Bytes())
		}, nil
	case "alpine":
		rk, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		return func(i int, nonce int64) ([]byte, error) {
			p, err := apkbuild.Build(rk, func(info string) string {
				return strings.Replace(info, "pkgver = 1.0-r0", fmt.Sprintf("pkgver = %d.%d-r0", nonce, i), 1)
			})
			if err != nil {
				return nil, err
			}
			return client.Alpine(p.APK, p.PubPEM)
		}, nil
	case "rpm":
		return rpmMaker()
	case "jar":
		return jarMaker(ctx)
	}
	return nil, fmt.Errorf("unknown kind %q", kind)
}

// rpmMaker re-signs the base package per entry with go-rpmutils (as
// rpmsign --rpmv3 would: over the header, and over header and payload),
// each signature made at its own second so every package differs.
func rpmMaker() (kindMaker, error) {
	base, err := os.ReadFile(rpmBase)
	if err != nil {
		return nil, fmt.Errorf("the rpm kind re-signs %s (run from the repository's root): %w", rpmBase, err)
	}
	e, err := openpgp.NewEntity("RPM Signer", "", "rpm@example.com", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		return nil, err
	}
	var key bytes.Buffer
	w, _ := armor.Encode(&key, openpgp.PublicKeyType, nil)
	e.Serialize(w) //nolint:errcheck
	w.Close()      //nolint:errcheck
	start := time.Now().Add(-24 * time.Hour)
	return func(i int, _ int64) ([]byte, error) {
		hdr, err := rpmutils.SignRpmStream(bytes.NewReader(base), e.PrivateKey, &rpmutils.SignatureOptions{Hash: crypto.SHA256, CreationTime: start.Add(time.Duration(i) * time.Second)})
		if err != nil {
			return nil, err
		}
		// The lead and the new signature header replace the old ones.
		leadAndSigs, err := hdr.DumpSignatureHeader(false)
		if err != nil {
			return nil, err
		}
		pkg := append(leadAndSigs, base[hdr.OriginalSignatureHeaderSize():]...)
		return client.RPM(pkg, key.Bytes())
	}, nil
}

// jarMaker builds a small archive per entry and signs it in Go with
// relic's signjar (the manifest, the .SF and a PKCS#7 block, as jarsigner
// lays them out), under a self-signed RSA certificate.
func jarMaker(ctx context.Context) (kindMaker, error) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "signet-bench"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, rk.Public(), rk)
	if err != nil {
		return nil, err
	}
	leaf, _ := x509.ParseCertificate(der)
	cert := &certloader.Certificate{Leaf: leaf, Certificates: []*x509.Certificate{leaf}, PrivateKey: rk}
	return func(i int, nonce int64) ([]byte, error) {
		var zbuf bytes.Buffer
		zw := zip.NewWriter(&zbuf)
		for name, content := range map[string]string{
			"META-INF/MANIFEST.MF":  "Manifest-Version: 1.0\r\nCreated-By: signet-bench\r\n\r\n",
			"com/example/hello.txt": fmt.Sprintf("hello %d %d\n", nonce, i),
		} {
			f, err := zw.Create(name)
			if err != nil {
				return nil, err
			}
			io.WriteString(f, content) //nolint:errcheck
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		// relic digests a zip given as its "zip-tar" stream, made from a file.
		tmp, err := os.CreateTemp("", "signet-bench-*.jar")
		if err != nil {
			return nil, err
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		if _, err := tmp.Write(zbuf.Bytes()); err != nil {
			return nil, err
		}
		var zipTar bytes.Buffer
		if err := zipslicer.ZipToTar(tmp, &zipTar); err != nil {
			return nil, err
		}
		jd, err := signjar.DigestJarStream(&zipTar, crypto.SHA256)
		if err != nil {
			return nil, err
		}
		patch, _, err := jd.Sign(ctx, cert, "release", false, false, false)
		if err != nil {
			return nil, err
		}
		signed, err := applyPatch(zbuf.Bytes(), patch)
		if err != nil {
			return nil, err
		}
		return client.JAR(signed)
	}, nil
}

// applyPatch applies a relic patch set (sorted regions of the input
// replaced by new bytes) in memory.
func applyPatch(in []byte, p *binpatch.PatchSet) ([]byte, error) {
	var out bytes.Buffer
	var pos int64
	for i, h := range p.Patches {
		if h.Offset < pos || h.Offset+int64(h.OldSize) > int64(len(in)) {
			return nil, errors.New("patch regions out of order or out of range")
		}
		out.Write(in[pos:h.Offset])
		out.Write(p.Blobs[i])
		pos = h.Offset + int64(h.OldSize)
	}
	out.Write(in[pos:])
	return out.Bytes(), nil
}

// sshsig signs message as ssh-keygen -Y sign -n file does (OpenSSH's
// PROTOCOL.sshsig, sha512), armored.
func sshsig(signer ssh.Signer, message []byte) []byte {
	h := sha512.Sum512(message)
	signed := append([]byte("SSHSIG"), ssh.Marshal(struct {
		Namespace, Reserved, HashAlgorithm, Hash string
	}{"file", "", "sha512", string(h[:])})...)
	sig, _ := signer.Sign(rand.Reader, signed)
	blob := append([]byte("SSHSIG"), ssh.Marshal(struct {
		Version                                            uint32
		PublicKey, Namespace, Reserved, HashAlg, Signature string
	}{1, string(signer.PublicKey().Marshal()), "file", "", "sha512", string(ssh.Marshal(sig))})...)
	return pem.EncodeToMemory(&pem.Block{Type: "SSH SIGNATURE", Bytes: blob})
}

// tufMaker makes a repository's root once, then targets metadata of a new
// version per entry, signed by its role's key.
func tufMaker() (kindMaker, error) {
	_, rootKey, _ := ed25519.GenerateKey(rand.Reader)
	_, targetsKey, _ := ed25519.GenerateKey(rand.Reader)
	expires := time.Now().Add(24 * time.Hour)
	root := metadata.Root(expires)
	for role, k := range map[string]ed25519.PrivateKey{metadata.ROOT: rootKey, metadata.TARGETS: targetsKey, metadata.SNAPSHOT: rootKey, metadata.TIMESTAMP: rootKey} {
		key, err := metadata.KeyFromPublicKey(k.Public())
		if err != nil {
			return nil, err
		}
		if err := root.Signed.AddKey(key, role); err != nil {
			return nil, err
		}
	}
	rootSigner, _ := signature.LoadED25519Signer(rootKey)
	if _, err := root.Sign(rootSigner); err != nil {
		return nil, err
	}
	rootJSON, err := root.ToBytes(false)
	if err != nil {
		return nil, err
	}
	targetsSigner, _ := signature.LoadED25519Signer(targetsKey)
	return func(i int, nonce int64) ([]byte, error) {
		t := metadata.Targets(expires)
		t.Signed.Version = int64(i + 1)
		tf, err := metadata.TargetFile().FromBytes(fmt.Sprintf("bench-%d-%d", nonce, i), []byte("x"))
		if err != nil {
			return nil, err
		}
		t.Signed.Targets[tf.Path] = tf
		if _, err := t.Sign(targetsSigner); err != nil {
			return nil, err
		}
		md, err := t.ToBytes(false)
		if err != nil {
			return nil, err
		}
		return client.TUF(md, rootJSON)
	}, nil
}

// kindsScenario times appends of each kind in entryKinds at the options'
// concurrency, one kind after the other, each entry signed before its
// kind's timed phase. Pools are sized for 6,000 appends a second; a kind
// that outruns its pool repeats entries, which the log answers 409 (shown
// in errors_by_status: its throughput is then a floor).
func (s *state) kindsScenario(ctx context.Context, log io.Writer, out func(*result)) error {
	n := s.poolSize(6000)
	kinds := s.opts.kinds
	if len(kinds) == 0 {
		kinds = entryKinds
	}
	for _, kind := range kinds {
		sign, err := newKindMaker(ctx, s, kind)
		if err != nil {
			return fmt.Errorf("%s: %w", kind, err)
		}
		fmt.Fprintf(log, "append-%s: signing %d entries\n", kind, n)
		bodies := make([][]byte, n)
		nonce := time.Now().UnixNano()
		var mu sync.Mutex
		var failed error
		parallel(n, func(i int) {
			b, err := sign(i, nonce)
			if err != nil {
				mu.Lock()
				failed = err
				mu.Unlock()
				return
			}
			bodies[i] = b
		})
		if failed != nil {
			return fmt.Errorf("%s: signing: %w", kind, failed)
		}
		hdr := map[string]string{"Content-Type": "application/json"}
		res := s.drive(ctx, "append-"+kind, func(i int) request {
			return request{http.MethodPost, "/api/v1/log/entries", bodies[i%n], hdr}
		}, func(st int) bool { return st == 201 }, nil)
		out(res)
	}
	return nil
}
