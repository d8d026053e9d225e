package main

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/signet-dev/signet/internal/bootstrap"
	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/internal/db"
	"github.com/signet-dev/signet/internal/keys"
	"github.com/signet-dev/signet/internal/pkigen"
	"github.com/signet-dev/signet/internal/rotation"
	"github.com/signet-dev/signet/trust/tuf"
)

func newAdminRotateCommand() *cobra.Command {
	var cfgPath, rootKey, newRootKey, existingKey string
	var yes, cancel bool
	cmd := &cobra.Command{
		Use:   "rotate --config FILE [--root-key URI] ca|tsa|ct|log|log-v2|tuf-root",
		Short: "Rotate the CA, TSA, CT, transparency log or Rekor v2 log key, or sign a new TUF root",
		Long: `rotate changes a key or chain on purpose. For ca, tsa, ct and log it records
the change in the instance's database (database.url or DATABASE_URL) before
pointing signet.yaml at the new key or chain; a production server changes a
log key or a chain only for one recorded this way (asking again for another
replaces the request), and refuses any other change at start-up.

ca and tsa create a new key for the CA intermediate or the TSA signing
certificate (a file in the config's directory, or an object in the same
PKCS#11 token), have the existing root (--root-key,
brought back online for this) issue its certificate, check the chain as
start-up would, record it, and point signet.yaml at them. Restart the server
to rotate: the trusted root then keeps the old chain, its window closed at
the restart, so everything it signed keeps verifying. A chain from an
external PKI is installed with admin import-chain instead.

ct makes a new CT log key (or takes --key URI, one you made) and points
ct.signer at it; at the restart the CT log retires its tree and starts a new
one, and the old key stays in the trusted root with its window closed.

log-v2 does the same for the Rekor v2 log (log.v2.signer): the old tree is
frozen at its last checkpoint and stays in the trusted root, under its own
baseUrl, for the entries it logged; the new tree starts at index 0.

log does the same for the transparency log: at the restart the tree the old
key signed is frozen at its last checkpoint and stays readable as an
inactive shard (GET /api/v1/log lists it; its entries keep their indexes,
SETs and the old key's checkpoint), new entries go to a new tree whose
indexes continue after it, and the old key stays in the trusted root with
its window closed. Stop the server cleanly before the restart.

tuf-root signs the next root.json version in the instance's database
with the current TUF root key (--root-key) and the next one (--new-root-key,
default the same: a renewal before the yearly expiry). It lists the
tuf.*_signer keys of the config, so change those first to rotate an online
TUF key. Clients that pinned an earlier root follow.

The setting rotate rewrites must not be overridden from the environment
(SIGNET_LOG_SIGNER and the like): the server would go on with the old one.`,
		Example: `  DATABASE_URL=postgres://... SIGNET_KEY_PASSWORD=... signet-server admin rotate --config /etc/signet/signet.yaml \
    --root-key 'file:///offline/ca-root.pem?password-env=SIGNET_KEY_PASSWORD' ca
  DATABASE_URL=postgres://... signet-server admin rotate --config /etc/signet/signet.yaml log
  DATABASE_URL=postgres://... signet-server admin rotate --config /etc/signet/signet.yaml \
    --key 'pkcs11:token=signet;object=log-2027?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/signet/pin' log
  DATABASE_URL=postgres://... signet-server admin rotate --config /etc/signet/signet.yaml \
    --root-key 'file:///offline/tuf-root.pem?password-env=SIGNET_KEY_PASSWORD' tuf-root`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(cfgPath, os.Getenv)
			if err != nil {
				return err
			}
			component := args[0]
			if cancel {
				return cancelRotation(cmd, cfg, cfgPath, component)
			}
			switch component {
			case "ct":
				return rotateLogKey(cmd, cfgPath, "ct", cfg.CT.Signer, existingKey, yes)
			case "log":
				return rotateLogKey(cmd, cfgPath, "log", cfg.Log.Signer, existingKey, yes)
			case "log-v2":
				return rotateLogKey(cmd, cfgPath, "log-v2", cfg.Log.V2.Signer, existingKey, yes)
			case "tuf-root":
				if rootKey == "" {
					return errors.New("--root-key is required")
				}
				return rotateTUFRoot(cmd, cfg, rootKey, newRootKey, yes)
			}
			if existingKey != "" {
				return errors.New("--key is for log and ct; a CA or TSA chain from your own PKI is installed with admin import-chain")
			}
			signerURI, chainPath, yamlSection, err := componentKey(cfg, component)
			if err != nil {
				return err
			}
			if err := notFromEnv(yamlSection); err != nil {
				return err
			}
			if rootKey == "" {
				return errors.New("--root-key is required")
			}
			if signerURI == "" || chainPath == "" {
				return fmt.Errorf("%s has no %s.signer and %s.chain to rotate", cfgPath, yamlSection, yamlSection)
			}
			current, err := readPEMChain(chainPath)
			if err != nil {
				return err
			}
			root := current[len(current)-1]
			rootSigner, err := keys.Open(rootKey, keys.Options{})
			if err != nil {
				return fmt.Errorf("opening the root key: %w", err)
			}
			if pub, ok := rootSigner.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(root.PublicKey) {
				return fmt.Errorf("--root-key is not the key of the chain's root %q", root.Subject)
			}

			pool, err := rotationDB(cmd, cfg, cfgPath)
			if err != nil && !errors.Is(err, errNoInstanceYet) {
				return err
			}
			if pool != nil {
				defer pool.Close()
			}
			dir := filepath.Dir(cfgPath)
			suffix := freshSuffix(dir, component)
			newURI, inToken, password, err := nextKeyURI(signerURI, dir, component, suffix)
			if err != nil {
				return err
			}
			newChainPath := filepath.Join(dir, component+"-chain-"+suffix+".pem")
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "This creates a new %s key (%s) and chain %s under root %q,\nrecords the rotation in the database, and points %s.signer and %s.chain in %s at them.\n",
				component, redactQuery(newURI), newChainPath, root.Subject.String(), yamlSection, yamlSection, cfgPath)
			if err := proceed(cmd, yes, "Proceed? [y/N] ", "nothing was changed"); err != nil {
				return err
			}
			signer, err := bootstrap.CreateKey(newURI, inToken, keyFilePath(dir, component, suffix), password)
			if err != nil {
				return fmt.Errorf("creating the new key: %w", err)
			}
			names := pkigen.Names{Organization: strings.Join(root.Subject.Organization, ", "), Prefix: strings.Join(root.Subject.Organization, ", ")}
			var chain []*x509.Certificate
			if component == "ca" {
				chain, err = pkigen.CAIntermediate(names, root, rootSigner, signer.Public())
			} else {
				chain, err = pkigen.TSALeaf(names, root, rootSigner, signer.Public())
			}
			if err == nil {
				err = checkChain(component, signer, chain)
			}
			if err != nil {
				return fmt.Errorf("issuing the new %s certificate: %w", component, err)
			}
			if inToken {
				if err := keys.ImportCertificate(newURI, chain[0], keys.Options{}); err != nil {
					return err
				}
			}
			if err := os.WriteFile(newChainPath, pkigen.PEM(chain), 0o644); err != nil {
				return err
			}
			if err := recordRotation(cmd, pool, component+"-chain", rotation.CertID(chain[0])); err != nil {
				return fmt.Errorf("%w (the new key and %s exist; %s is unchanged)", err, newChainPath, cfgPath)
			}
			if err := setConfigValues(cfgPath, yamlSection, map[string]string{"signer": newURI, "chain": newChainPath}); err != nil {
				return fmt.Errorf("updating %s (the new key and %s exist; set %s.signer and %s.chain by hand): %w", cfgPath, newChainPath, yamlSection, yamlSection, err)
			}
			fmt.Fprintf(out, "New %s certificate %s (serial %s).\nRestart signet-server to rotate; the old chain stays in the trusted root for what it signed.\nMove the root key offline again.\n",
				component, chain[0].Subject, chain[0].SerialNumber)
			return nil
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "the instance's signet.yaml (required; updated in place)")
	cmd.MarkFlagRequired("config") //nolint:errcheck
	cmd.Flags().StringVar(&rootKey, "root-key", "", "ca, tsa: key URI of the chain's root; tuf-root: the current TUF root key")
	cmd.Flags().StringVar(&newRootKey, "new-root-key", "", "tuf-root only: key URI of the next TUF root key (default: --root-key)")
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&cancel, "cancel", false, "log, log-v2, ct, ca, tsa: withdraw the rotation asked for and not carried out yet (the next start then refuses the new key or chain)")
	cmd.Flags().StringVar(&existingKey, "key", "", "log, log-v2, ct: rotate to this existing key (URI) instead of making one")
	return cmd
}

