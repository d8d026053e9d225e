package main

import (
	"bufio"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/spf13/cobra"

	"github.com/signet-dev/signet/ca"
	"github.com/signet-dev/signet/internal/bootstrap"
	"github.com/signet-dev/signet/internal/cligroup"
	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/internal/keys"
	"github.com/signet-dev/signet/internal/pkigen"
	"github.com/signet-dev/signet/internal/rotation"
	"github.com/signet-dev/signet/timestamp"
)

func newAdminCommand() *cobra.Command {
	cmd := cligroup.Make(&cobra.Command{
		Use:   "admin",
		Short: "Key ceremony and trust inspection for a production instance",
		Example: `  signet-server admin init --dir /etc/signet --hostname signet.example.com --organization "Example Corp"
  signet-server admin rotate --config /etc/signet/signet.yaml --root-key 'file:///offline/ca-root.pem?password-env=SIGNET_KEY_PASSWORD' ca
  signet-server admin trust show --server https://signet.example.com`,
	})
	cmd.AddCommand(newAdminInitCommand(), newAdminImportChainCommand(), newAdminRotateCommand(), newAdminTrustCommand())
	return cmd
}

// initDoneFile is written into --dir when admin init has made everything.
const initDoneFile = ".init-done"

// passwordEnv names the variable holding the password of file keys.
const passwordEnv = "SIGNET_KEY_PASSWORD"

