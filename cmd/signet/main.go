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
	root.PersistentFlags().String("server", envOr("SIGNET_SERVER", "http://127.0.0.1:8080"), "base URL of the Signet instance (env SIGNET_SERVER)")
	root.PersistentFlags().StringP("output", "o", "text", "output format: text or json")
	root.AddCommand(newTimestampCommand(), newLogCommand())
	return root
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
