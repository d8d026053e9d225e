package main

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/signet-dev/signet/internal/config"
)

// devGuard keeps `signet-server dev` from reaching anything real: its OIDC
// issuer hands out a token for any email and its CA trusts it, so a dev
// instance with production keys or database, or one reachable from other
// machines, issues certificates for any identity to whoever asks.
type devGuard struct {
	// allowProductionConfig starts dev with production settings anyway.
	allowProductionConfig bool
	// listenAnywhere allows a listen address or public_url that is not
	// loopback.
	listenAnywhere bool
}

// check refuses cfg (as dev mode would run it, flags applied) when it has
// production settings or is reachable from elsewhere, unless the matching
// override is set; then it returns the warnings to print and log instead.
// configPath is the --config file, to say where a setting came from.
func (g devGuard) check(cfg config.Config, configPath string) (warnings []string, err error) {
	if prod := cfg.ProductionSettings(); len(prod) > 0 {
		where, err := settingSources(prod, configPath)
		if err != nil {
			return nil, err
		}
		if !g.allowProductionConfig {
			return nil, fmt.Errorf("dev refuses a production configuration: %s; "+
				"dev mode's OIDC issuer hands out tokens for any email and its CA trusts them. "+
				"Run a production instance with `signet-server run --config FILE`, or pass --allow-production-config to start dev with these settings anyway",
				where)
		}
		warnings = append(warnings, fmt.Sprintf("production settings in dev mode (--allow-production-config): %s; "+
			"the dev OIDC issuer hands out tokens for any email and the CA trusts them", where))
	}
	if err := loopbackListen(cfg.Listen); err != nil {
		if !g.listenAnywhere {
			return nil, fmt.Errorf("dev refuses to listen on %s: %w; "+
				"anyone who can reach the port could get certificates for any identity. "+
				"Listen on 127.0.0.1 (the default), or pass --listen-anywhere to allow it", cfg.Listen, err)
		}
		warnings = append(warnings, fmt.Sprintf("listening on %s (--listen-anywhere): "+
			"anyone who can reach this port can get certificates for any identity", cfg.Listen))
	}
	if cfg.PublicURL != "" {
		if err := loopbackURL(cfg.PublicURL); err != nil {
			if !g.listenAnywhere {
				return nil, fmt.Errorf("dev refuses public_url %s: %w; "+
					"a dev instance reached through it would give certificates for any identity to anyone who can reach it. "+
					"Leave public_url unset, or pass --listen-anywhere to allow it", cfg.PublicURL, err)
			}
			warnings = append(warnings, fmt.Sprintf("public_url %s (--listen-anywhere): "+
				"anyone who can reach it can get certificates for any identity", cfg.PublicURL))
		}
	}
	return warnings, nil
}

// settingSources names each setting with where it came from: the --config
// file, or the environment (config.Load applies DATABASE_URL and SIGNET_*
// over the file).
func settingSources(keys []string, configPath string) (string, error) {
	var inFile []string
	if configPath != "" {
		fileOnly, err := config.Load(configPath, func(string) string { return "" })
		if err != nil {
			return "", err
		}
		inFile = fileOnly.ProductionSettings()
	}
	named := make([]string, len(keys))
	for i, k := range keys {
		if slices.Contains(inFile, k) {
			named[i] = fmt.Sprintf("%s is set in %s", k, configPath)
		} else {
			named[i] = fmt.Sprintf("%s is set by the environment (DATABASE_URL or SIGNET_*)", k)
		}
	}
	return strings.Join(named, ", "), nil
}

// loopbackListen says why a listen address (host:port) is not loopback-only,
// or returns nil when it is: 127.0.0.0/8, ::1 or localhost. An empty host and
// 0.0.0.0 or :: are every interface; other names could resolve to anything.
func loopbackListen(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("it is not host:port: %w", err)
	}
	return loopbackHost(host)
}

// loopbackURL is loopbackListen for an http(s) URL's host.
func loopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("it does not parse: %w", err)
	}
	return loopbackHost(u.Hostname())
}

func loopbackHost(host string) error {
	if host == "" {
		return fmt.Errorf("an empty host means every interface")
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	ip := net.ParseIP(host)
	switch {
	case ip == nil:
		return fmt.Errorf("host %q is a name other than localhost, which may resolve to any address", host)
	case ip.IsUnspecified():
		return fmt.Errorf("%s means every interface", host)
	case !ip.IsLoopback():
		return fmt.Errorf("%s is not a loopback address (127.0.0.0/8, ::1)", host)
	}
	return nil
}
