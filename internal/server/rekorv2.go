package server

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/signet-dev/signet/internal/keys"
	tlog "github.com/signet-dev/signet/log"
	"github.com/signet-dev/signet/log/rekorv2"
	"github.com/signet-dev/signet/log/tilesapi"
)

// startLogV2 runs the Rekor v2 log (log.v2.enabled): a tree of its own on
// the engine, named rekor-v2, signed by its own ECDSA key, its checkpoint
// origin and signer name the public URL's hostname (what sigstore-go
// checks against the trusted root's baseUrl). Its tiles are served at the
// instance root, where rekor-tiles serves them, and under /tiles/rekor-v2.
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
	if _, err := rekorv2.KeyID(signer.Public()); err != nil {
		return fmt.Errorf("log.v2 signer: %w", err)
	}
	if s.rekorSigner != nil {
		if k, ok := s.rekorSigner.Public().(interface{ Equal(crypto.PublicKey) bool }); ok && k.Equal(signer.Public()) {
			return errors.New("log.v2 signer is the v1 log's key: the v2 log needs a key of its own (clients tell the logs apart by their key's hash)")
		}
	}
	u, err := url.Parse(s.cfg.PublicURL)
	if err != nil || u.Hostname() == "" {
		return fmt.Errorf("public_url %q has no hostname for the Rekor v2 checkpoints", s.cfg.PublicURL)
	}
	host := u.Hostname()
	rotate, err := s.mayRotate(ctx, "rekor-v2", signer)
	if err != nil {
		return err
	}
	l, err := tlog.Open(ctx, s.trees, tlog.Config{
		Name: "rekor-v2", SignerName: host, Signer: signer,
		MaxBatch: s.cfg.Log.MaxBatch, QueueSize: s.cfg.Log.QueueSize,
		Logger: s.logger, Metrics: s.logMetrics(reg), Tiles: s.logTiles(reg),
		OriginFor:         func(int64) string { return host },
		RotateOnKeyChange: rotate,
	})
	var kc *tlog.KeyChangedError
	if errors.As(err, &kc) {
		// admin rotate does not know this log yet: in dev mode the tree
		// rotates by itself; in production the key must stay the tree's.
		return fmt.Errorf("%w. Configure log.v2.signer with the tree's key again: rotating the Rekor v2 log's key on purpose (admin rotate) is not supported yet", err)
	}
	if err != nil {
		return err
	}
	s.logV2 = l // before anything can fail: Close stops it
	if err := s.rotated(ctx, "rekor-v2", signer); err != nil {
		return err
	}
	s.rekorV2Signer = signer
	s.rekorV2, err = rekorv2.New(rekorv2.Config{Log: l, MaxBodyBytes: min(s.cfg.Log.MaxRequestBytes, rekorv2.DefaultMaxBodyBytes), Logger: s.logger})
	if err != nil {
		return err
	}
	s.rekorV2.Routes(router)
	mountTiles(router, "rekor-v2", l, s.logger)
	// C2SP tlog-tiles at the root, as rekor-tiles serves its log.
	root := tilesapi.Handler(l.Tree, s.logger)
	router.Handle("/checkpoint", root)
	router.Handle("/tile/*", root)
	s.logger.Info("Rekor v2 log ready", "tree_id", l.TreeID(), "origin", host, "first_index", l.Offset())
	return nil
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
