// Command signet is the client CLI: it talks to a Signet (or Sigstore)
// instance through client/ and never links the server.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// exitVerifyFailed is the exit code for "the thing did not verify", kept
// apart from usage and connection errors (1) so scripts can tell them apart.
const exitVerifyFailed = 3

type verifyError struct{ err error }

func (e *verifyError) Error() string { return e.err.Error() }

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
		Short:         "Sign and verify with a Signet instance",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().String("server", envOr("SIGNET_SERVER", "http://127.0.0.1:8080"), "base URL of the Signet instance (env SIGNET_SERVER; default: the one signet init pinned)")
	root.PersistentFlags().String("config-dir", defaultConfigDir(), "where signet init keeps the pinned instance (env SIGNET_CONFIG_DIR)")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if cmd.Flags().Changed("server") || os.Getenv("SIGNET_SERVER") != "" {
			return nil
		}
		dir, _ := cmd.Flags().GetString("config-dir")
		in, err := loadInstance(dir)
		if err != nil || in == nil {
			return err
		}
		return cmd.Flags().Set("server", in.Server)
	}
	root.PersistentFlags().StringP("output", "o", "text", "output format: text or json")
	root.AddCommand(newInitCommand(), newTimestampCommand(), newLogCommand())
	return root
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
