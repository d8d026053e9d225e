package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/term"
)

// clientOptions configure the client benchmark: signet's CLI against
// unmodified cosign doing the same work against the same dev instance.
type clientOptions struct {
	target, dataDir, signet, cosign string
	runs                            int
}

// clientResult is one client scenario: the median wall time of each tool
// over the runs, and signet's over cosign's.
type clientResult struct {
	Scenario      string  `json:"scenario"`
	Runs          int     `json:"runs"`
	SignetMedianS float64 `json:"signet_median_s"`
	CosignMedianS float64 `json:"cosign_median_s"`
	Ratio         float64 `json:"signet_over_cosign"`
}

// clientScenarios times keyless image sign+verify and blob sign+verify with
// both tools, interleaved run by run (the machine is shared and noisy: both
// see the same moments), each command a fresh process as a user runs it.
// Each image run signs a fresh image, so verify always reads one bundle.
func clientScenarios(ctx context.Context, o clientOptions, stdout, stderr io.Writer) error {
	// The commands run in a scratch directory: find the binaries first.
	for _, bin := range []*string{&o.signet, &o.cosign} {
		p, err := exec.LookPath(*bin)
		if err != nil {
			return fmt.Errorf("--client: %w", err)
		}
		if *bin, err = filepath.Abs(p); err != nil {
			return err
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithReferrersSupport(true)), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l) //nolint:errcheck // closed below
	defer srv.Close()
	regHost := l.Addr().String()
	home, err := os.MkdirTemp("", "signet-bench-client")
	if err != nil {
		return err
	}
	defer os.RemoveAll(home)
	trustedRoot, signingConfig := filepath.Join(o.dataDir, "trusted_root.json"), filepath.Join(o.dataDir, "signing_config.json")
	issuer := strings.TrimSuffix(o.target, "/") + "/dev/oidc"
	blob := filepath.Join(home, "blob")
	if err := os.WriteFile(blob, []byte("benchmarked bits"), 0o644); err != nil {
		return err
	}
	token := func() (string, error) {
		return devToken(ctx, http.DefaultClient, strings.TrimSuffix(o.target, "/"), "bench@example.com")
	}
	pushImage := func(n int) (string, error) {
		img, err := random.Image(1024, 1)
		if err != nil {
			return "", err
		}
		ref, err := name.ParseReference(fmt.Sprintf("%s/bench/app%d:v1", regHost, n), name.Insecure)
		if err != nil {
			return "", err
		}
		if err := remote.Write(ref, img); err != nil {
			return "", err
		}
		d, _ := img.Digest()
		return ref.Context().Digest(d.String()).String(), nil
	}
	// timed runs one command line and returns its wall time.
	timed := func(bin string, args ...string) (time.Duration, error) {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(os.Environ(), "HOME="+home, "TUF_ROOT="+filepath.Join(home, "tuf"), "SIGNET_CONFIG_DIR="+filepath.Join(home, "signet"))
		cmd.Dir = home
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("%s %s: %w\n%s", filepath.Base(bin), strings.Join(args[:1], " "), err, out)
		}
		return time.Since(start), nil
	}
	identity := []string{"--certificate-identity", "bench@example.com", "--certificate-oidc-issuer", issuer}
	f, isFile := stderr.(*os.File)
	progress := isFile && term.IsTerminal(int(f.Fd()))
	trust := []string{"--trusted-root", trustedRoot}
	type work func(tool string, run int) (time.Duration, error)
	scenarios := []struct {
		name string
		do   work
	}{
		{"client-image-sign-verify", func(tool string, run int) (time.Duration, error) {
			img, err := pushImage(run*2 + map[string]int{"signet": 0, "cosign": 1}[tool])
			if err != nil {
				return 0, err
			}
			tok, err := token()
			if err != nil {
				return 0, err
			}
			var sign, verify time.Duration
			if tool == "signet" {
				sign, err = timed(o.signet, append([]string{"sign", img, "--yes", "--allow-http-registry", "--identity-token", tok, "--signing-config", signingConfig}, trust...)...)
				if err == nil {
					verify, err = timed(o.signet, append(append([]string{"verify", img, "--allow-http-registry"}, trust...), identity...)...)
				}
			} else {
				sign, err = timed(o.cosign, append([]string{"sign", "--yes", "--allow-http-registry", "--identity-token", tok, "--signing-config", signingConfig}, append(trust, img)...)...)
				if err == nil {
					verify, err = timed(o.cosign, append(append(append([]string{"verify", "--allow-http-registry"}, trust...), identity...), img)...)
				}
			}
			return sign + verify, err
		}},
		{"client-blob-sign-verify", func(tool string, run int) (time.Duration, error) {
			tok, err := token()
			if err != nil {
				return 0, err
			}
			bundle := filepath.Join(home, fmt.Sprintf("%s-%d.sigstore.json", tool, run))
			var sign, verify time.Duration
			if tool == "signet" {
				sign, err = timed(o.signet, append([]string{"sign-blob", blob, "--bundle", bundle, "--yes", "--identity-token", tok, "--signing-config", signingConfig}, trust...)...)
				if err == nil {
					verify, err = timed(o.signet, append(append([]string{"verify-blob", blob, "--bundle", bundle}, trust...), identity...)...)
				}
			} else {
				sign, err = timed(o.cosign, append([]string{"sign-blob", "--yes", "--bundle", bundle, "--identity-token", tok, "--signing-config", signingConfig}, append(trust, blob)...)...)
				if err == nil {
					verify, err = timed(o.cosign, append(append(append([]string{"verify-blob", "--bundle", bundle}, trust...), identity...), blob)...)
				}
			}
			return sign + verify, err
		}},
	}
	for _, sc := range scenarios {
		times := map[string][]time.Duration{}
		for run := 0; run < o.runs; run++ {
			order := []string{"signet", "cosign"}
			if run%2 == 1 {
				order[0], order[1] = order[1], order[0]
			}
			for _, tool := range order {
				d, err := sc.do(tool, run)
				if err != nil {
					return fmt.Errorf("%s, %s run %d: %w", sc.name, tool, run+1, err)
				}
				times[tool] = append(times[tool], d)
			}
			if progress {
				fmt.Fprintf(stderr, "\r%s: %d/%d", sc.name, run+1, o.runs)
			}
		}
		if progress {
			fmt.Fprintln(stderr)
		}
		s, c := median(times["signet"]), median(times["cosign"])
		line, _ := json.Marshal(clientResult{Scenario: sc.name, Runs: o.runs, SignetMedianS: s.Seconds(), CosignMedianS: c.Seconds(), Ratio: s.Seconds() / c.Seconds()})
		fmt.Fprintln(stdout, string(line))
	}
	return nil
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}
