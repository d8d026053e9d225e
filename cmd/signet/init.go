package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/tuf"
	"github.com/spf13/cobra"

	"github.com/signet-dev/signet/client"
)

// instance is what `signet init` pins: the server and, next to this file in
// the config directory, the trust material it fetched through TUF.
type instance struct {
	Server     string    `json:"server"`
	RootSHA256 string    `json:"tuf_root_sha256"`
	Fetched    time.Time `json:"fetched"`
}

const (
	instanceFile      = "instance.json"
	trustedRootFile   = "trusted_root.json"
	signingConfigFile = "signing_config.json"
	tufRootFile       = "tuf-root.json"
	maxRootBytes      = 512 << 10 // go-tuf's own limit for root.json
)

func defaultConfigDir() string {
	if d := os.Getenv("SIGNET_CONFIG_DIR"); d != "" {
		return d
	}
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "signet")
	}
	return ".signet"
}

// loadInstance returns the pinned instance, or nil when init never ran.
func loadInstance(dir string) (*instance, error) {
	data, err := os.ReadFile(filepath.Join(dir, instanceFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var in instance
	if err := json.Unmarshal(data, &in); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, instanceFile), err)
	}
	return &in, nil
}

// pinnedTrustedRoot is the trust material init stored for server, or nil
// when server is not the pinned instance.
func pinnedTrustedRoot(dir, server string) (*root.TrustedRoot, error) {
	in, err := loadInstance(dir)
	if err != nil || in == nil || strings.TrimSuffix(server, "/") != in.Server {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(dir, trustedRootFile))
	if err != nil {
		return nil, fmt.Errorf("the trust material of %s is missing (run signet init again): %w", in.Server, err)
	}
	return root.NewTrustedRootFromJSON(data)
}

var errNothingPinned = errors.New("signet init pinned no instance at this server URL")

// pinnedForCommand is the trusted root signet init pinned for the command's
// --server, or errNothingPinned.
func pinnedForCommand(cmd *cobra.Command) (*root.TrustedRoot, error) {
	server, _ := cmd.Flags().GetString("server")
	dir, _ := cmd.Flags().GetString("config-dir")
	tr, err := pinnedTrustedRoot(dir, server)
	if err == nil && tr == nil {
		err = errNothingPinned
	}
	return tr, err
}