// notFromEnv refuses a rotation of section's settings while the environment
// sets them (config.Load applies SIGNET_* over the file): rotate rewrites
// the file, and a server with the variable set would go on with the old
// key. Set, not merely different: a unit file setting the same value today
// still overrides tomorrow's file.
func notFromEnv(section string) error {
	vars := map[string][]string{
		"log":       {"SIGNET_LOG_SIGNER"},
		"log.v2":    {"SIGNET_LOG_V2_SIGNER"},
		"ct":        {"SIGNET_CT_SIGNER"},
		"ca":        {"SIGNET_CA_SIGNER", "SIGNET_CA_CHAIN"},
		"timestamp": {"SIGNET_TSA_SIGNER", "SIGNET_TSA_CHAIN"},
	}[section]
	var set []string
	for _, v := range vars {
		if os.Getenv(v) != "" {
			set = append(set, v)
		}
	}
	if len(set) > 0 {
		return fmt.Errorf("%s set in the environment overrides the file that rotate rewrites: the server would go on with the old setting. "+
			"Unset it (here and in the server's environment: unit file, manifest) and rotate again", strings.Join(set, " and "))
	}
	return nil
}

func rotateTUFRoot(cmd *cobra.Command, cfg config.Config, rootKey, newRootKey string, yes bool) error {
	if cfg.Database.URL == "" {
		return errors.New("tuf-root: set database.url or DATABASE_URL to the instance's database")
	}
	if cfg.TUF.TargetsSigner == "" || cfg.TUF.SnapshotSigner == "" || cfg.TUF.TimestampSigner == "" {
		return errors.New("tuf-root: the config needs tuf.targets_signer, tuf.snapshot_signer and tuf.timestamp_signer")
	}
	if newRootKey == "" {
		newRootKey = rootKey
	}
	open := func(what, uri string) (crypto.Signer, error) {
		k, err := keys.Open(uri, keys.Options{})
		if err != nil {
			return nil, fmt.Errorf("opening the %s key: %w", what, err)
		}
		return k, nil
	}
	var ks tuf.Keys
	var current, next crypto.Signer
	var err error
	for _, k := range []struct {
		what, uri string
		dst       *crypto.Signer
	}{{"root", rootKey, &current}, {"new root", newRootKey, &next}, {"targets", cfg.TUF.TargetsSigner, &ks.Targets},
		{"snapshot", cfg.TUF.SnapshotSigner, &ks.Snapshot}, {"timestamp", cfg.TUF.TimestampSigner, &ks.Timestamp}} {
		if *k.dst, err = open(k.what, k.uri); err != nil {
			return err
		}
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "This signs a new TUF root.json version (root key %s) listing the online keys of the config.\n", redactQuery(newRootKey))
	if err := proceed(cmd, yes, "Proceed? [y/N] ", "nothing was changed"); err != nil {
		return err
	}
	pool, err := db.Open(cmd.Context(), cfg.Database.URL)
	if err != nil {
		return err
	}
	defer pool.Close()
	v, err := tuf.New(pool, ks, slog.New(slog.DiscardHandler)).RotateRoot(cmd.Context(), current, next)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Published root.json version %d (expires in a year); clients that pinned an earlier root follow it.\nMove the root key offline again.\n", v)
	return nil
}

