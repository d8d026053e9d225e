package server

import (
	"context"
	"crypto"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/internal/keys"
	tlog "github.com/signet-dev/signet/log"
	"github.com/signet-dev/signet/log/pgstore"
	"github.com/signet-dev/signet/log/rekorapi"
	"github.com/signet-dev/signet/log/tiles"
)

// followerReads is what a replica that does not lead answers itself: the
// Rekor v1 API's reads (entries with their proofs, searches, log info,
// consistency proofs) and the log's tiles, from the database through a
// followed log (tlog.Follow), so followers add read capacity. Everything
// else (appends, the CA, TSA, CT, TUF, the explorer) goes to forward, the
// leader.
type followerReads struct {
	log     *tlog.Log
	handler http.Handler
}

// openFollowerReads follows the Rekor v1 log with signer, its key. It
// fails while the log has no tree (a leader has not started yet) or when
// signer is no longer the current tree's key (the leader rotated it).
func openFollowerReads(ctx context.Context, cfg config.Config, pool *pgxpool.Pool, signer crypto.Signer, logger *slog.Logger, served prometheus.Counter, forward http.Handler) (*followerReads, error) {
	registry, err := entryTypes(cfg)
	if err != nil {
		return nil, err
	}
	index, err := rekorapi.NewIndex(signer)
	if err != nil {
		return nil, fmt.Errorf("log signer: %w", err)
	}
	lcfg := rekorLogConfig(cfg, signer, index, logger)
	lcfg.Tiles = tiles.NewCache(cfg.Log.TileCacheBytes, nil)
	l, err := tlog.Follow(ctx, pgstore.New(pool), lcfg)
	if err != nil {
		return nil, keyChangeHint(err, "log")
	}
	api, err := rekorapi.New(rekorapi.Config{
		Log: l, Index: index, Types: registry, Logger: logger,
		Limits: rekorapi.Limits{MaxBodyBytes: cfg.Log.MaxRequestBytes, MaxSearchResults: cfg.Log.MaxSearchResults, MaxAttestationBytes: cfg.Log.MaxAttestationBytes},
	})
	if err != nil {
		l.Close()
		return nil, err
	}
	router := chi.NewRouter()
	router.Use(recoverPanics(logger), requestTimeout(time.Duration(cfg.HTTP.RequestTimeoutSeconds)*time.Second))
	router.Group(func(local chi.Router) {
		local.Use(func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				served.Inc()
				next.ServeHTTP(w, req)
			})
		})
		api.ReadRoutes(local)
		if len(cfg.Log.Witness.Witnesses) == 0 {
			// With witnesses, the tiles serve the checkpoint the leader's
			// witnessing round published: the leader's to serve.
			mountTiles(local, "rekor", l, nil, logger)
		}
	})
	router.NotFound(forward.ServeHTTP)
	router.MethodNotAllowed(forward.ServeHTTP)
	return &followerReads{log: l, handler: router}, nil
}

// current says whether the followed tree is still the log's current one
// (a leader started with a new key retires it).
func (f *followerReads) current(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	t, _, err := pgstore.New(pool).CurrentTree(ctx, "rekor")
	if err != nil {
		return false, err
	}
	return t.ID() == f.log.TreeID(), nil
}

func (f *followerReads) close() { f.log.Close() }

// checkLeaderKeys opens every other key the leader would (the log's is
// opened for the follower's reads), so that a replica that could not lead
// says so at its start instead of at its first takeover.
func checkLeaderKeys(cfg config.Config, opts Options) error {
	for _, k := range []struct {
		setting, uri string
		on           bool
	}{
		{"log.v2.signer", cfg.Log.V2.Signer, cfg.LogEnabled() && cfg.Log.V2.Enabled},
		{"ca.signer", cfg.CA.Signer, cfg.CAEnabled(opts.Dev)},
		{"timestamp.signer", cfg.Timestamp.Signer, cfg.TimestampEnabled(opts.Dev)},
		{"ct.signer", cfg.CT.Signer, cfg.CTEnabled(opts.Dev)},
		{"tuf.root_signer", cfg.TUF.RootSigner, cfg.TUFEnabled(opts.Dev)},
		{"tuf.targets_signer", cfg.TUF.TargetsSigner, cfg.TUFEnabled(opts.Dev)},
		{"tuf.snapshot_signer", cfg.TUF.SnapshotSigner, cfg.TUFEnabled(opts.Dev)},
		{"tuf.timestamp_signer", cfg.TUF.TimestampSigner, cfg.TUFEnabled(opts.Dev)},
	} {
		if !k.on || k.uri == "" {
			continue
		}
		if _, err := keys.Open(k.uri, keys.Options{Dev: opts.Dev, Getenv: opts.Getenv}); err != nil {
			return fmt.Errorf("%s: %w", k.setting, err)
		}
	}
	return nil
}

// logSigner opens the Rekor v1 log's key as the leader would.
func logSigner(cfg config.Config, opts Options) (crypto.Signer, error) {
	signer, err := keys.Open(cfg.Log.Signer, keys.Options{Dev: opts.Dev, Getenv: opts.Getenv})
	if err != nil {
		return nil, fmt.Errorf("log signer: %w", err)
	}
	return signer, nil
}
