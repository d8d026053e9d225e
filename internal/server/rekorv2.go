package server

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/internal/keys"
	tlog "github.com/signet-dev/signet/log"
	"github.com/signet-dev/signet/log/note"
	"github.com/signet-dev/signet/log/pgstore"
	"github.com/signet-dev/signet/log/rekorv2"
	"github.com/signet-dev/signet/log/tilesapi"
	"github.com/signet-dev/signet/trust"
)

// startLogV2 runs the Rekor v2 log (log.v2.enabled): a tree of its own on
// the engine, named rekor-v2, signed by its own Ed25519 or ECDSA P-256 key
// (C2SP key hints, as witnesses and sigstore-go compute them), its
// checkpoint origin and signer name the public URL's hostname (what
// sigstore-go checks against the trusted root's baseUrl). That name is
// the tree's for good: a start under another hostname is refused, since
// every entry already handed out would stop verifying. Its tiles are
// served under /tiles/rekor-v2/<treeID> (each tree's baseUrl in the
// trusted root) and, for the active tree, at the instance root where
// rekor-tiles serves them.
func (s *Server) startLogV2(ctx context.Context, router chi.Router, reg prometheus.Registerer, opts Options) error {
	uri := s.cfg.Log.V2.Signer
	if uri == "" && s.dev {
		path := filepath.Join(s.cfg.DataDir, "keys", "log-v2.pem")
		if err := devECKey(path, s.logger); err != nil {
			return fmt.Errorf("the dev Rekor v2 log key: %w", err)
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return err
		}
		uri = keys.FileURI(abs, keys.PasswordSource{})
	}
	signer, err := keys.Open(uri, keys.Options{Dev: s.dev, Getenv: opts.Getenv})
	if err != nil {
		return fmt.Errorf("log.v2 signer: %w", err)
	}
	// Clients find a log in the trusted root by its key's hash: the v1
	// log's keys, current or retired, cannot be this log's.
	v1Keys := []crypto.PublicKey{}
	if s.rekorSigner != nil {
		v1Keys = append(v1Keys, s.rekorSigner.Public())
	}
	retiredV1, err := tlog.RetiredKeys(ctx, s.trees, "rekor")
	if err != nil {
		return err
	}
	for _, k := range retiredV1 {
		v1Keys = append(v1Keys, k.PublicKey)
	}
	for _, k := range v1Keys {
		if e, ok := k.(interface{ Equal(crypto.PublicKey) bool }); ok && e.Equal(signer.Public()) {
			return errors.New("log.v2 signer is a key of the v1 log: the v2 log needs a key of its own (clients tell the logs apart by their key's hash)")
		}
	}
	host, err := rekorV2Host(s.cfg)
	if err != nil {
		return err
	}
	if _, err := rekorv2.KeyID(host, signer.Public()); err != nil {
		return fmt.Errorf("log.v2 signer: %w", err)
	}
	rotate, err := s.mayRotate(ctx, "rekor-v2", signer)
	if err != nil {
		return err
	}
	lcfg := rekorV2LogConfig(s.cfg, signer, host, s.logger)
	lcfg.Metrics, lcfg.Tiles, lcfg.RotateOnKeyChange = s.logMetrics(reg), s.logTiles(reg), rotate
	l, err := tlog.Open(ctx, s.trees, lcfg)
	if err != nil {
		return keyChangeHint(err, "log-v2")
	}
	s.logV2 = l // before anything can fail: Close stops it
	if cp, err := l.StoredCheckpoint(ctx); err != nil {
		return err
	} else if cp != "" {
		if c, err := note.ParseSigned(cp); err != nil {
			return fmt.Errorf("the Rekor v2 log's stored checkpoint: %w", err)
		} else if c.Origin != host {
			return fmt.Errorf("the Rekor v2 log's tree %d is signed as %q, and public_url now names %q: every entry handed out would stop verifying. Set public_url back to a URL on %s",
				l.TreeID(), c.Origin, host, c.Origin)
		}
	}
	if err := s.rotated(ctx, "rekor-v2", signer); err != nil {
		return err
	}
	s.rekorV2Signer = signer
	s.rekorV2, err = rekorv2.New(rekorv2.Config{Log: l, MaxBodyBytes: min(s.cfg.Log.MaxRequestBytes, rekorv2.DefaultMaxBodyBytes), Logger: s.logger})
	if err != nil {
		return err
	}
	s.rekorV2.Routes(router)
	published, err := s.startWitnessing(ctx, reg, "rekor-v2", "log.v2.witness", l, s.cfg.Log.V2.Witness)
	if err != nil {
		return err
	}
	mountV2Tiles(router, l, published, s.logger)
	s.logger.Info("Rekor v2 log ready", "tree_id", l.TreeID(), "origin", host, "first_index", l.Offset(), "verifier_key", verifierKey(l))
	return nil
}