// nextKeyURI names a rotated key: an object in the same token as the
// current one, or a file next to the config encrypted like the current one
// (the same password variable or file), and returns that password.
func nextKeyURI(current, dir, component, suffix string) (uri string, inToken bool, password []byte, err error) {
	if strings.HasPrefix(current, "pkcs11:") {
		uri, err = bootstrap.TokenObject(withoutObject(current), "signet-"+component+"-"+suffix)
		return uri, true, nil, err
	}
	pw, err := keys.PasswordSourceOf(current)
	if err != nil {
		return "", false, nil, err
	}
	if pw == (keys.PasswordSource{}) {
		pw.Env = passwordEnv
	}
	if password, err = pw.Read(os.Getenv); err != nil {
		return "", false, nil, fmt.Errorf("the new key file is encrypted with the current one's password source: %w", err)
	}
	return keys.FileURI(keyFilePath(dir, component, suffix), pw), false, password, nil
}

// freshSuffix names a rotation's files by the time, with a counter when a
// rotation in the same millisecond already took that name.
// Milliseconds: a PKCS#11 object's label takes the suffix too, and a token
// is not looked in for a label already taken.
func freshSuffix(dir, component string) string {
	base := strings.Replace(time.Now().UTC().Format("20060102T150405.000"), ".", "-", 1)
	suffix := base
	for i := 2; ; i++ {
		if _, err := os.Stat(keyFilePath(dir, component, suffix)); errors.Is(err, fs.ErrNotExist) {
			return suffix
		}
		suffix = fmt.Sprintf("%s-%d", base, i)
	}
}

