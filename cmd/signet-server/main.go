// Command signet-server runs every Signet service on one listener.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/internal/server"
	"github.com/signet-dev/signet/internal/version"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "signet-server:", err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "signet-server",
		Short:         "A self-hostable private Sigstore: transparency log, CA, timestamp authority",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRunCommand(), newDevCommand(), newAdminCommand(), newHealthcheckCommand(), &cobra.Command{
		Use:     "version",
		Short:   "Print the version of signet-server",
		Example: "  signet-server version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), version.Get().String("signet-server"))
			return err
		},
	})
	return root
}

func newRunCommand() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "run --config signet.yaml",
		Short: "Run a production instance from a configuration file",
		Example: `  DATABASE_URL=postgres://signet@db/signet SIGNET_LOG_KEY_PASSWORD=... \
    signet-server run --config /etc/signet/signet.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(configPath, os.Getenv)
			if err != nil {
				return err
			}
			return serve(cmd.Context(), cfg, false)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "signet.yaml", "configuration file")
	return cmd
}

func newDevCommand() *cobra.Command {
	var configPath, listen, dataDir string
	var guard devGuard
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run everything locally with embedded defaults (managed PostgreSQL, generated keys)",
		Long: `dev starts a complete instance for development and tests: a private PostgreSQL
under the data directory (restarted if it dies), keys generated on first start
and kept there, every component on one listener.

Its OIDC issuer (/dev/oidc/token) hands out a token for any email and its CA
trusts it, so dev refuses to start where that could reach anything real:

  - a production configuration: database.url (DATABASE_URL,
    SIGNET_DATABASE_URL), log.signer, ca.signer, ca.chain, ca.issuers,
    timestamp.signer, timestamp.chain, ct.signer or tuf.*_signer set in the
    --config file or the environment (memory: signers excepted). Run those
    with "signet-server run"; --allow-production-config starts dev anyway.
  - a listen address or public_url that is not loopback (127.0.0.0/8, ::1,
    localhost; an empty host or 0.0.0.0 is every interface); --listen-anywhere
    allows it.

Either flag prints a warning in the banner and logs it at WARN.`,
		Example: `  signet-server dev
  signet-server dev --listen 127.0.0.1:9000 --data-dir /tmp/signet
  # reachable from other machines: anyone who can reach the port gets
  # certificates for any identity
  signet-server dev --listen 0.0.0.0:8080 --listen-anywhere
  # against a PostgreSQL of your own instead of the managed one
  DATABASE_URL=postgres://localhost/signet_dev signet-server dev --allow-production-config`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(configPath, os.Getenv)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("listen") || cfg.Listen == "" {
				cfg.Listen = listen
			}
			if cmd.Flags().Changed("data-dir") || cfg.DataDir == "" {
				cfg.DataDir = dataDir
			}
			if cfg.Hostname == "" {
				cfg.Hostname = "localhost"
			}
			warnings, err := guard.check(cfg, configPath)
			if err != nil {
				return err
			}
			return serve(cmd.Context(), cfg, true, warnings...)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "optional configuration file")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "address to listen on (loopback only, unless --listen-anywhere)")
	cmd.Flags().StringVar(&dataDir, "data-dir", "./.signet", "where dev state (database, keys) lives")
	cmd.Flags().BoolVar(&guard.allowProductionConfig, "allow-production-config", false,
		"start even though the configuration sets production keys, issuers or database (dev's OIDC issuer signs tokens for any email)")
	cmd.Flags().BoolVar(&guard.listenAnywhere, "listen-anywhere", false,
		"allow a listen address or public_url that is not loopback (anyone who can reach it can get certificates for any identity)")
	return cmd
}

