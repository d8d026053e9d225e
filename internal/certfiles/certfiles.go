// Package certfiles serves a TLS certificate from a PEM certificate file and
// a PEM key file, and picks up new files when they change: a renewed
// certificate (certbot, cert-manager) or a Kubernetes Secret updated in place
// takes effect without a restart.
//
// Files are checked on TLS handshakes, at most once per CheckInterval, by
// their size and modification time (stat follows symlinks, so a Secret's
// atomic "..data" swap is seen). A pair that fails to load (a certificate
// written before its key, a key that does not match) is logged and the
// previous certificate kept; it is tried again at the next check.
package certfiles

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// CheckInterval is the longest a changed pair goes unnoticed while clients
// keep connecting.
const CheckInterval = time.Second

// stamp identifies one version of a file without reading it.
type stamp struct {
	size    int64
	modTime time.Time
}

// Pair is a certificate and its key, loaded from files.
type Pair struct {
	certFile, keyFile string
	logger            *slog.Logger
	// now is the clock checks are spaced by (tests move it).
	now func() time.Time

	current atomic.Pointer[tls.Certificate]

	mu      sync.Mutex // guards the fields below; held while checking
	stamps  [2]stamp   // of the files current was loaded from
	failed  [2]stamp   // of the last files that did not load: not retried, not logged again
	checked time.Time
}

// Load reads the pair; a missing, unreadable or mismatched pair is an error
// naming the file.
func Load(certFile, keyFile string, logger *slog.Logger) (*Pair, error) {
	if logger == nil {
		logger = slog.Default()
	}
	p := &Pair{certFile: certFile, keyFile: keyFile, logger: logger, now: time.Now}
	stamps, err := p.stat()
	if err != nil {
		return nil, err
	}
	cert, err := p.load()
	if err != nil {
		return nil, err
	}
	p.current.Store(cert)
	p.stamps, p.checked = stamps, p.now()
	return p, nil
}

// GetCertificate is tls.Config.GetCertificate.
func (p *Pair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	p.refresh()
	return p.current.Load(), nil
}

// Leaf is the certificate being served now, the files checked first (as a
// handshake would) so the expiry metric follows a renewal even while no
// client connects.
func (p *Pair) Leaf() *x509.Certificate {
	p.refresh()
	return p.current.Load().Leaf
}

// refresh reloads the pair if CheckInterval has passed since the last check
// and either file changed since the served pair was loaded.
func (p *Pair) refresh() {
	if !p.mu.TryLock() {
		return // another handshake is checking; serve what is loaded
	}
	defer p.mu.Unlock()
	now := p.now()
	if now.Sub(p.checked) < CheckInterval {
		return
	}
	p.checked = now
	stamps, err := p.stat()
	if err != nil {
		if gone := [2]stamp{{size: -1}}; p.failed != gone { // reported once until they are back
			p.failed = gone
			p.logger.Warn("TLS certificate files unreadable; still serving the loaded certificate", "err", err)
		}
		return
	}
	if stamps == p.stamps || stamps == p.failed {
		return
	}
	cert, err := p.load()
	if err != nil {
		// Often a renewal caught between its two writes: the next change
		// is the finished pair. Until the files change, neither retried
		// nor logged again.
		p.failed = stamps
		p.logger.Warn("TLS certificate files changed but do not load; still serving the loaded certificate", "err", err)
		return
	}
	p.current.Store(cert)
	p.stamps = stamps
	p.logger.Info("TLS certificate reloaded", "file", p.certFile, "subject", cert.Leaf.Subject.String(), "not_after", cert.Leaf.NotAfter)
}

func (p *Pair) stat() ([2]stamp, error) {
	var out [2]stamp
	for i, name := range []string{p.certFile, p.keyFile} {
		fi, err := os.Stat(name)
		if err != nil {
			return out, fmt.Errorf("TLS certificate files: %w", err)
		}
		out[i] = stamp{fi.Size(), fi.ModTime()}
	}
	return out, nil
}

func (p *Pair) load() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(p.certFile, p.keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading TLS certificate %s with key %s: %w", p.certFile, p.keyFile, err)
	}
	// LoadX509KeyPair fills Leaf since Go 1.23; the checks below rely on it.
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("parsing TLS certificate %s: %w", p.certFile, err)
		}
	}
	// Go, and most clients now, ignore the common name: a certificate
	// without subjectAltName fails every handshake, so refuse it here.
	if len(cert.Leaf.DNSNames)+len(cert.Leaf.IPAddresses) == 0 {
		return nil, fmt.Errorf("TLS certificate %s (%s) names no host in subjectAltName; clients would refuse it (is the server's certificate first in the file?)", p.certFile, cert.Leaf.Subject)
	}
	return &cert, nil
}