func keyFilePath(dir, component, suffix string) string {
	return filepath.Join(dir, component+"-"+suffix+".pem")
}

// rotateLogKey makes a new key for the CT log (component "ct"), the
// transparency log ("log") or the Rekor v2 log ("log-v2"), or takes
// existing (a key URI), records the rotation in the database and points
// the component's signer setting at it; the server retires the old tree
// when it starts with the new key.
func rotateLogKey(cmd *cobra.Command, cfgPath, component, current, existing string, yes bool) error {
	section := map[string]string{"ct": "ct", "log": "log", "log-v2": "log.v2"}[component]
	if current == "" {
		return fmt.Errorf("%s has no %s.signer to rotate", cfgPath, section)
	}
	if err := notFromEnv(section); err != nil {
		return err
	}
	what := map[string]string{"ct": "CT log", "log": "transparency log", "log-v2": "Rekor v2 log"}[component]
	dir := filepath.Dir(cfgPath)
	suffix := freshSuffix(dir, component)
	newURI, inToken, password := existing, false, []byte(nil)
	if existing == "" {
		var err error
		if newURI, inToken, password, err = nextKeyURI(current, dir, component, suffix); err != nil {
			return err
		}
	}
	// The rotation is recorded in the instance's database: a server starts
	// a new tree only for a key asked for this way.
	cfg, err := config.Load(cfgPath, os.Getenv)
	if err != nil {
		return err
	}
	pool, err := rotationDB(cmd, cfg, cfgPath)
	if err != nil && !errors.Is(err, errNoInstanceYet) {
		return err
	}
	if pool != nil {
		defer pool.Close()
	}
	out := cmd.OutOrStdout()
	verb := "creates a new"
	if existing != "" {
		verb = "takes the"
	}
	fmt.Fprintf(out, "This %s %s key (%s), records the rotation in the database and points %s.signer in %s at it.\n", verb, what, redactQuery(newURI), section, cfgPath)
	if err := proceed(cmd, yes, "Proceed? [y/N] ", "nothing was changed"); err != nil {
		return err
	}
	var signer crypto.Signer
	if existing != "" {
		if signer, err = keys.Open(existing, keys.Options{}); err != nil {
			return fmt.Errorf("--key: %w", err)
		}
	} else if signer, err = bootstrap.CreateKey(newURI, inToken, keyFilePath(dir, component, suffix), password); err != nil {
		return fmt.Errorf("creating the new %s key: %w", what, err)
	}
	logName := map[string]string{"ct": "ct", "log": "rekor", "log-v2": "rekor-v2"}[component]
	id, err := rotation.KeyID(signer.Public())
	if err != nil {
		return err
	}
	if err := recordRotation(cmd, pool, logName, id); err != nil {
		return fmt.Errorf("%w (the key %s exists; %s is unchanged)", err, redactQuery(newURI), cfgPath)
	}
	if err := setConfigValues(cfgPath, section, map[string]string{"signer": newURI}); err != nil {
		return fmt.Errorf("updating %s (the new key exists and its rotation is recorded; set %s.signer by hand): %w", cfgPath, section, err)
	}
	fmt.Fprintf(out, "Restart signet-server to rotate: the %s starts a new tree with the new key, and the old key stays in the trusted root for what it signed.\n", what)
	return nil
}

// recordRotation records the request in pool, the instance's database; nil
// means no instance started on it yet, and there is nothing to record: the
// first start simply takes what is configured.
func recordRotation(cmd *cobra.Command, pool *pgxpool.Pool, what, id string) error {
	if pool == nil {
		fmt.Fprintln(cmd.OutOrStdout(), "No instance has started on the database yet: nothing to record, its first start takes the new key.")
		return nil
	}
	return rotation.Request(cmd.Context(), pool, what, id)
}