// serve runs the server until a signal or parent ends. warnings (dev mode's
// overridden refusals) are logged at WARN and printed in the dev banner.
func serve(parent context.Context, cfg config.Config, dev bool, warnings ...string) error {
	if parent == nil {
		parent = context.Background()
	}
	// Signing and verifying allocate a lot of short-lived garbage; the
	// default GC target spends a fifth of the CPU collecting it. Trade some
	// memory for throughput unless the operator chose (GOGC/GOMEMLIMIT).
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(cfg.MemoryLimitBytes)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// Trillian logs every sequenced batch through klog; our own metrics and
	// logs cover that, so keep the terminal readable.
	klog.SetOutput(io.Discard)
	klog.LogToStderr(false)

	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()

	// The configuration first, so the first error is the real one; then
	// the port, so a taken one fails before the database starts.
	if err := cfg.Validate(dev); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	var metricsLn net.Listener
	if cfg.Metrics.Listen != "" {
		if metricsLn, err = net.Listen("tcp", cfg.Metrics.Listen); err != nil {
			ln.Close()
			return fmt.Errorf("listening on %s (metrics.listen): %w", cfg.Metrics.Listen, err)
		}
	}
	if cfg.PublicURL == "" {
		scheme := "http://"
		if cfg.TLS.Enabled() {
			scheme = "https://"
		}
		cfg.PublicURL = scheme + ln.Addr().String()
	}
	opts := server.Options{Dev: dev, Logger: logger, Getenv: os.Getenv}
	var srv running
	if cfg.Replicas.AdvertiseURL != "" {
		srv, err = server.NewReplica(ctx, cfg, opts)
	} else {
		srv, err = server.New(ctx, cfg, opts)
	}
	if err != nil {
		ln.Close()
		if metricsLn != nil {
			metricsLn.Close()
		}
		return err
	}
	httpServer := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      120 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		// net/http's own complaints (failed TLS handshakes, panics) in
		// the same structured log as everything else.
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 2)
	if httpServer.TLSConfig = srv.TLSConfig(); httpServer.TLSConfig != nil {
		// The certificate comes from TLSConfig (reloaded as its files
		// change); ServeTLS adds HTTP/2.
		go func() { errc <- httpServer.ServeTLS(ln, "", "") }()
	} else {
		go func() { errc <- httpServer.Serve(ln) }()
	}
	var metricsServer *http.Server
	if metricsLn != nil {
		metricsServer = newMetricsServer(srv.MetricsHandler(), cfg.Metrics.Pprof)
		go func() { errc <- metricsServer.Serve(metricsLn) }()
		logger.Info("metrics listening", "addr", metricsLn.Addr().String(), "pprof", cfg.Metrics.Pprof)
	}
	for _, w := range warnings {
		logger.Warn(w)
	}
	if s, ok := srv.(*server.Server); ok && dev {
		printBanner(os.Stdout, s.PublicURL(), s, warnings)
	}
	logger.Info("signet-server listening", "addr", ln.Addr().String(), "tls", cfg.TLS.Enabled(), "dev", dev)

	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			logger.Error("HTTP server failed", "err", err)
		}
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := httpServer.Shutdown(shutdownCtx); err != nil {
		logger.Warn("HTTP shutdown", "err", err)
	}
	if metricsServer != nil {
		metricsServer.Close()
	}
	srv.Close(shutdownCtx)
	logger.Info("stopped")
	return nil
}

// running is what serve needs of a Server or a Replica.
type running interface {
	Handler() http.Handler
	TLSConfig() *tls.Config
	MetricsHandler() http.Handler
	Close(context.Context)
}

// newMetricsServer serves GET /metrics, for metrics.listen, and with
// withPprof (metrics.pprof) Go's profiles under /debug/pprof/.
func newMetricsServer(metrics http.Handler, withPprof bool) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	if withPprof {
		// Profiles up to the write timeout below (a CPU profile of 50 s).
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
}

func printBanner(w io.Writer, base string, srv *server.Server, warnings []string) {
	dd, _ := filepath.Abs(srv.DataDir())
	fmt.Fprintf(w, "\nSignet is running (dev mode) at %s\n", base)
	// First, so no scrolling hides them.
	for _, warning := range warnings {
		fmt.Fprintf(w, "\n  !!! WARNING: %s\n", warning)
	}
	fmt.Fprintf(w, `

  Health:            curl %[1]s/healthz
  Log info:          curl %[1]s/api/v1/log
  Trust material:    %[1]s/api/v1/trust/trusted_root.json
                     %[1]s/api/v1/trust/signing_config.json
                     (copies in %[2]s)
  TUF repository:    %[1]s/tuf/ (root of trust: %[2]s/tuf-root.json)
  rekor-cli:         rekor-cli --rekor_server %[1]s loginfo
  signet CLI:        signet init --server %[1]s --root %[2]s/tuf-root.json
                     then signet sign-blob FILE --bundle FILE.sigstore.json (see signet --help)
`, base, dd)
	if l := srv.Log(); l != nil {
		fmt.Fprintf(w, "  Log tree %d, log ID %s\n", l.TreeID(), srv.Rekor().LogID())
	}
	if d := srv.DevIssuer(); d != nil {
		fmt.Fprintf(w, `
Keyless signing with cosign v3 against this instance only. Without a token,
cosign (like signet) signs you in with this instance's dev issuer in your
browser; where it cannot open one (over SSH), cosign prints the link and asks
for the code the page then shows (or pass --fulcio-auth-flow device and
confirm a code at %[1]s/device). Type any email: it becomes the
certificate's identity.
  cosign sign-blob --signing-config %[2]s/signing_config.json --trusted-root %[2]s/trusted_root.json \
    --bundle blob.sigstore.json blob
  cosign verify-blob --trusted-root %[2]s/trusted_root.json --bundle blob.sigstore.json \
    --certificate-identity alice@example.com --certificate-oidc-issuer %[1]s blob
  cosign attest-blob / verify-blob-attestation, sign / verify, attest / verify-attestation
    take the same --signing-config and --trusted-root flags.
In scripts, take a token without the login and pass --identity-token "$TOKEN":
  TOKEN=$(curl -s '%[1]s/token?email=alice@example.com' | sed 's/.*"id_token":"\([^"]*\)".*/\1/')
Or let cosign find both files through TUF, as it does for the public instance.
This repoints your cosign (~/.sigstore) at this instance, away from the public
Sigstore, until you run plain "cosign initialize" again:
  cosign initialize --mirror %[3]s/tuf --root %[2]s/tuf-root.json
  cosign sign-blob --bundle blob.sigstore.json blob
`, d.URL(), dd, base)
	}
	fmt.Fprintf(w, "\nPress Ctrl-C to stop (PostgreSQL stops with it).\n\n")
}
