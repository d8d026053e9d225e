package main

import (
	"crypto"
	"crypto/elliptic"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/signet-dev/signet/client/keyfile"
	"github.com/signet-dev/signet/client/signer"
	"github.com/signet-dev/signet/internal/keys"
	"github.com/signet-dev/signet/internal/version"
)

// passwordFor finds the password of an encrypted key file: SIGNET_PASSWORD,
// else COSIGN_PASSWORD (each used as given when set, even empty, as cosign
// does), else a prompt on the terminal (twice when confirm is set). With
// no terminal and neither variable it refuses rather than read stdin.
func passwordFor(cmd *cobra.Command, what string, confirm bool) ([]byte, error) {
	for _, env := range []string{"SIGNET_PASSWORD", "COSIGN_PASSWORD"} {
		if v, ok := os.LookupEnv(env); ok {
			return []byte(v), nil
		}
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, fmt.Errorf("%s needs a password: set SIGNET_PASSWORD (or COSIGN_PASSWORD), or run on a terminal to be asked", what)
	}
	ask := func(prompt string) ([]byte, error) {
		fmt.Fprint(cmd.ErrOrStderr(), prompt)
		p, err := term.ReadPassword(fd)
		fmt.Fprintln(cmd.ErrOrStderr())
		return p, err
	}
	p, err := ask("Enter password for " + what + ": ")
	if err != nil || !confirm {
		return p, err
	}
	again, err := ask("Enter password for " + what + " again: ")
	if err != nil {
		return nil, err
	}
	if string(again) != string(p) {
		return nil, errors.New("the two passwords differ; nothing was written")
	}
	return p, nil
}

func newGenerateKeyPairCommand() *cobra.Command {
	var prefix, pkcs11URI string
	cmd := &cobra.Command{
		Use:   "generate-key-pair [--output-key-prefix PREFIX]",
		Short: "Make an ECDSA P-256 key pair in cosign's file format",
		Long: `generate-key-pair writes PREFIX.key, the private key encrypted with a password
(scrypt and NaCl secretbox, PEM "ENCRYPTED SIGSTORE PRIVATE KEY", as cosign
writes it: each tool reads the other's), and PREFIX.pub, its public key.

The password comes from SIGNET_PASSWORD, else COSIGN_PASSWORD, else a prompt
on the terminal. Existing files are never overwritten.

With --pkcs11 URI (RFC 7512, naming the token and the new key's object=
label), the private key is made inside the token and never leaves it: only
PREFIX.pub is written, and the URI is what --key takes to sign. An object
of that label already in the token is refused.`,
		Example: `  signet generate-key-pair
  SIGNET_PASSWORD=... signet generate-key-pair --output-key-prefix release
  cosign sign-blob --key release.key --bundle app.sigstore.json app.tar.gz
  signet generate-key-pair --output-key-prefix release \
    --pkcs11 'pkcs11:token=signing;object=release?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/pin'
  signet sign-blob app.tar.gz --bundle app.sigstore.json --key 'pkcs11:token=signing;object=release?...'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if pkcs11URI != "" {
				return generateInToken(cmd, pkcs11URI, prefix+".pub")
			}
			key, err := keyfile.Generate()
			if err != nil {
				return err
			}
			return writePair(cmd, prefix, key)
		},
	}
	cmd.Flags().StringVar(&prefix, "output-key-prefix", "cosign", "write PREFIX.key and PREFIX.pub")
	cmd.Flags().StringVar(&pkcs11URI, "pkcs11", "", "make the key inside this PKCS#11 token instead (a pkcs11: URI with object=); only PREFIX.pub is written")
	return cmd
}

// generateInToken makes a P-256 key inside a PKCS#11 token (the same
// custody code as the server's keys) and writes its public key.
func generateInToken(cmd *cobra.Command, uri, pubPath string) error {
	if !strings.HasPrefix(uri, "pkcs11:") || !strings.Contains(strings.SplitN(uri, "?", 2)[0], "object=") {
		return errors.New("--pkcs11 takes a pkcs11: URI naming the token and the new key's object= label")
	}
	if _, err := os.Stat(pubPath); err == nil {
		return fmt.Errorf("%s already exists: remove it or choose another --output-key-prefix", pubPath)
	}
	if _, err := keys.Open(uri, keys.Options{}); err == nil {
		return errors.New("the token already holds a key of that object= label: choose another")
	}
	key, err := keys.GeneratePKCS11Key(uri, elliptic.P256(), keys.Options{})
	if err != nil {
		return fmt.Errorf("making the key in the token: %w", err)
	}
	pubPEM, err := keyfile.PublicPEM(key.Public())
	if err != nil {
		return err
	}
	if err := writeNew(pubPath, pubPEM, 0o644); err != nil {
		return err
	}
	// The URI's query (a PIN, maybe) is not printed back.
	object, _, _ := strings.Cut(uri, "?")
	return report(cmd, map[string]any{"privateKey": object, "publicKey": pubPath},
		fmt.Sprintf("Private key made in the token as %s: sign with --key and the same URI\nPublic key written to %s", object, pubPath))
}

// writePair writes key as PREFIX.key (encrypted with the password asked
// for, in cosign's format) and PREFIX.pub, neither over an existing file.
func writePair(cmd *cobra.Command, prefix string, key crypto.Signer) error {
	keyPath, pubPath := prefix+".key", prefix+".pub"
	for _, p := range []string{keyPath, pubPath} {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%s already exists: remove it or choose another --output-key-prefix", p)
		}
	}
	password, err := passwordFor(cmd, keyPath, true)
	if err != nil {
		return err
	}
	keyPEM, err := keyfile.Encrypt(key, password)
	if err != nil {
		return err
	}
	pubPEM, err := keyfile.PublicPEM(key.Public())
	if err != nil {
		return err
	}
	if err := writeNew(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeNew(pubPath, pubPEM, 0o644); err != nil {
		os.Remove(keyPath) //nolint:errcheck // made just now: no half pair is left
		return err
	}
	return report(cmd, map[string]any{"privateKey": keyPath, "publicKey": pubPath},
		fmt.Sprintf("Private key written to %s\nPublic key written to %s", keyPath, pubPath))
}

func newImportKeyPairCommand() *cobra.Command {
	var prefix, keyPath string
	cmd := &cobra.Command{
		Use:   "import-key-pair --key KEY.pem [--output-key-prefix PREFIX]",
		Short: "Turn a PEM private key (PKCS#8, EC, RSA, Ed25519) into cosign's encrypted key format",
		Long: `import-key-pair reads an unencrypted PEM private key, as openssl and most
tools write them (PRIVATE KEY, EC PRIVATE KEY, RSA PRIVATE KEY), and writes
PREFIX.key encrypted with a password in cosign's format and PREFIX.pub, as
cosign import-key-pair does: cosign and signet sign with the result. The
password comes from SIGNET_PASSWORD, else COSIGN_PASSWORD, else a prompt.
Existing files are never overwritten; the input is left as it is (delete it
once the import is checked).`,
		Example: `  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out release.pem
  signet import-key-pair --key release.pem --output-key-prefix release
  signet sign-blob app.tar.gz --key release.key --bundle app.sigstore.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := keyfile.ReadFile(keyPath)
			if err != nil {
				return err
			}
			if keyfile.IsEncrypted(data) {
				return fmt.Errorf("%s is already an encrypted key in cosign's format: nothing to import", keyPath)
			}
			key, err := keyfile.Parse(data, nil)
			if err != nil {
				return fmt.Errorf("%s: %w", keyPath, err)
			}
			return writePair(cmd, prefix, key)
		},
	}
	cmd.Flags().StringVar(&keyPath, "key", "", "the PEM private key to import (required)")
	cmd.Flags().StringVar(&prefix, "output-key-prefix", "import-cosign", "write PREFIX.key and PREFIX.pub")
	cmd.MarkFlagRequired("key") //nolint:errcheck
	return cmd
}