// cancelRotation closes the open request for component's key or chain.
func cancelRotation(cmd *cobra.Command, cfg config.Config, cfgPath, component string) error {
	what, ok := map[string]string{"log": "rekor", "log-v2": "rekor-v2", "ct": "ct", "ca": "ca-chain", "tsa": "tsa-chain"}[component]
	if !ok {
		return fmt.Errorf("--cancel is for log, log-v2, ct, ca or tsa, not %q", component)
	}
	pool, err := rotationDB(cmd, cfg, cfgPath)
	if err != nil {
		return err
	}
	defer pool.Close()
	id, err := rotation.Open(cmd.Context(), pool, what)
	if err != nil {
		return err
	}
	if id == "" {
		fmt.Fprintf(cmd.OutOrStdout(), "No %s rotation is asked for.\n", component)
		return nil
	}
	if err := rotation.Done(cmd.Context(), pool, what, id); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "Withdrew the %s rotation to %s. If %s points at that key or chain, point it back: the next start refuses it.\n", component, id, cfgPath)
	return nil
}

// errNoInstanceYet is a database no Signet server has started on.
var errNoInstanceYet = errors.New("no Signet instance has started on the database yet: there is nothing to rotate")

// rotationDB opens the instance's database, where a rotation is recorded
// before the configuration points at the new key or chain: a production
// server changes a log key or a chain only for one asked for this way. It
// neither migrates the database nor writes to one that is not a current
// Signet production database, and says which it is.
func rotationDB(cmd *cobra.Command, cfg config.Config, cfgPath string) (*pgxpool.Pool, error) {
	if cfg.Database.URL == "" {
		return nil, fmt.Errorf("the rotation is recorded in the instance's database: set DATABASE_URL (or database.url in %s)", cfgPath)
	}
	pool, err := db.Connect(cmd.Context(), cfg.Database.URL)
	if err != nil {
		return nil, fmt.Errorf("the rotation is recorded in the instance's database: %w", err)
	}
	var requests, instance, signet bool
	var kind string
	err = pool.QueryRow(cmd.Context(), `SELECT to_regclass('signet_rotation_requests') IS NOT NULL, to_regclass('signet_instance') IS NOT NULL,
		to_regclass('signet_schema_migrations') IS NOT NULL`).Scan(&requests, &instance, &signet)
	if err == nil && instance {
		err = pool.QueryRow(cmd.Context(), `SELECT COALESCE((SELECT kind FROM signet_instance), '')`).Scan(&kind)
	}
	switch {
	case err != nil:
		pool.Close()
		return nil, fmt.Errorf("reading the instance's database: %w", err)
	case !signet:
		pool.Close()
		return nil, errNoInstanceYet
	case !requests:
		pool.Close()
		return nil, errors.New("the database's schema is older than this signet-server: start the new server once (it migrates the database), then rotate")
	case kind == "dev":
		pool.Close()
		return nil, errors.New("the database belongs to a dev instance: dev mode rotates by itself when a key changes")
	}
	if pc := pool.Config().ConnConfig; pc != nil {
		fmt.Fprintf(cmd.OutOrStdout(), "Database: %s on %s.\n", pc.Database, pc.Host)
	}
	return pool, nil
}

// withoutObject drops the object= attribute of a PKCS#11 key URI, leaving
// the token.
func withoutObject(uri string) string {
	path, query, _ := strings.Cut(uri, "?")
	var kept []string
	for _, attr := range strings.Split(path, ";") {
		if !strings.HasPrefix(attr, "object=") && !strings.HasPrefix(attr, "id=") {
			kept = append(kept, attr)
		}
	}
	return strings.Join(kept, ";") + "?" + query
}

// setConfigValues rewrites section.key scalars in a YAML file, keeping its
// comments and layout.
func setConfigValues(path, section string, values map[string]string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return err
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return errors.New("not a YAML mapping")
	}
	// A dotted section ("log.v2") is a mapping inside a mapping.
	sec := doc.Content[0]
	for _, part := range strings.Split(section, ".") {
		if sec = mappingValue(sec, part); sec == nil || sec.Kind != yaml.MappingNode {
			return fmt.Errorf("no %s: section", section)
		}
	}
	for k, v := range values {
		n := mappingValue(sec, k)
		if n == nil {
			return fmt.Errorf("no %s.%s", section, k)
		}
		n.Kind, n.Tag, n.Value, n.Style = yaml.ScalarNode, "!!str", v, yaml.DoubleQuotedStyle
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func mappingValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}