func newInitCommand() *cobra.Command {
	var rootPath, rootSHA string
	cmd := &cobra.Command{
		Use:   "init [--server URL (--root root.json | --root-sha256 HEX)]",
		Short: "Pin an instance: fetch its trust material through TUF",
		Long: `init bootstraps TUF from the instance's root.json, fetches trusted_root.json and
signing_config.json from <server>/tuf with every signature and expiry checked,
and stores them with the server URL in the config directory ($SIGNET_CONFIG_DIR,
default ~/.config/signet). Later commands then default to that server, and the
log commands pin its log key from the trusted root instead of asking the server.

The root of trust is either a root.json you got from the operator (--root) or
the instance's own 1.root.json checked against a SHA-256 the operator
published (--root-sha256). signet init with neither refreshes the pinned
instance's trust material through TUF, from the root pinned first.`,
		Example: `  signet init --server https://signet.example.com --root root.json
  signet init --server https://signet.example.com --root-sha256 3f1c...e9
  signet init    # later: refresh the pinned instance's trusted root and signing config
  cosign sign-blob --signing-config ~/.config/signet/signing_config.json \
    --trusted-root ~/.config/signet/trusted_root.json --bundle b.json file`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if rootPath != "" && rootSHA != "" {
				return errors.New("give one of --root (a root.json from the operator) or --root-sha256 (its published SHA-256), not both")
			}
			server, _ := cmd.Flags().GetString("server")
			server = strings.TrimSuffix(server, "/")
			dir, _ := cmd.Flags().GetString("config-dir")
			ctx, cancel := timeout(cmd)
			defer cancel()
			var rootJSON []byte
			var err error
			if rootPath == "" && rootSHA == "" {
				rootJSON, err = pinnedRoot(dir, server)
			} else {
				rootJSON, err = bootstrapRoot(ctx, server, rootPath, rootSHA)
			}
			if err != nil {
				return err
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			opts := tuf.DefaultOptions().WithRoot(rootJSON).WithRepositoryBaseURL(server + "/tuf").
				WithCachePath(filepath.Join(dir, "tuf")).WithContext(ctx)
			tc, err := tuf.New(opts)
			if err != nil {
				return notVerified(fmt.Errorf("TUF update from %s/tuf: %w", server, err))
			}
			trJSON, err := tc.GetTarget("trusted_root.json")
			if err != nil {
				return notVerified(fmt.Errorf("TUF target trusted_root.json: %w", err))
			}
			tr, err := root.NewTrustedRootFromJSON(trJSON)
			if err != nil {
				return fmt.Errorf("the instance's trusted_root.json: %w", err)
			}
			scJSON, err := tc.GetTarget("signing_config.v0.2.json")
			if err != nil {
				return notVerified(fmt.Errorf("TUF target signing_config.v0.2.json: %w", err))
			}
			if _, err := root.NewSigningConfigFromJSON(scJSON); err != nil {
				return fmt.Errorf("the instance's signing_config.json: %w", err)
			}
			sum := sha256.Sum256(rootJSON)
			in := instance{Server: server, RootSHA256: hex.EncodeToString(sum[:]), Fetched: time.Now().UTC()}
			inJSON, _ := json.MarshalIndent(in, "", "  ")
			// instance.json last: it is what makes the other files count.
			for _, f := range []struct {
				name string
				body []byte
			}{{tufRootFile, rootJSON}, {trustedRootFile, trJSON}, {signingConfigFile, scJSON}, {instanceFile, inJSON}} {
				if err := os.WriteFile(filepath.Join(dir, f.name), f.body, 0o644); err != nil {
					return err
				}
			}
			text := fmt.Sprintf(`Pinned %s (TUF root sha256 %s):
  %d log(s), %d CA(s), %d CT log(s), %d TSA(s) in %s
  signing config in %s
cosign can use them directly:
  cosign sign-blob --signing-config %s --trusted-root %s --bundle file.sigstore.json file`,
				server, in.RootSHA256, len(tr.RekorLogs()), len(tr.FulcioCertificateAuthorities()), len(tr.CTLogs()), len(tr.TimestampingAuthorities()),
				filepath.Join(dir, trustedRootFile), filepath.Join(dir, signingConfigFile), filepath.Join(dir, signingConfigFile), filepath.Join(dir, trustedRootFile))
			return report(cmd, map[string]any{"server": server, "tuf_root_sha256": in.RootSHA256, "trusted_root": filepath.Join(dir, trustedRootFile), "signing_config": filepath.Join(dir, signingConfigFile)}, text)
		},
	}
	cmd.Flags().StringVar(&rootPath, "root", "", "TUF root.json from the operator")
	cmd.Flags().StringVar(&rootSHA, "root-sha256", "", "SHA-256 (hex) of the instance's 1.root.json, as the operator published it")
	return cmd
}

// pinnedRoot is the TUF root.json init pinned for server, for a refresh:
// the TUF client walks from it to the instance's newest root, so a refresh
// trusts nothing the first init did not. It is checked against the digest
// recorded at the time.
func pinnedRoot(dir, server string) ([]byte, error) {
	in, err := loadInstance(dir)
	if err != nil {
		return nil, err
	}
	if in == nil {
		return nil, fmt.Errorf("no instance is pinned in %s yet: give --server with --root (a root.json from the operator) or --root-sha256 (its published SHA-256)", dir)
	}
	if in.Server != server {
		return nil, fmt.Errorf("%s is not the pinned instance (%s): to pin it instead, give --root or --root-sha256", server, in.Server)
	}
	data, err := os.ReadFile(filepath.Join(dir, tufRootFile))
	if err != nil {
		return nil, fmt.Errorf("the pinned TUF root is missing (give --root or --root-sha256 to pin %s again): %w", server, err)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != in.RootSHA256 {
		return nil, &verifyError{fmt.Errorf("%s has SHA-256 %x, not the %s recorded when %s was pinned: it was changed; give --root or --root-sha256 to pin again", filepath.Join(dir, tufRootFile), sum, in.RootSHA256, server)}
	}
	return data, nil
}

// bootstrapRoot reads the given root.json, or downloads the instance's first
// root and checks it against the expected digest.
func bootstrapRoot(ctx context.Context, server, path, wantSHA string) ([]byte, error) {
	if path != "" {
		return os.ReadFile(path)
	}
	body, err := client.Fetch(ctx, server+"/tuf/1.root.json", maxRootBytes)
	if err != nil {
		return nil, fmt.Errorf("the TUF root: %w", err)
	}
	sum := sha256.Sum256(body)
	if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, strings.TrimSpace(wantSHA)) {
		return nil, &verifyError{fmt.Errorf("the instance's root.json has SHA-256 %s, not the expected %s: nothing was pinned", got, wantSHA)}
	}
	return body, nil
}
