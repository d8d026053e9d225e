package loopback

import (
	"strings"
	"testing"
)

func TestRequireTLS(t *testing.T) {
	for raw, ok := range map[string]bool{
		"https://issuer.example.com/x":   true,
		"http://127.0.0.1:8080/dev/oidc": true,
		"http://127.9.9.9/":              true,
		"http://localhost:9/":            true,
		"http://[::1]:9/":                true,
		"http://[::ffff:127.0.0.1]:9/":   true,
		"http://issuer.example.com/":     false,
		"http://localhost.example.com/":  false,
		"http://10.0.0.1/":               false,
		"ftp://localhost/":               false,
		"localhost:8080":                 false,
	} {
		err := RequireTLS("issuer", raw)
		if (err == nil) != ok {
			t.Errorf("%s: %v, want ok=%v", raw, err, ok)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "issuer ") {
			t.Errorf("%s: the error does not name the URL: %v", raw, err)
		}
	}
}
