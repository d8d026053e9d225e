package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/spf13/cobra"

	"github.com/signet-dev/signet/client"
	"github.com/signet-dev/signet/internal/cligroup"
	"github.com/signet-dev/signet/internal/sigalg"
)

func newTimestampCommand() *cobra.Command {
	cmd := cligroup.Make(&cobra.Command{
		Use:   "timestamp",
		Short: "Get and check RFC 3161 timestamps",
		Example: `  signet timestamp request --artifact app.tar.gz --out app.tsr
  signet timestamp verify --artifact app.tar.gz --tsr app.tsr`,
	})
	cmd.AddCommand(newTimestampRequestCommand(), newTimestampVerifyCommand())
	return cmd
}

func digestFile(path string, h crypto.Hash) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var hw interface {
		io.Writer
		Sum([]byte) []byte
	}
	switch h {
	case crypto.SHA384:
		hw = sha512.New384()
	case crypto.SHA512:
		hw = sha512.New()
	default:
		hw = sha256.New()
	}
	if _, err := io.Copy(hw, f); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return hw.Sum(nil), nil
}

func newTimestampRequestCommand() *cobra.Command {
	var artifact, out, hashName, chainPath string
	var nonce, certReq bool
	cmd := &cobra.Command{
		Use:   "request --artifact FILE --out FILE.tsr",
		Short: "Ask the timestamp authority to timestamp a file",
		Example: `  signet timestamp request --artifact release.tar.gz --out release.tsr
  signet timestamp request --artifact release.tar.gz --out release.tsr --hash sha512 --chain tsa-chain.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, ok := sigalg.HashByName(hashName)
			if !ok {
				return fmt.Errorf("--hash %q: use %s", hashName, sigalg.HashNames)
			}
			digest, err := digestFile(artifact, h)
			if err != nil {
				return err
			}
			server, _ := cmd.Flags().GetString("server")
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			st, err := client.NewTSA(strings.TrimSuffix(server, "/")+"/api/v1/timestamp").Timestamp(ctx, client.TimestampRequest{Hash: h, Digest: digest, Nonce: nonce, CertReq: certReq})
			if err != nil {
				return err
			}
			// Check what came back before keeping it: with a chain fully,
			// otherwise at least the nonce and imprint via the served chain.
			chain, err := loadOrFetchChain(ctx, chainPath, server)
			if err != nil {
				return err
			}
			f, err := os.Open(artifact)
			if err != nil {
				return err
			}
			defer f.Close()
			when, err := client.VerifyTimestamp(st.Response, f, chain, st.Nonce)
			if err != nil {
				return &verifyError{err}
			}
			if err := os.WriteFile(out, st.Response, 0o644); err != nil {
				return err
			}
			return report(cmd, map[string]any{"file": out, "time": when.UTC().Format(time.RFC3339Nano), "hash": hashName}, fmt.Sprintf("wrote %s: %s timestamped at %s", out, artifact, when.UTC().Format(time.RFC3339Nano)))
		},
	}
	cmd.Flags().StringVar(&artifact, "artifact", "", "file to timestamp (required)")
	cmd.Flags().StringVar(&out, "out", "", "where to write the DER TimeStampResp (required)")
	cmd.Flags().StringVar(&hashName, "hash", "sha256", "message imprint hash: sha256, sha384 or sha512")
	cmd.Flags().StringVar(&chainPath, "chain", "", "TSA chain PEM to verify the answer against (default: fetched from the server)")
	cmd.Flags().BoolVar(&nonce, "nonce", true, "send a random nonce and check it is echoed")
	cmd.Flags().BoolVar(&certReq, "cert", true, "ask for the signing certificate in the token")
	cmd.MarkFlagRequired("artifact") //nolint:errcheck
	cmd.MarkFlagRequired("out")      //nolint:errcheck
	return cmd
}

func newTimestampVerifyCommand() *cobra.Command {
	var artifact, tsr, chainPath string
	cmd := &cobra.Command{
		Use:   "verify --artifact FILE --tsr FILE.tsr [--chain chain.pem]",
		Short: "Check a timestamp against a file and a pinned TSA chain",
		Long: `verify checks, offline, that the timestamp response covers the file and is
signed by the TSA whose chain (signing certificate first, root last) is given,
or, without --chain, by a TSA of the trusted root signet init pinned for the
server (within that TSA's validity window). Exit status 3 means it does not
verify.`,
		Example: `  signet timestamp verify --artifact release.tar.gz --tsr release.tsr --chain tsa-chain.pem
  signet timestamp verify --artifact release.tar.gz --tsr release.tsr   # after signet init`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			chains, err := tsaChains(cmd, chainPath)
			if err != nil {
				return err
			}
			resp, err := os.ReadFile(tsr)
			if err != nil {
				return err
			}
			f, err := os.Open(artifact)
			if err != nil {
				return err
			}
			defer f.Close()
			// A pinned trusted root may hold TSA chains rotated out: the one
			// that verifies must also have been valid at the stamped time.
			var when time.Time
			var chain []*x509.Certificate
			for _, c := range chains {
				if _, err = f.Seek(0, io.SeekStart); err != nil {
					return err
				}
				if when, err = client.VerifyTimestamp(resp, f, c.chain, nil); err == nil {
					if when.Before(c.start) || !c.end.IsZero() && when.After(c.end) {
						err = fmt.Errorf("the timestamp (%s) is outside the window the trusted root gives TSA %q", when.UTC().Format(time.RFC3339), c.chain[0].Subject)
						continue
					}
					chain = c.chain
					break
				}
			}
			if chain == nil {
				return &verifyError{err}
			}
			return report(cmd, map[string]any{"verified": true, "time": when.UTC().Format(time.RFC3339Nano)}, fmt.Sprintf("OK: %s existed at %s (TSA %s)", artifact, when.UTC().Format(time.RFC3339Nano), chain[0].Subject))
		},
	}
	cmd.Flags().StringVar(&artifact, "artifact", "", "the timestamped file (required)")
	cmd.Flags().StringVar(&tsr, "tsr", "", "the DER TimeStampResp (required)")
	cmd.Flags().StringVar(&chainPath, "chain", "", "TSA chain PEM, signing certificate first (default: the TSAs signet init pinned)")
	for _, f := range []string{"artifact", "tsr"} {
		cmd.MarkFlagRequired(f) //nolint:errcheck
	}
	return cmd
}

