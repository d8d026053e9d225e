package pki_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"

	"github.com/signet-dev/signet/types/pki"
)

// An RSA key past MaxRSABits is refused before any signature is checked
// with it (a 64 KiB modulus cost 12 s a check); one at the bound is read.
func TestOversizedRSAKeysAreRefused(t *testing.T) {
	pemOf := func(bits int) []byte {
		// Only the modulus' size matters here: a random odd number of that
		// many bits is as good as a product of primes, and instant.
		n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), uint(bits)))
		n.SetBit(n, bits-1, 1).SetBit(n, 0, 1)
		der, err := x509.MarshalPKIXPublicKey(&rsa.PublicKey{N: n, E: 65537})
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	if _, err := pki.ParseVerifier(pemOf(pki.MaxRSABits)); err != nil {
		t.Errorf("a %d-bit key: %v", pki.MaxRSABits, err)
	}
	if _, err := pki.ParseVerifier(pemOf(pki.MaxRSABits + 8)); err == nil || !strings.Contains(err.Error(), "at most 8192 bits") {
		t.Errorf("a %d-bit key: %v, want a refusal", pki.MaxRSABits+8, err)
	}
}