// writeNew creates path, failing if it exists.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// loadSigner opens --key (client/signer: a pkcs11: URI, whose key stays in
// its token, else a key file), asking for a password only when the file
// is encrypted.
func loadSigner(cmd *cobra.Command, path string) (crypto.Signer, error) {
	return signer.Opener{Providers: signer.Default(), Password: func(p string) ([]byte, error) {
		return passwordFor(cmd, p, false)
	}}.Open(path)
}

func newPublicKeyCommand() *cobra.Command {
	var keyPath, outPath string
	cmd := &cobra.Command{
		Use:   "public-key --key KEY [--outfile FILE]",
		Short: "Print the public key of a private key file",
		Example: `  signet public-key --key cosign.key
  COSIGN_PASSWORD=... signet public-key --key cosign.key --outfile cosign.pub`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := loadSigner(cmd, keyPath)
			if err != nil {
				return err
			}
			pubPEM, err := keyfile.PublicPEM(key.Public())
			if err != nil {
				return err
			}
			if outPath != "" {
				return writeNew(outPath, pubPEM, 0o644)
			}
			_, err = cmd.OutOrStdout().Write(pubPEM)
			return err
		},
	}
	cmd.Flags().StringVar(&keyPath, "key", "", "private key: a file (cosign's encrypted format or a plain PEM) or a pkcs11: URI (required)")
	cmd.Flags().StringVar(&outPath, "outfile", "", "write the public key here (a new file) instead of stdout")
	cmd.MarkFlagRequired("key") //nolint:errcheck
	return cmd
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version of signet",
		Example: "  signet version\n  signet version --output json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in := version.Get()
			return report(cmd, map[string]any{"version": in.Version, "commit": in.Commit, "modified": in.Modified, "goVersion": in.GoVersion, "platform": in.Platform},
				in.String("signet"))
		},
	}
}
