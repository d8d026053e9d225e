package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// instanceKind is "dev" or "production".
func instanceKind(dev bool) string {
	if dev {
		return "dev"
	}
	return "production"
}

// recordedKind is the kind of instance the database belongs to, if one is
// recorded; a database whose schema predates the record has none.
func recordedKind(ctx context.Context, pool *pgxpool.Pool) (kind string, since time.Time, ok bool, err error) {
	var table bool
	if err := pool.QueryRow(ctx, "SELECT to_regclass('signet_instance') IS NOT NULL").Scan(&table); err != nil || !table {
		return "", time.Time{}, false, err
	}
	err = pool.QueryRow(ctx, "SELECT kind, created_at FROM signet_instance").Scan(&kind, &since)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", time.Time{}, false, nil
	}
	return kind, since, err == nil, err
}

// refuseOtherKind checks the database against this start's kind before
// anything (the migrations included) writes to it.
func refuseOtherKind(ctx context.Context, pool *pgxpool.Pool, dev bool) error {
	recorded, since, ok, err := recordedKind(ctx, pool)
	switch {
	case err != nil:
		return fmt.Errorf("checking the database's instance: %w", err)
	case !ok || recorded == instanceKind(dev):
		return nil
	case dev:
		return fmt.Errorf("the database belongs to a production instance (recorded %s): dev mode refuses it, "+
			"since a dev start would retire its trees and chains and sign with dev keys. Give dev mode a database of its own, or none (it starts one)", since.Format(time.DateOnly))
	default:
		return fmt.Errorf("the database belongs to a dev instance (recorded %s): production refuses it, "+
			"since its keys, chains and trust material are dev mode's. Give the production instance a new database", since.Format(time.DateOnly))
	}
}

// claimDatabase records the kind of instance (dev or production) on a
// database that has none, after the migrations, and checks it again (a
// process of the other kind may have recorded first). It runs before any
// component writes, so a refused start changes no instance data.
//
// A database already holding an instance but no record was made before
// Signet recorded it: production adopts it, and so does dev mode on its own
// managed cluster (which nothing else can reach), but dev mode on a
// database.url does not: that is how a production database gets rewritten.
func claimDatabase(ctx context.Context, pool *pgxpool.Pool, dev, managed bool) error {
	if _, _, ok, err := recordedKind(ctx, pool); err != nil || ok {
		if err != nil {
			return fmt.Errorf("checking the database's instance: %w", err)
		}
		return refuseOtherKind(ctx, pool, dev)
	}
	var used bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM Trees) OR EXISTS (SELECT 1 FROM trust_chains)
		OR EXISTS (SELECT 1 FROM ca_certificates) OR EXISTS (SELECT 1 FROM tsa_timestamps) OR EXISTS (SELECT 1 FROM tuf_metadata)`).Scan(&used); err != nil {
		return fmt.Errorf("checking the database's instance: %w", err)
	}
	if used && dev && !managed {
		return errors.New("the database at database.url holds an instance whose kind (dev or production) was never recorded, " +
			"made by an earlier Signet: dev mode will not take it, since a dev start retires a production instance's trees and chains. " +
			"If it is a dev database, record it with: INSERT INTO signet_instance (kind) VALUES ('dev')")
	}
	// ON CONFLICT: another process starting at the same moment; the check
	// then compares with what it recorded.
	if _, err := pool.Exec(ctx, "INSERT INTO signet_instance (kind) VALUES ($1) ON CONFLICT (only_row) DO NOTHING", instanceKind(dev)); err != nil {
		return fmt.Errorf("recording the database's instance: %w", err)
	}
	return refuseOtherKind(ctx, pool, dev)
}
