// Command signet is the client CLI: it talks to a Signet (or Sigstore)
// instance through client/ and never links the server.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-dev/signet/client"
)

// exitVerifyFailed is the exit code for "the thing did not verify", kept
// apart from usage and connection errors (1) so scripts can tell them apart.
const exitVerifyFailed = 3

type verifyError struct{ err error }

func (e *verifyError) Error() string { return e.err.Error() }

func (e *verifyError) Unwrap() error { return e.err }

// notVerified marks err as "does not verify" (exit 3), unless the server
// was not reached or answered with an error: that says nothing against
// what was being verified, and is exit 1 like any failure to run.
func notVerified(err error) error {
	var ue *url.Error
	var api *client.APIError
	var tufHTTP *metadata.ErrDownloadHTTP
	if errors.As(err, &ue) || errors.As(err, &api) || errors.As(err, &tufHTTP) || errors.Is(err, client.ErrNotFound) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err
	}
	return &verifyError{err}
}

// defaultServer is what --server means when it is not given: SIGNET_SERVER,
// else the instance signet init pinned, else a dev instance on this machine.
// Help shows it, so it is worked out before flags are parsed (with the
// default config directory: --config-dir is applied again before running).
func defaultServer() string {
	if v := os.Getenv("SIGNET_SERVER"); v != "" {
		return v
	}
	if in, err := loadInstance(defaultConfigDir()); err == nil && in != nil {
		return in.Server
	}
	return "http://127.0.0.1:8080"
}

// checkServer refuses a --server that is not an http(s) URL with a host,
// before a URL parser or a dial says so less clearly.
func checkServer(server string) error {
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		hint := ""
		if !strings.Contains(server, "://") {
			hint = fmt.Sprintf(" (did you mean https://%s?)", server)
		}
		return fmt.Errorf("--server %q is not an http:// or https:// URL%s", server, hint)
	}
	return nil
}

func main() {
	cmd := newRootCommand(os.Stdout, os.Stderr)
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "signet:", err)
		var ve *verifyError
		if errors.As(err, &ve) {
			os.Exit(exitVerifyFailed)
		}
		os.Exit(1)
	}
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "signet",
		Short:         "Use a Signet instance: its transparency log, timestamps and pinned trust; cosign-format keys",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().String("server", defaultServer(), "base URL of the Signet instance (env SIGNET_SERVER; else the one signet init pinned)")
	root.PersistentFlags().String("config-dir", defaultConfigDir(), "where signet init keeps the pinned instance (env SIGNET_CONFIG_DIR)")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if !cmd.Flags().Changed("server") && os.Getenv("SIGNET_SERVER") == "" && cmd.Flags().Changed("config-dir") {
			dir, _ := cmd.Flags().GetString("config-dir")
			in, err := loadInstance(dir)
			if err != nil {
				return err
			}
			if in != nil {
				if err := cmd.Flags().Set("server", in.Server); err != nil {
					return err
				}
			}
		}
		server, _ := cmd.Flags().GetString("server")
		return checkServer(server)
	}
	root.PersistentFlags().StringP("output", "o", "text", "output format: text or json")
	root.AddCommand(newInitCommand(), newTimestampCommand(), newLogCommand(),
		newSignImageCommand(), newVerifyImageCommand(), newAttestImageCommand(), newVerifyAttestationCommand(), newSignBlobCommand(), newVerifyBlobCommand(), newAttestBlobCommand(), newVerifyBlobAttestationCommand(),
		newTreeCommand(), newTriangulateCommand(), newDownloadCommand(), newCopyCommand(), newCleanCommand(), newUploadCommand(), newFetchCommand(),
		newGenerateKeyPairCommand(), newImportKeyPairCommand(), newPublicKeyCommand(), newVersionCommand(), newMonitorCommand())
	return root
}