type tsaChain struct {
	chain      []*x509.Certificate
	start, end time.Time
}

// tsaChains is --chain, else every TSA of the pinned trusted root.
func tsaChains(cmd *cobra.Command, chainPath string) ([]tsaChain, error) {
	if chainPath != "" {
		c, err := loadChain(chainPath)
		return []tsaChain{{chain: c}}, err
	}
	tr, err := pinnedForCommand(cmd)
	if errors.Is(err, errNothingPinned) {
		return nil, errors.New("--chain is required (or pin the instance with signet init): offline verification needs a pinned TSA chain")
	}
	if err != nil {
		return nil, err
	}
	var out []tsaChain
	for _, ta := range tr.TimestampingAuthorities() {
		if a, ok := ta.(*root.SigstoreTimestampingAuthority); ok && a.Leaf != nil {
			out = append(out, tsaChain{chain: append(append([]*x509.Certificate{a.Leaf}, a.Intermediates...), a.Root), start: a.ValidityPeriodStart, end: a.ValidityPeriodEnd})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("the pinned trusted root lists no timestamp authority")
	}
	return out, nil
}

func report(cmd *cobra.Command, v map[string]any, text string) error {
	format, _ := cmd.Flags().GetString("output")
	switch format {
	case "json":
		enc := json.NewEncoder(cmd.OutOrStdout())
		return enc.Encode(v)
	case "text":
		_, err := fmt.Fprintln(cmd.OutOrStdout(), text)
		return err
	}
	return fmt.Errorf("--output %q: use text or json", format)
}

func parseChain(data []byte) ([]*x509.Certificate, error) {
	certs, err := cryptoutils.UnmarshalCertificatesFromPEM(data)
	if err == nil && len(certs) == 0 {
		err = fmt.Errorf("no PEM certificates")
	}
	return certs, err
}

func loadChain(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := parseChain(data)
	if err != nil {
		return nil, fmt.Errorf("chain %s: %w", path, err)
	}
	return c, nil
}

func loadOrFetchChain(ctx context.Context, path, server string) ([]*x509.Certificate, error) {
	if path != "" {
		return loadChain(path)
	}
	data, err := client.FetchTSAChain(ctx, strings.TrimSuffix(server, "/")+"/api/v1/timestamp/certchain")
	if err != nil {
		return nil, err
	}
	return parseChain(bytes.TrimSpace(data))
}
