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

	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/internal/keys"
	tlog "github.com/signet-dev/signet/log"
	"github.com/signet-dev/signet/log/pgstore"
	"github.com/signet-dev/signet/log/rekorapi"
	"github.com/signet-dev/signet/log/tiles"
)

// followerReads is what a replica that does not lead answers itself: the
// Rekor v1 API's reads (entries with their proofs, searches, log info,
// consistency proofs) and the log's tiles, and the Rekor v2 log's tiles,
// from the database through followed logs (tlog.Follow), so followers add
// read capacity. Everything else (appends, the CA, TSA, CT, TUF, the
// explorer) goes to forward, the leader.
type followerReads struct {
	log *tlog.Log
	// v2 is the Rekor v2 log, whose tiles a follower serves too (nil
	// unless log.v2.enabled).
	v2      *tlog.Log
	store   *pgstore.Store
	handler http.Handler
}

// openFollowerReads follows the Rekor v1 log with signer, its key, and the
// Rekor v2 log with v2Signer (nil: log.v2 is off); local wraps the requests
// it answers itself, forward takes the others. It fails while a log has no
// tree (a leader has not started yet), when a signer is no longer the
// current tree's key (the leader rotated it), or when this configuration
// would name the checkpoints otherwise than the leader (tlog.OriginError).
func openFollowerReads(ctx context.Context, cfg config.Config, pool *pgxpool.Pool, signer, v2Signer crypto.Signer, logger *slog.Logger, local []func(http.Handler) http.Handler, forward http.Handler) (_ *followerReads, err error) {
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
	store := pgstore.New(pool)
	l, err := tlog.Follow(ctx, store, lcfg)
	if err != nil {
		return nil, keyChangeHint(err, "log")
	}
	f := &followerReads{log: l, store: store}
	defer func() {
		if err != nil {
			f.close()
		}
	}()
	api, err := rekorapi.New(rekorapi.Config{
		Log: l, Index: index, Types: registry, Logger: logger,
		Limits: rekorapi.Limits{MaxBodyBytes: cfg.Log.MaxRequestBytes, MaxSearchResults: cfg.Log.MaxSearchResults, MaxAttestationBytes: cfg.Log.MaxAttestationBytes},
	})
	if err != nil {
		return nil, err
	}
	if v2Signer != nil {
		host, err := rekorV2Host(cfg)
		if err != nil {
			return nil, err
		}
		v2cfg := rekorV2LogConfig(cfg, v2Signer, host, logger)
		v2cfg.Tiles = lcfg.Tiles
		if f.v2, err = tlog.Follow(ctx, store, v2cfg); err != nil {
			return nil, keyChangeHint(err, "log-v2")
		}
	}
	router := chi.NewRouter()
	router.Use(recoverPanics(logger), requestTimeout(time.Duration(cfg.HTTP.RequestTimeoutSeconds)*time.Second))
	router.Group(func(r chi.Router) {
		r.Use(local...)
		api.ReadRoutes(r)
		// With witnesses, the tiles serve the checkpoint the leader's
		// witnessing round published: the leader's to serve.
		if len(cfg.Log.Witness.Witnesses) == 0 {
			mountTiles(r, "rekor", l, nil, logger)
		}
		if f.v2 != nil && len(cfg.Log.V2.Witness.Witnesses) == 0 {
			mountV2Tiles(r, f.v2, nil, logger)
		}
	})
	router.NotFound(forward.ServeHTTP)
	router.MethodNotAllowed(forward.ServeHTTP)
	f.handler = router
	return f, nil
}

// current says whether the followed tree is still the log's current one
// (a leader started with a new key retires it).
func (f *followerReads) current(ctx context.Context) (bool, error) {
	t, _, err := f.store.CurrentTree(ctx, "rekor")
	if err != nil {
		return false, err
	}
	return t.ID() == f.log.TreeID(), nil
}

func (f *followerReads) close() {
	f.log.Close()
	if f.v2 != nil {
		f.v2.Close()
	}
}

// checkLeaderKeys opens every other key the leader would (the logs' are
// opened for the follower's reads), so that a replica that could not lead
// says so at its start instead of at its first takeover.
func checkLeaderKeys(cfg config.Config, opts Options) error {
	for _, k := range []struct {
		setting, uri string
		on           bool
	}{
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

// logSigners open the Rekor v1 and v2 logs' keys as the leader would (v2
// nil unless log.v2.enabled).
func logSigners(cfg config.Config, opts Options) (v1, v2 crypto.Signer, err error) {
	if v1, err = keys.Open(cfg.Log.Signer, keys.Options{Dev: opts.Dev, Getenv: opts.Getenv}); err != nil {
		return nil, nil, fmt.Errorf("log signer: %w", err)
	}
	if cfg.Log.V2.Enabled {
		if v2, err = keys.Open(cfg.Log.V2.Signer, keys.Options{Dev: opts.Dev, Getenv: opts.Getenv}); err != nil {
			return nil, nil, fmt.Errorf("log.v2.signer: %w", err)
		}
	}
	return v1, v2, nil
}
