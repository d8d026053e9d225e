// Package loopback says whether a URL stays on this machine, for the rule
// that credentials (CI tokens, login codes, ID tokens) travel over https
// only, or over plain http to this machine (a local agent, a dev issuer,
// a test's server).
package loopback

import (
	"fmt"
	"net"
	"net/url"
)

// IsHost reports whether host, a URL's Hostname(), names this machine:
// localhost or a loopback address (127.0.0.0/8, ::1, and IPv4-mapped ones).
func IsHost(host string) bool {
	return host == "localhost" || net.ParseIP(host).IsLoopback()
}

// RequireTLS returns an error unless rawURL is https, or http to this
// machine. what names the URL in the error.
func RequireTLS(what, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if u.Scheme == "https" || u.Scheme == "http" && IsHost(u.Hostname()) {
		return nil
	}
	return fmt.Errorf("%s %s://%s is not https: a credential would travel in clear", what, u.Scheme, u.Host)
}
