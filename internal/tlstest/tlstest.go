// Package tlstest makes server certificates for tests the way operators
// make them: with openssl.
package tlstest

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// ServerCert makes a self-signed P-256 server certificate for 127.0.0.1 and
// localhost, valid two days, with openssl into dir/name.crt and
// dir/name.key (PKCS#8), and returns the files and the certificate.
func ServerCert(t testing.TB, dir, name string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	return Cert(t, dir, name, "IP:127.0.0.1,DNS:localhost")
}

// Cert is ServerCert with the subjectAltName openssl writes (none when
// empty): for certificates a server must refuse.
func Cert(t testing.TB, dir, name, subjectAltName string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	args := []string{"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", keyFile, "-out", certFile, "-days", "2", "-subj", "/CN=" + name}
	if subjectAltName != "" {
		args = append(args, "-addext", "subjectAltName="+subjectAltName)
	}
	out, err := exec.Command("openssl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	pemBytes, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		t.Fatalf("openssl wrote no PEM to %s", certFile)
	}
	if cert, err = x509.ParseCertificate(block.Bytes); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, cert
}
