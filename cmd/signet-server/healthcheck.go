package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// newHealthcheckCommand probes a server's /healthz: the container image has
// no shell or curl, so compose's healthcheck runs the binary itself.
func newHealthcheckCommand() *cobra.Command {
	var timeout time.Duration
	var insecure bool
	cmd := &cobra.Command{
		Use:   "healthcheck [URL]",
		Short: "Exit 0 if a server's /healthz answers 200 (for container health checks)",
		Long: `healthcheck GETs URL (default http://127.0.0.1:8080/healthz) and exits 0 when
it answers 200, 1 otherwise with the status and the start of the body. For a
TLS listener probed over loopback, whose certificate names the public host,
pass --insecure-skip-verify.`,
		Example: `  signet-server healthcheck
  signet-server healthcheck --insecure-skip-verify https://127.0.0.1:8443/healthz`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			url := "http://127.0.0.1:8080/healthz"
			if len(args) == 1 {
				url = args[0]
			}
			transport := http.DefaultTransport.(*http.Transport).Clone()
			if insecure {
				transport.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for: a loopback liveness probe
			}
			client := &http.Client{Transport: transport, Timeout: timeout}
			resp, err := client.Get(url)
			if err != nil {
				return fmt.Errorf("unhealthy: %w", err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("unhealthy: %s answered %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "healthy: %s\n", strings.TrimSpace(string(body)))
			return err
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "give up after this long")
	cmd.Flags().BoolVar(&insecure, "insecure-skip-verify", false, "do not verify the server's TLS certificate")
	return cmd
}