func newAdminInitCommand() *cobra.Command {
	var dir, org, hostname, publicURL, pkcs11Base, passwordFile string
	var yes, externalCA, once bool
	cmd := &cobra.Command{
		Use:   "init --dir DIR",
		Short: "Create the keys, chains and configuration of a new instance",
		Long: `init creates, for a new production instance: the log and CT log keys, a CA root
and intermediate (EKU codeSigning), a TSA root and signing certificate (one
critical timeStamping EKU), the four TUF role keys, and a signet.yaml that
uses them. Keys are
encrypted PEM files (password from $SIGNET_KEY_PASSWORD, or from the file
--password-file names, made with a random password if it does not exist) or,
with --pkcs11, non-extractable keys in a PKCS#11 token. Nothing existing is
overwritten; with --once, a directory where an init already finished (it
leaves .init-done) is left as it is, root keys moved offline or not (for an
init container that runs at every start).
Move the CA and TSA root keys offline afterwards: the server never needs
them. The TUF root key signs root.json on the first start; then remove
tuf.root_signer from signet.yaml and move that key offline too.

With --external-ca no roots are made: init writes ca.csr (CA intermediate,
EKU codeSigning) and tsa.csr (TSA signing certificate, critical
timeStamping EKU) for your existing PKI to sign; install the results with
'signet-server admin import-chain'.`,
		Example: `  SIGNET_KEY_PASSWORD=... signet-server admin init --dir /etc/signet --hostname signet.example.com \
    --public-url https://signet.example.com --organization "Example Corp"
  signet-server admin init --dir /etc/signet --yes \
    --pkcs11 'pkcs11:token=signet?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/signet/pin'
  signet-server admin init --dir /etc/signet --external-ca --organization "Example Corp"
  # an init container: keys in a volume, the password in a secret's file
  signet-server admin init --dir /var/lib/signet --once --yes --password-file /run/secrets/key-password`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return errors.New("--dir is required")
			}
			abs, err := filepath.Abs(dir)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			plan := bootstrap.Plan{Dir: abs, Token: pkcs11Base, ExternalCA: externalCA, Names: pkigen.Names{Organization: org, Prefix: org}}
			makePassword := false
			switch {
			case pkcs11Base != "":
				if passwordFile != "" {
					return errors.New("--password-file is for key files; a PKCS#11 token's PIN goes in its URI (pin-source=file:...)")
				}
				if _, err := plan.URI("log"); err != nil {
					return fmt.Errorf("--pkcs11: %w", err)
				}
			case passwordFile != "":
				if plan.Password.File, err = filepath.Abs(passwordFile); err != nil {
					return err
				}
				_, err := os.Stat(plan.Password.File)
				makePassword = errors.Is(err, fs.ErrNotExist)
			default:
				plan.Password.Env = passwordEnv
				if os.Getenv(passwordEnv) == "" {
					return fmt.Errorf("set %s to the password that will encrypt the key files, or name a file with --password-file", passwordEnv)
				}
			}
			// --once trusts the marker a finished init leaves, not the key
			// files: the root keys are meant to be moved offline.
			marker := filepath.Join(abs, initDoneFile)
			if _, err := os.Stat(marker); err == nil && once {
				fmt.Fprintf(out, "%s was initialised already (%s); nothing to do.\n", abs, initDoneFile)
				return nil
			}
			existing := plan.Existing()
			for _, f := range []string{"signet.yaml", initDoneFile} {
				if _, err := os.Stat(filepath.Join(abs, f)); err == nil {
					existing = append(existing, filepath.Join(abs, f))
				}
			}
			if len(existing) > 0 {
				if _, err := os.Stat(marker); once && err != nil {
					return fmt.Errorf("%s already exists but no init finished there (no %s): init never overwrites; if an earlier init was interrupted, move those files away and run it again", strings.Join(existing, ", "), initDoneFile)
				}
				return fmt.Errorf("%s already exists: init never overwrites; choose another --dir", strings.Join(existing, ", "))
			}
			names := plan.Keys()
			chainFiles := slices.DeleteFunc(plan.Files(), func(f string) bool { return strings.HasSuffix(f, ".pem") && !strings.HasSuffix(f, "-chain.pem") })
			where := "encrypted PEM files in " + abs
			if pkcs11Base != "" {
				where = "the PKCS#11 token of " + redactQuery(pkcs11Base)
			}
			fmt.Fprintf(out, "This creates %d P-256 keys (%s) in %s,\n%s and %s.\n", len(names), strings.Join(names, ", "), where, strings.Join(chainFiles, ", "), filepath.Join(abs, "signet.yaml"))
			if makePassword {
				fmt.Fprintf(out, "The key files' password is made at random and written to %s.\n", plan.Password.File)
			}
			if err := proceed(cmd, yes, "Proceed? [y/N] ", "nothing was created"); err != nil {
				return err
			}
			if makePassword {
				if err := writeNewPassword(plan.Password.File); err != nil {
					return err
				}
			}
			inst, err := bootstrap.Make(plan)
			if err != nil {
				return err
			}
			uris := inst.URIs
			if publicURL == "" {
				publicURL = "https://" + hostname
			}

			yaml := fmt.Sprintf(`# Written by signet-server admin init on %s.
# Every key: docs/configuration.md. Set DATABASE_URL (or database.url) and add
# your OIDC issuers to ca.issuers before the first start.
listen: 0.0.0.0:8080
hostname: %s
public_url: %s
metrics:
  listen: 127.0.0.1:9090   # Prometheus, off the public port
log:
  signer: %q
ct:
  signer: %q
ca:
  signer: %q
  chain: %s
  issuers: []
  # - url: https://token.actions.githubusercontent.com
  #   type: ci-provider
  #   ci_provider: github-actions
timestamp:
  signer: %q
  chain: %s
tuf:
  # Signs root.json on the first start; remove it afterwards and keep the key offline.
  root_signer: %q
  targets_signer: %q
  snapshot_signer: %q
  timestamp_signer: %q
`, time.Now().UTC().Format(time.RFC3339), hostname, publicURL, uris["log"], uris["ct"], uris["ca"],
				filepath.Join(abs, bootstrap.CAChainFile), uris["tsa"], filepath.Join(abs, bootstrap.TSAChainFile),
				uris["tuf-root"], uris["tuf-targets"], uris["tuf-snapshot"], uris["tuf-timestamp"])
			if err := os.WriteFile(filepath.Join(abs, "signet.yaml"), []byte(yaml), 0o600); err != nil {
				return err
			}
			// Last: only a finished init leaves it (--once looks for it).
			if err := os.WriteFile(marker, []byte("signet-server admin init finished "+time.Now().UTC().Format(time.RFC3339)+"\n"), 0o600); err != nil {
				return err
			}
			cfgPath := filepath.Join(abs, "signet.yaml")
			if externalCA {
				fmt.Fprintf(out, `Created the keys, %[1]s and %[2]s, and %[3]s.
Next: have your PKI sign the two requests (keep the requested extensions),
then install the chains, issued certificate first and root last:
  signet-server admin import-chain --config %[3]s ca issued-ca-chain.pem
  signet-server admin import-chain --config %[3]s tsa issued-tsa-chain.pem
`, filepath.Join(abs, "ca.csr"), filepath.Join(abs, "tsa.csr"), cfgPath)
			} else {
				fmt.Fprintf(out, "Created the keys, %s, %s and %s.\nMove the root keys (ca-root, tsa-root) offline: only a new chain needs them.\n",
					filepath.Join(abs, "ca-chain.pem"), filepath.Join(abs, "tsa-chain.pem"), cfgPath)
			}
			then := "Then add ca.issuers, set DATABASE_URL"
			if plan.Password.Env != "" {
				then += " and " + passwordEnv + " (the key files' password)"
			}
			fmt.Fprintf(out, `%[1]s, and
  signet-server run --config %[2]s
After the first start, GET /tuf/1.root.json is the TUF root of trust for
clients (cosign initialize --mirror <public-url>/tuf --root 1.root.json);
then remove tuf.root_signer from the config and move tuf-root offline too.
`, then, cfgPath)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory for the key files, chains and signet.yaml (required)")
	cmd.Flags().StringVar(&org, "organization", "Signet", "organization named in the certificates")
	cmd.Flags().StringVar(&hostname, "hostname", "localhost", "the instance's host name (checkpoint origin)")
	cmd.Flags().StringVar(&publicURL, "public-url", "", "URL clients use (default https://<hostname>)")
	cmd.Flags().StringVar(&pkcs11Base, "pkcs11", "", "create the keys in this PKCS#11 token (URI with token= and module-path/pin query)")
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	cmd.Flags().StringVar(&passwordFile, "password-file", "", "encrypt the key files with the password in this file (one line), instead of $"+passwordEnv+"; made with a random password if it does not exist")
	cmd.Flags().BoolVar(&once, "once", false, "exit successfully without change when an init already finished in --dir (even with the root keys moved offline since)")
	cmd.Flags().BoolVar(&externalCA, "external-ca", false, "make no roots: write CSRs for the CA intermediate and the TSA certificate instead")
	return cmd
}

