package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// claimDatabase checks that the database belongs to an instance of this
// kind (dev or production), recording the kind on a new database. It runs
// before any component writes, so a refused start changes nothing.
//
// A database with trees but no recorded kind was made before Signet
// recorded it: production adopts it, and so does dev mode on its own
// managed cluster (which nothing else can reach), but dev mode on a
// database.url does not: that is how a production database gets rewritten.
func claimDatabase(ctx context.Context, pool *pgxpool.Pool, dev, managed bool) error {
	kind := "production"
	if dev {
		kind = "dev"
	}
	var recorded string
	var since time.Time
	err := pool.QueryRow(ctx, "SELECT kind, created_at FROM signet_instance").Scan(&recorded, &since)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		var hasTrees bool
		if err := pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM Trees)").Scan(&hasTrees); err != nil {
			return fmt.Errorf("checking the database's instance: %w", err)
		}
		if hasTrees && dev && !managed {
			return errors.New("the database at database.url holds an instance whose kind (dev or production) was never recorded, " +
				"made by an earlier Signet: dev mode will not take it, since a dev start retires a production instance's trees and chains. " +
				"If it is a dev database, record it with: INSERT INTO signet_instance (kind) VALUES ('dev')")
		}
		// ON CONFLICT: another process starting at the same moment; the
		// check below then compares with what it recorded.
		if _, err := pool.Exec(ctx, "INSERT INTO signet_instance (kind) VALUES ($1) ON CONFLICT (only_row) DO NOTHING", kind); err != nil {
			return fmt.Errorf("recording the database's instance: %w", err)
		}
		return claimDatabase(ctx, pool, dev, managed)
	case err != nil:
		return fmt.Errorf("checking the database's instance: %w", err)
	case recorded == kind:
		return nil
	case dev:
		return fmt.Errorf("the database belongs to a production instance (recorded %s): dev mode refuses it, "+
			"since a dev start would retire its trees and chains and sign with dev keys. Give dev mode a database of its own, or none (it starts one)", since.Format(time.DateOnly))
	default:
		return fmt.Errorf("the database belongs to a dev instance (recorded %s): production refuses it, "+
			"since its keys, chains and trust material are dev mode's. Give the production instance a new database", since.Format(time.DateOnly))
	}
}