// rekorV2Host is the Rekor v2 log's name: public_url's hostname.
func rekorV2Host(cfg config.Config) (string, error) {
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || u.Hostname() == "" {
		return "", fmt.Errorf("public_url %q has no hostname for the Rekor v2 checkpoints", cfg.PublicURL)
	}
	return u.Hostname(), nil
}

// rekorV2LogConfig is the Rekor v2 log's engine configuration, the same
// on every replica.
func rekorV2LogConfig(cfg config.Config, signer crypto.Signer, host string, logger *slog.Logger) tlog.Config {
	return tlog.Config{
		Name: "rekor-v2", SignerName: host, Signer: signer, C2SPKeyHint: true,
		MaxBatch: cfg.Log.MaxBatch, QueueSize: cfg.Log.QueueSize,
		Hook:      rekorv2.Hook{}, // stores each batch's checkpoint, for rotations
		Logger:    logger,
		OriginFor: func(int64) string { return host },
	}
}

// mountV2Tiles serves the Rekor v2 log's trees as tlog-tiles under
// /tiles/rekor-v2/<treeID>, and the active one at the instance root, as
// rekor-tiles serves its log. The root's URLs name whichever tree is
// active, so nothing there is immutable: a key rotation makes them
// another tree's.
func mountV2Tiles(router chi.Router, l *tlog.Log, published tilesapi.Published, logger *slog.Logger) {
	mountTiles(router, "rekor-v2", l, published, logger)
	root := tilesapi.WitnessedHandler(l.Tree, published, logger)
	shortLived := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		root.ServeHTTP(cacheCap{ResponseWriter: w}, r)
	})
	router.Handle("/checkpoint", shortLived)
	router.Handle("/tile/*", shortLived)
}

// cacheCap caps a response's Cache-Control at a minute.
type cacheCap struct{ http.ResponseWriter }

func (c cacheCap) WriteHeader(status int) {
	if strings.Contains(c.Header().Get("Cache-Control"), "immutable") {
		c.Header().Set("Cache-Control", "public, max-age=60")
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c cacheCap) Write(b []byte) (int, error) {
	if strings.Contains(c.Header().Get("Cache-Control"), "immutable") {
		c.Header().Set("Cache-Control", "public, max-age=60")
	}
	return c.ResponseWriter.Write(b)
}

// logV2Keys are the Rekor v2 log's keys for the trusted root: every tree
// it ever had, each with its own baseUrl (its tiles), whether or not the
// log runs now. Turning log.v2.enabled off must not make the entries it
// logged unverifiable.
func (s *Server) logV2Keys(ctx context.Context) (*trust.Key, []*trust.Key, error) {
	base := strings.TrimSuffix(s.cfg.PublicURL, "/") + "/tiles/rekor-v2/"
	past, err := pastKeys(ctx, s.trees, "rekor-v2")
	if err != nil {
		return nil, nil, err
	}
	retired, err := tlog.RetiredKeys(ctx, s.trees, "rekor-v2")
	if err != nil {
		return nil, nil, err
	}
	for i, k := range past {
		k.BaseURL = base + strconv.FormatInt(retired[i].TreeID, 10)
	}
	if s.logV2 != nil {
		return &trust.Key{PublicKey: s.rekorV2Signer.Public(), Start: s.logV2.CreatedAt().Truncate(time.Second),
			BaseURL: base + strconv.FormatInt(s.logV2.TreeID(), 10)}, past, nil
	}
	t, der, err := s.trees.CurrentTree(ctx, "rekor-v2")
	if errors.Is(err, pgstore.ErrNoTree) {
		return nil, past, nil
	}
	if err != nil {
		return nil, nil, err
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, nil, fmt.Errorf("the Rekor v2 log's key: %w", err)
	}
	return &trust.Key{PublicKey: pub, Start: t.CreatedAt().Truncate(time.Second), BaseURL: base + strconv.FormatInt(t.ID(), 10)}, past, nil
}

// devECKey makes the dev ECDSA P-256 key at path unless it exists.
func devECKey(path string, logger *slog.Logger) error {
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	if err := keys.WriteFile(path, k, nil); err != nil {
		return err
	}
	logger.Info("generated dev key", "path", path)
	return nil
}
