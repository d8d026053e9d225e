package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/signet-dev/signet/client/ambient"
	"github.com/signet-dev/signet/client/oidclogin"
)

// loginTimeout bounds an interactive login: the user has this long to
// finish it in the browser or to type the device code.
const loginTimeout = 5 * time.Minute

// identityFlags say where a keyless signature's identity comes from.
type identityFlags struct {
	token, flow, issuer, clientID string
}

func (f *identityFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.token, "identity-token", "", "OIDC identity token for keyless signing, or a file holding one (default: $SIGSTORE_ID_TOKEN, GitHub Actions', Buildkite's, or a token file mounted at "+ambient.DefaultTokenFile+"; else an interactive login)")
	cmd.Flags().StringVar(&f.flow, "oidc-flow", "auto", "interactive login when no token is found: browser (authorization code + PKCE), device (a code typed on any device), or auto (browser on a desktop terminal, device over SSH; none off a terminal)")
	cmd.Flags().StringVar(&f.issuer, "oidc-issuer", "", "OIDC provider to log in with (default: the signing config's)")
	cmd.Flags().StringVar(&f.clientID, "oidc-client-id", oidclogin.DefaultClientID, "OAuth client ID of the interactive login")
}

// get is --identity-token (a JWT, or a file holding one), else the
// ambient token of the CI job or workload (client/ambient), else an
// interactive login with the provider the signing config names. stderr
// says where the token came from.
func (f *identityFlags) get(cmd *cobra.Command, sc *root.SigningConfig) (string, error) {
	if f.token != "" {
		tok := f.token
		if strings.Count(tok, ".") != 2 {
			data, err := os.ReadFile(tok)
			if err != nil {
				return "", fmt.Errorf("--identity-token is neither a JWT nor a readable file: %w", err)
			}
			tok = strings.TrimSpace(string(data))
		}
		return tok, nil
	}
	ctx, cancel := timeout(cmd)
	tok, err := ambient.Find(ctx, ambient.Env{HTTP: &http.Client{Timeout: 30 * time.Second}}, "sigstore")
	cancel()
	if err == nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "Using the identity token from %s.\n", tok.Source)
		return tok.Value, nil
	}
	if !errors.Is(err, ambient.ErrNone) {
		return "", err
	}
	flow, err := f.chooseFlow(cmd)
	if err != nil {
		return "", err
	}
	issuer := f.issuer
	if issuer == "" {
		svc, err := root.SelectService(sc.OIDCProviderURLs(), []uint32{1}, time.Now())
		if err != nil {
			return "", errors.New("keyless signing needs an identity token, and the signing config names no OIDC provider to log in with: pass --oidc-issuer or --identity-token, or sign with --key")
		}
		issuer = svc.URL
	}
	c := oidclogin.Config{Issuer: issuer, ClientID: f.clientID, HTTP: &http.Client{Timeout: 30 * time.Second}, Out: cmd.ErrOrStderr(), OpenBrowser: openBrowser}
	ctx, cancel = context.WithTimeout(cmd.Context(), loginTimeout)
	defer cancel()
	var raw string
	if flow == "browser" {
		raw, err = oidclogin.Browser(ctx, c)
	} else {
		raw, err = oidclogin.Device(ctx, c)
	}
	if err != nil {
		return "", err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "Signed in with %s.\n", issuer)
	return raw, nil
}

// chooseFlow resolves --oidc-flow auto: the browser where one can be
// opened, the device flow on a terminal without one (an SSH session: a
// browser opened there would be on the remote machine), and neither off a
// terminal, where nobody may be there to log in and a job would wait for
// minutes before failing.
func (f *identityFlags) chooseFlow(cmd *cobra.Command) (string, error) {
	switch f.flow {
	case "browser", "device":
		return f.flow, nil
	case "auto":
	default:
		return "", fmt.Errorf("--oidc-flow %q: use auto, browser or device", f.flow)
	}
	if in, ok := cmd.InOrStdin().(*os.File); !ok || !term.IsTerminal(int(in.Fd())) {
		return "", errors.New("keyless signing needs an identity token: pass --identity-token (a JWT or a file holding one) or set SIGSTORE_ID_TOKEN; " +
			"in GitHub Actions (permissions: id-token: write) and Buildkite it is found by itself, as is a token mounted at " + ambient.DefaultTokenFile +
			"; off a terminal no login is started unless asked for with --oidc-flow browser|device; or sign with --key")
	}
	if canOpenBrowser() {
		return "browser", nil
	}
	return "device", nil
}

// canOpenBrowser guesses whether openBrowser reaches a browser the user
// sees: $BROWSER says so; an SSH session says not (whatever the remote
// machine could open, the user is not in front of it); else a graphical
// session or a desktop OS.
func canOpenBrowser() bool {
	switch {
	case os.Getenv("BROWSER") != "":
		return true
	case os.Getenv("SSH_CONNECTION") != "" || os.Getenv("SSH_TTY") != "":
		return false
	case runtime.GOOS == "darwin" || runtime.GOOS == "windows":
		return true
	}
	return os.Getenv("DISPLAY") != "" || os.Getenv("WAYLAND_DISPLAY") != ""
}

// openBrowser starts the user's browser on url: $BROWSER as xdg-open and
// Python's webbrowser read it (commands separated by ':', the first that
// starts wins, %s standing for the URL or else the URL appended), else the
// desktop's opener. Only http(s) URLs are opened.
func openBrowser(url string) error {
	if !strings.HasPrefix(url, "https://") && !strings.HasPrefix(url, "http://") {
		return fmt.Errorf("not opening %q: not an http(s) URL", url)
	}
	var commands [][]string
	for _, entry := range strings.Split(os.Getenv("BROWSER"), ":") {
		fields := strings.Fields(entry)
		if len(fields) == 0 {
			continue
		}
		substituted := false
		for i, f := range fields {
			if strings.Contains(f, "%s") {
				fields[i], substituted = strings.ReplaceAll(f, "%s", url), true
			}
		}
		if !substituted {
			fields = append(fields, url)
		}
		commands = append(commands, fields)
	}
	switch {
	case len(commands) > 0:
	case runtime.GOOS == "darwin":
		commands = [][]string{{"open", url}}
	case runtime.GOOS == "windows":
		commands = [][]string{{"rundll32", "url.dll,FileProtocolHandler", url}}
	default:
		commands = [][]string{{"xdg-open", url}}
	}
	var err error
	for _, c := range commands {
		cmd := exec.Command(c[0], c[1:]...)
		if err = cmd.Start(); err == nil {
			go cmd.Wait() //nolint:errcheck // reaped; its outcome does not matter, the URL is printed
			return nil
		}
	}
	return err
}