func newAdminImportChainCommand() *cobra.Command {
	var cfgPath string
	var yes bool
	cmd := &cobra.Command{
		Use:   "import-chain --config FILE ca|tsa CHAIN.pem",
		Short: "Install a chain your PKI issued for the CA or TSA key",
		Long: `import-chain checks a PEM chain (issued certificate first, root last) against
the component's key from the configuration, exactly as start-up would, and
writes it to the configured chain path (ca.chain or timestamp.chain). For a
key in a PKCS#11 token the issued certificate is also stored in the token.
It asks before replacing an existing chain file (--yes for scripts). With the
instance's database configured (DATABASE_URL or database.url) and an
instance started on it, it first records the chain there: a production
server replaces the chain in use only for a chain recorded this way.`,
		Example: `  signet-server admin import-chain --config /etc/signet/signet.yaml ca issued-ca-chain.pem
  signet-server admin import-chain --config /etc/signet/signet.yaml --yes tsa issued-tsa-chain.pem`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(cfgPath, os.Getenv)
			if err != nil {
				return err
			}
			component, chainPath := args[0], args[1]
			signerURI, dest, _, err := componentKey(cfg, component)
			if err != nil {
				return err
			}
			if signerURI == "" || dest == "" {
				return fmt.Errorf("%s has no signer and chain path for %s", cfgPath, component)
			}
			chain, err := readPEMChain(chainPath)
			if err != nil {
				return err
			}
			signer, err := keys.Open(signerURI, keys.Options{})
			if err != nil {
				return fmt.Errorf("opening the %s key: %w", component, err)
			}
			if err := checkChain(component, signer, chain); err != nil {
				return fmt.Errorf("the chain does not fit the %s: %w", component, err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%s chain OK: %s, issued by %s, valid until %s; root %s\n", component, chain[0].Subject, chain[0].Issuer,
				chain[0].NotAfter.UTC().Format(time.RFC3339), chain[len(chain)-1].Subject)
			if _, err := os.Stat(dest); err == nil {
				if err := proceed(cmd, yes, fmt.Sprintf("Replace %s? [y/N] ", dest), "nothing was changed"); err != nil {
					return err
				}
			}
			// A running instance changes its chain only for one recorded as
			// asked for; before the first start there is none to change.
			recorded := false
			if cfg.Database.URL != "" {
				pool, err := rotationDB(cmd, cfg, cfgPath)
				switch {
				case errors.Is(err, errNoInstanceYet):
					// The first chain of a new instance: nothing to record.
				case err != nil:
					return fmt.Errorf("%w (for a first chain, before the instance ever started, unset DATABASE_URL)", err)
				default:
					defer pool.Close()
					if err := rotation.Request(cmd.Context(), pool, component+"-chain", rotation.CertID(chain[0])); err != nil {
						return err
					}
					recorded = true
				}
			}
			if strings.HasPrefix(signerURI, "pkcs11:") {
				if err := keys.ImportCertificate(signerURI, chain[0], keys.Options{}); err != nil {
					return err
				}
			}
			if err := os.WriteFile(dest, pkigen.PEM(chain), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(out, "Wrote %s.\n", dest)
			if !recorded {
				fmt.Fprintf(out, "Not recorded in a database (none configured, or no instance started on it yet): a first chain needs no record, but an instance running with another %s chain refuses this one until it is (run again with DATABASE_URL set).\n", component)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "the instance's signet.yaml (required)")
	cmd.MarkFlagRequired("config") //nolint:errcheck
	cmd.Flags().BoolVar(&yes, "yes", false, "replace an existing chain file without asking")
	return cmd
}

// componentKey is where the configuration keeps a component's key and chain.
func componentKey(cfg config.Config, component string) (signerURI, chainPath, section string, err error) {
	switch component {
	case "ca":
		return cfg.CA.Signer, cfg.CA.Chain, "ca", nil
	case "tsa":
		return cfg.Timestamp.Signer, cfg.Timestamp.Chain, "timestamp", nil
	}
	return "", "", "", fmt.Errorf("component %q: want ca, tsa, ct, log or tuf-root", component)
}

func readPEMChain(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	chain, err := cryptoutils.UnmarshalCertificatesFromPEM(data)
	if err == nil && len(chain) == 0 {
		err = errors.New("no PEM certificates")
	}
	if err != nil {
		return nil, fmt.Errorf("certificate chain %s: %w", path, err)
	}
	return chain, nil
}

// checkChain runs the checks start-up runs on a component's chain.
func checkChain(component string, signer crypto.Signer, chain []*x509.Certificate) error {
	if component == "ca" {
		_, err := ca.New(signer, chain, ca.DefaultValidity)
		return err
	}
	_, err := timestamp.New(timestamp.Config{Signer: signer, Chain: chain})
	return err
}

func redactQuery(uri string) string {
	if i := strings.Index(uri, "?"); i >= 0 {
		return uri[:i]
	}
	return uri
}

// proceed asks prompt unless yes, and turns a "no" into an error saying
// what did not happen.
func proceed(cmd *cobra.Command, yes bool, prompt, declined string) error {
	if yes {
		return nil
	}
	ok, err := confirm(cmd.InOrStdin(), cmd.OutOrStdout(), prompt)
	if err == nil && !ok {
		err = errors.New(declined)
	}
	return err
}

func confirm(in io.Reader, out io.Writer, prompt string) (bool, error) {
	fmt.Fprint(out, prompt)
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	answer := strings.ToLower(strings.TrimSpace(line))
	return answer == "y" || answer == "yes", nil
}

func newAdminTrustCommand() *cobra.Command {
	cmd := cligroup.Make(&cobra.Command{Use: "trust", Short: "Inspect the trust material clients get",
		Example: "  signet-server admin trust show --server https://signet.example.com"})
	var server string
	show := &cobra.Command{
		Use:     "show --server URL",
		Short:   "Print what clients of an instance will trust",
		Example: `  signet-server admin trust show --server https://signet.example.com`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(server, "/")+"/api/v1/trust/trusted_root.json", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s answered HTTP %d", server, resp.StatusCode)
			}
			var tr struct {
				Tlogs, Ctlogs                                []trustedLog
				CertificateAuthorities, TimestampAuthorities []trustedCA
			}
			if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&tr); err != nil {
				return fmt.Errorf("trusted_root.json: %w", err)
			}
			out := cmd.OutOrStdout()
			for _, l := range tr.Tlogs {
				fmt.Fprintf(out, "transparency log  %s\n  log ID %x, %s, valid from %s\n", l.BaseURL, l.LogID.KeyID, l.PublicKey.KeyDetails, l.PublicKey.ValidFor.Start)
			}
			for _, l := range tr.Ctlogs {
				fmt.Fprintf(out, "CT log            %s\n  log ID %x, %s, valid from %s\n", l.BaseURL, l.LogID.KeyID, l.PublicKey.KeyDetails, l.PublicKey.ValidFor.Start)
			}
			for _, group := range []struct {
				label string
				cas   []trustedCA
			}{{"certificate authority", tr.CertificateAuthorities}, {"timestamp authority", tr.TimestampAuthorities}} {
				for _, ca := range group.cas {
					fmt.Fprintf(out, "%-17s %s, valid from %s\n", group.label, ca.URI, ca.ValidFor.Start)
					for _, c := range ca.CertChain.Certificates {
						cert, err := x509.ParseCertificate(c.RawBytes)
						if err != nil {
							return err
						}
						fmt.Fprintf(out, "  %s (until %s)\n", cert.Subject, cert.NotAfter.Format(time.DateOnly))
					}
				}
			}
			return nil
		},
	}
	show.Flags().StringVar(&server, "server", "http://127.0.0.1:8080", "base URL of the instance")
	cmd.AddCommand(show)
	return cmd
}

// trustedLog and trustedCA are the parts of trusted_root.json that
// `trust show` prints.
type trustedLog struct {
	BaseURL string `json:"baseUrl"`
	LogID   struct {
		KeyID []byte `json:"keyId"`
	} `json:"logId"`
	PublicKey struct {
		KeyDetails string `json:"keyDetails"`
		ValidFor   struct {
			Start string `json:"start"`
		} `json:"validFor"`
	} `json:"publicKey"`
}

type trustedCA struct {
	URI       string `json:"uri"`
	CertChain struct {
		Certificates []struct {
			RawBytes []byte `json:"rawBytes"`
		} `json:"certificates"`
	} `json:"certChain"`
	ValidFor struct {
		Start string `json:"start"`
	} `json:"validFor"`
}

// writeNewPassword writes a random password (32 bytes, base64url) to a new
// file only its owner reads.
func writeNewPassword(path string) error {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("writing the key password: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("writing the key password: %w", err)
	}
	if _, err := fmt.Fprintln(f, base64.RawURLEncoding.EncodeToString(b[:])); err != nil {
		f.Close()
		return fmt.Errorf("writing the key password %s: %w", path, err)
	}
	return f.Close()
}
