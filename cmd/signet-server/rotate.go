package main

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/internal/keys"
	"github.com/signet-dev/signet/internal/pkigen"
)

func newAdminRotateCommand() *cobra.Command {
	var cfgPath, rootKey string
	var yes bool
	cmd := &cobra.Command{
		Use:   "rotate --config FILE --root-key URI ca|tsa",
		Short: "Replace the CA or TSA key and certificate under the same root",
		Long: `rotate creates a new key for the CA intermediate or the TSA signing
certificate (next to the old one: a file in the config's directory, or an
object in the same PKCS#11 token), has the existing root (--root-key, brought
back online for this) issue its certificate, checks the chain as start-up
would, and points signet.yaml at the new key and chain. Restart the server to
rotate: the trusted root then keeps the old chain, its window closed at the
restart, so everything it signed keeps verifying.

Chains from an external PKI: make a key and CSR yourself, then use
'signet-server admin import-chain'. The log and CT keys cannot be rotated yet.`,
		Example: `  SIGNET_KEY_PASSWORD=... signet-server admin rotate --config /etc/signet/signet.yaml \
    --root-key 'file:///offline/ca-root.pem?password-env=SIGNET_KEY_PASSWORD' ca`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cfgPath == "" || rootKey == "" {
				return errors.New("--config and --root-key are required")
			}
			cfg, err := config.Load(cfgPath, os.Getenv)
			if err != nil {
				return err
			}
			component := args[0]
			signerURI, chainPath, yamlSection, err := componentKey(cfg, component)
			if err != nil {
				return err
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

			suffix := time.Now().UTC().Format("20060102T150405")
			dir := filepath.Dir(cfgPath)
			inToken := strings.HasPrefix(signerURI, "pkcs11:")
			newURI := keys.FileURI(filepath.Join(dir, component+"-"+suffix+".pem"), passwordEnv)
			if inToken {
				if newURI, err = pkcs11Object(withoutObject(signerURI), "signet-"+component+"-"+suffix); err != nil {
					return err
				}
			} else if os.Getenv(passwordEnv) == "" {
				return fmt.Errorf("set %s to the password that will encrypt the new key file", passwordEnv)
			}
			newChainPath := filepath.Join(dir, component+"-chain-"+suffix+".pem")
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "This creates a new %s key (%s) and chain %s under root %q,\nand points %s.signer and %s.chain in %s at them.\n",
				component, redactQuery(newURI), newChainPath, root.Subject.String(), yamlSection, yamlSection, cfgPath)
			if !yes {
				ok, err := confirm(cmd.InOrStdin(), out, "Proceed? [y/N] ")
				if err != nil {
					return err
				}
				if !ok {
					return errors.New("nothing was changed")
				}
			}
			signer, err := createKey(newURI, inToken, filepath.Join(dir, component+"-"+suffix+".pem"))
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
			if err := setConfigValues(cfgPath, yamlSection, map[string]string{"signer": newURI, "chain": newChainPath}); err != nil {
				return fmt.Errorf("updating %s (the new key and %s exist; set %s.signer and %s.chain by hand): %w", cfgPath, newChainPath, yamlSection, yamlSection, err)
			}
			fmt.Fprintf(out, "New %s certificate %s (serial %s).\nRestart signet-server to rotate; the old chain stays in the trusted root for what it signed.\nMove the root key offline again.\n",
				component, chain[0].Subject, chain[0].SerialNumber)
			return nil
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "the instance's signet.yaml (required; updated in place)")
	cmd.Flags().StringVar(&rootKey, "root-key", "", "key URI of the chain's root (required)")
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	return cmd
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
	sec := mappingValue(doc.Content[0], section)
	if sec == nil || sec.Kind != yaml.MappingNode {
		return fmt.Errorf("no %s: section", section)
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
