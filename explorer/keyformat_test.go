package explorer

import "testing"

func TestKeyFormat(t *testing.T) {
	for key, want := range map[string]string{
		"-----BEGIN PUBLIC KEY-----\nMFkw...\n-----END PUBLIC KEY-----\n":   "x509",
		"-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n": "x509",
		"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ...\n":                "pgp",
		"\x98\x33\x04": "pgp", // gpg --export, binary
		"untrusted comment: minisign public key 1234\nRWQ...\n":    "minisign",
		"RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3": "minisign",
		"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI... me@example.com":  "ssh",
		"  ecdsa-sha2-nistp256 AAAAE2VjZHNh...\n":                  "ssh",
		"sk-ssh-ed25519@openssh.com AAAA...":                       "ssh",
		"":                                                         "x509",
	} {
		if got := keyFormat(key); got != want {
			t.Errorf("keyFormat(%.30q) = %s, want %s", key, got, want)
		}
	}
}
